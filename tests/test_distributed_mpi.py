"""Two MPI ranks on this machine (``mpiexec -n 2``): equivalence, resume, the CLI, failures.

Each test starts ``mpiexec -n 2 python tests/distributed_worker.py ...`` (or ``minicnn train``) in a
subprocess with a time limit and one Numba thread per rank. Skipped, saying why, when mpi4py or
mpiexec is missing (``pip install 'minicnn[distributed]'`` brings both).
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import optim
from minicnn.cli import main

HERE = Path(__file__).resolve().parent
WORKER = HERE / "distributed_worker.py"
MPIEXEC = shutil.which("mpiexec")

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                       reason="mpi4py is not installed (pip install 'minicnn[distributed]')"),
    pytest.mark.skipif(MPIEXEC is None,
                       reason="no mpiexec on PATH (pip install 'minicnn[distributed]' brings "
                              "MPICH's)"),
]

sys.path.insert(0, str(HERE))
import distributed_worker as worker  # noqa: E402


def _env(extra=None):
    env = dict(os.environ)
    for name in list(env):                 # never inherit an outer launcher's identity
        if name.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_")):
            del env[name]
    env.update(NUMBA_NUM_THREADS="1", MINICNN_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


def mpirun(args, limit=120, env=None):
    """Run ``mpiexec -n 2 ARGS``; returns (exit code, stdout + stderr, seconds)."""
    start = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", "2", *args], capture_output=True, text=True,
                          timeout=limit, env=_env(env), cwd=HERE.parent)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def _assert_state_close(reference, saved, what):
    assert list(saved.keys()) == list(reference.keys())
    for name, value in reference.items():
        # float32 rounding: the gradient of the global batch summed in another order
        np.testing.assert_allclose(saved[name], value, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{what}: {name}")


def test_two_ranks_equal_one_process_and_a_checkpoint_resumes_on_one(tmp_path):
    code, output, _ = mpirun([sys.executable, str(WORKER), "train", str(tmp_path)])
    assert code == 0, output
    assert "data-parallel training on 2 rank(s)" in output and "buckets: 3" in output

    # plain model: 33 samples in batches of 8 (the last batch: 1 sample, rank 1 gets none)
    model = worker.plain_model()
    train, val = worker.plain_loaders()
    history = worker.trainer_for(model).fit(train, epochs=worker.EPOCHS, val_loader=val)
    _assert_state_close(model.state_dict(), np.load(tmp_path / "plain.npz"), "plain")
    saved_history = json.loads((tmp_path / "plain.json").read_text())
    for mine, theirs in zip(history, saved_history, strict=True):
        assert theirs == pytest.approx(mine, rel=1e-5)       # metrics reduced over both ranks
    assert len((tmp_path / "plain.csv").read_text().splitlines()) == 1 + worker.EPOCHS

    # synced batch norm, uneven shards (8 + 7): statistics over the global batch
    model = worker.bn_model()
    worker.trainer_for(model).fit(worker.bn_loader(), epochs=worker.EPOCHS)
    _assert_state_close(model.state_dict(), np.load(tmp_path / "bn.npz"), "synced batch norm")
    # per-rank statistics (the default) normalise each shard by itself: not the global batch's
    local = np.load(tmp_path / "bn_local.npz")
    assert np.abs(local["0.weight"] - model.state_dict()["0.weight"]).max() > 1e-4

    # the checkpoint written by rank 0 of 2 resumes in one process, as if never interrupted
    full = worker.plain_model()
    train, _ = worker.plain_loaders()
    worker.trainer_for(full).fit(train, epochs=worker.EPOCHS + 1)
    resumed = worker.plain_model()
    trainer = worker.trainer_for(resumed)
    info = trainer.load_checkpoint(str(tmp_path / "plain.ckpt"))
    assert info["extra"]["world_size"] == 2 and trainer.epoch == worker.EPOCHS
    train, _ = worker.plain_loaders()
    trainer.fit(train, epochs=1)
    _assert_state_close(full.state_dict(), resumed.state_dict(), "resumed on one process")


def test_mpiexec_minicnn_train_and_resume_on_one_rank(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--train-size", "96", "--val-size", "40", "--batch-size", "32",
            "--output", str(out), "--no-progress"]
    code, output, _ = mpirun([sys.executable, "-m", "minicnn", *args, "--epochs", "1"])
    assert code == 0, output
    assert output.count("lenet5 on shapes: validation accuracy") == 1     # rank 0 speaks
    assert "minicnn: data-parallel training on 2 rank(s)" in output
    for name in ("model.mcnn", "checkpoint.safetensors", "log.csv", "curve.png"):
        assert (out / name).exists(), name
    assert not list(out.glob(".*.tmp"))
    two_ranks = (out / "log.csv").read_text().splitlines()
    assert len(two_ranks) == 2

    single = tmp_path / "single"
    assert main([*args[:-3], "--output", str(single), "--no-progress", "--epochs", "1"]) == 0
    one_rank = (single / "log.csv").read_text().splitlines()
    a = [float(v) for v in two_ranks[1].split(",")]
    b = [float(v) for v in one_rank[1].split(",")]
    assert a == pytest.approx(b, rel=1e-5)             # the same epoch on 1 and on 2 ranks

    assert main([*args, "--epochs", "2", "--resume"]) == 0     # 2 ranks' checkpoint, 1 process
    assert "after 2 epoch(s)" in capsys.readouterr().out


def _checkpoint_loads(path):
    """The last checkpoint is whole: it loads into a fresh model and optimiser."""
    model = worker.plain_model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    info = minicnn.io.load_checkpoint(str(path), model, optimizer=opt)
    assert not list(path.parent.glob(".*.tmp")), "a half-written temporary file was left"
    return info


def test_a_rank_that_raises_stops_the_other_at_once(tmp_path):
    code, output, seconds = mpirun([sys.executable, str(WORKER), "fail", str(tmp_path),
                                    "--mode", "raise", "--timeout", "60"])
    assert code != 0
    assert "rank 1 failed, so rank 0 stops: RuntimeError: injected failure at step 11" in output
    assert "error on rank 1 of 2: RuntimeError: injected failure" in output
    assert seconds < 45                   # told by rank 1, not by the 60 s timeout
    assert _checkpoint_loads(tmp_path / "fail.ckpt")["epoch"] == 1


def test_a_hung_rank_is_named_after_the_timeout(tmp_path):
    code, output, seconds = mpirun([sys.executable, str(WORKER), "fail", str(tmp_path),
                                    "--mode", "hang", "--timeout", "3"])
    assert code != 0
    assert re.search(r"did not complete within 3 s, and rank\(s\) 1 did not answer", output), \
        output
    assert seconds < 60
    assert _checkpoint_loads(tmp_path / "fail.ckpt")["epoch"] == 1


def test_a_killed_rank_ends_the_job_naming_it(tmp_path):
    code, output, seconds = mpirun([sys.executable, str(WORKER), "fail", str(tmp_path),
                                    "--mode", "kill", "--timeout", "3"])
    assert code != 0
    assert seconds < 60
    pids = dict(re.findall(r"(\d+): pid (\d+) on", output))
    # Either minicnn's timeout names rank 1, or the launcher (MPICH's hydra ends the job when a
    # process dies) names its PID, which the start-up line maps to rank 1.
    ours = re.search(r"rank\(s\) 1 did not answer", output)
    launcher = re.search(rf"\b{pids['1']}\b", output.split("pid " + pids["1"], 1)[1])
    assert ours or launcher, output
    assert _checkpoint_loads(tmp_path / "fail.ckpt")["epoch"] == 1


def test_gpu_ranks_on_the_cuda_simulator_stage_through_the_host(tmp_path):
    """Two ranks whose models live on the "cuda" device (numba's CUDA simulator): gradient
    buckets on the device, staged through host memory for MPICH's PyPI build (not CUDA-aware);
    the weights equal a single CPU process's on the same global batches."""
    pytest.importorskip("numba.cuda")
    env = {"NUMBA_ENABLE_CUDASIM": "1"}
    code, output, seconds = mpirun([sys.executable, str(WORKER), "cuda", str(tmp_path)],
                                   limit=180, env=env)
    assert code == 0, output
    assert seconds < 120
    report = json.loads((tmp_path / "cuda.json").read_text())
    assert report["simulator"] is True
    assert report["grad_on_device"] == "cuda"              # buckets (and Param.grad) on the device
    assert report["buckets"] > 1
    assert report["cuda_aware"] is False                    # MPICH from PyPI
    paths = report["paths"]
    assert paths.get("staged", 0) > 0 and paths.get("device", 0) == 0, paths

    # one CPU process on the same global batches (11 samples in batches of 5: 3 steps)
    model = worker.cuda_model()
    history = worker.cuda_trainer(model).fit(worker.cuda_loader(), epochs=1)
    _assert_state_close(model.state_dict(), np.load(tmp_path / "cuda.npz"), "cuda ranks")
    for mine, theirs in zip(history, report["history"], strict=True):
        assert theirs == pytest.approx(mine, rel=1e-5)       # metrics reduced from device logits

    # per-rank batch norm: the running statistics averaged on the device equal the CPU ranks'
    _assert_state_close(dict(np.load(tmp_path / "cpu_bn.npz")), np.load(tmp_path / "cuda_bn.npz"),
                        "per-rank batch norm, cuda vs cpu ranks")
    assert "synced batch norm runs on the CPU only" in report["sync_batchnorm_error"]
    assert "'1'" in report["sync_batchnorm_error"]           # names the batch-norm layer
