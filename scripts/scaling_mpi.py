"""Data-parallel scaling: throughput on 1 and 2 MPI ranks, bytes per step, and a cost model.

    python scripts/scaling_mpi.py                       # LeNet-5 on Shapes, 1 and 2 ranks
    python scripts/scaling_mpi.py --ranks 1 2 4 --batch 128 --steps 60
    python scripts/scaling_mpi.py --skip-model           # only the measured runs
    python scripts/scaling_mpi.py --repeat 5             # best of 5 (on a busy, shared machine)

Each configuration runs as ``mpiexec -n R python scripts/scaling_mpi.py --worker ...`` with one
Numba thread per rank (``NUMBA_NUM_THREADS=1``), the same global batch on every R (so each rank
computes B / R samples: strong scaling), after warm-up steps that compile and fill caches. It
reports images/s, images/s per rank, the scaling efficiency (throughput / (R x throughput on one
rank)), the share of a step spent completing the reductions, and the payload each rank hands to
allreduce per step; a ring allreduce sends (and receives) 2 (R - 1) / R times that per rank.

The model part times one training step of LeNet-5 (28x28x1) and ResNet-20 (32x32x3) in one process
and an allreduce of each model's gradients between two ranks here, then predicts the efficiency of
weak scaling (a fixed batch per rank) to many machines with the alpha-beta cost of an allreduce
(Rabenseifner's: T = 2 log2(R) alpha + 2 (R - 1) / R x bytes / bandwidth), for two networks.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = {   # name: (latency alpha in seconds, bandwidth in bytes/s)
    "10 GbE, TCP": (30e-6, 1.1e9),
    "100 Gb/s InfiniBand": (2e-6, 11e9),
}
MODELS = {"lenet5": dict(size=28, channels=1), "resnet20": dict(size=32, channels=3)}


# -- the worker: one configuration under mpiexec ---------------------------------------------------

def _worker(args):
    import minicnn
    from minicnn import data, nn, optim, zoo
    from minicnn.distributed import DataParallel
    from minicnn.train import Trainer

    batch = args.batch
    if args.independent:       # R processes, each on B/R samples, no communication at all
        from minicnn.distributed import LocalCommunicator
        from minicnn.distributed.launch import launched_size
        batch //= launched_size() or 1
        dp = DataParallel(LocalCommunicator(), threads_per_rank=None)
    else:
        dp = DataParallel(timeout=600, threads_per_rank=None, bucket_bytes=args.bucket_bytes,
                          overlap=not args.no_overlap)
    shape = MODELS[args.model]
    minicnn.manual_seed(0)
    model = zoo.MODELS[args.model](num_classes=10, in_channels=shape["channels"])
    total = batch * (args.warmup + args.steps)
    dataset = data.Shapes(total, size=shape["size"], channels=shape["channels"], seed=0)
    loader = data.DataLoader(dataset, batch_size=batch, shuffle=True, seed=0, prefetch=0)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, progress=False, distributed=dp)
    dp.begin_fit(trainer)
    batches = iter(dp.shard(loader))
    for _ in range(args.warmup):
        trainer.train_step(*next(batches))
    dp.barrier()
    before = np.array([dp.wait_seconds, dp.compute_seconds, dp.compute_cpu_seconds])
    sent = dp.comm.bytes_reduced
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(*next(batches))
    dp.barrier()
    seconds = time.perf_counter() - start
    waited, compute, compute_cpu = (np.array([dp.wait_seconds, dp.compute_seconds,
                                              dp.compute_cpu_seconds]) - before) / args.steps
    sent = (dp.comm.bytes_reduced - sent) / args.steps
    dp.sync_buffers(model)                   # batch-norm running statistics, per rank so far
    dp.check_replicas(model)
    timings = np.array([seconds, waited, compute, compute_cpu])
    dp.reduce_sums(timings)                            # averages over the ranks, below
    allreduce = _time_allreduce(dp, [p.data.nbytes for p in model.parameters()])
    if dp.is_root:
        seconds, waited, compute, compute_cpu = timings / dp.size
        print(json.dumps({
            "model": args.model, "ranks": dp.size, "batch": batch, "steps": args.steps,
            "seconds": seconds, "images_per_s": batch * args.steps / seconds,
            "wait_s": waited, "compute_s": compute, "compute_cpu_s": compute_cpu,
            "wait_share": waited * args.steps / seconds, "payload_bytes_per_step": sent,
            "buckets": len(dp.buckets.buckets), "allreduce_s": allreduce,
            "params": int(sum(p.data.size for p in model.parameters())),
        }), flush=True)


def _time_allreduce(dp, sizes, repeats=20):
    """Seconds of one allreduce of a float32 buffer as large as all the gradients."""
    buf = np.zeros(sum(sizes) // 4, np.float32)
    dp.comm.allreduce(buf, "warm-up")
    dp.barrier()
    start = time.perf_counter()
    for _ in range(repeats):
        dp.comm.allreduce(buf, "timing")
    return (time.perf_counter() - start) / repeats


# -- the driver ------------------------------------------------------------------------------------

def _run(ranks, args, model, independent=False):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise SystemExit("scaling_mpi: no mpiexec on PATH (pip install 'minicnn[distributed]')")
    env = dict(os.environ, NUMBA_NUM_THREADS="1", MINICNN_DISABLE_PLUGIN_AUTOLOAD="1")
    cmd = [mpiexec, "-n", str(ranks), sys.executable, __file__, "--worker", "--model", model,
           "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--bucket-bytes", str(args.bucket_bytes)] + (["--no-overlap"] if args.no_overlap else [])
    cmd += ["--independent"] if independent else []
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    lines = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"scaling_mpi: {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    if not independent:
        return lines[-1]
    row = {k: sum(r[k] for r in lines) / len(lines) for k in
           ("seconds", "wait_s", "compute_s", "compute_cpu_s", "wait_share")}
    row.update(ranks=len(lines), steps=lines[0]["steps"], allreduce_s=0.0,
               payload_bytes_per_step=0, images_per_s=sum(r["images_per_s"] for r in lines))
    return row


def _measured(args):
    configs = [(r, False) for r in args.ranks]
    configs += [(r, True) for r in args.ranks if r > 1]     # R processes with no communication
    runs = {c: [] for c in configs}
    for _ in range(args.repeat):          # interleaved, so that a busy spell hits every R alike
        for r, independent in configs:
            runs[r, independent].append(_run(r, args, "lenet5", independent))
    rows = []
    for config in configs:
        best = max(runs[config], key=lambda row: row["images_per_s"])
        best["independent"] = config[1]
        best["all_images_per_s"] = [round(row["images_per_s"]) for row in runs[config]]
        best["best_compute_cpu_s"] = min(row["compute_cpu_s"] for row in runs[config])
        best["best_allreduce_s"] = min(row["allreduce_s"] for row in runs[config])
        rows.append(best)
    base = rows[0]["images_per_s"] / rows[0]["ranks"]
    cpu1 = rows[0]["best_compute_cpu_s"]
    print(f"LeNet-5 on Shapes, global batch {args.batch}, {args.steps} steps after "
          f"{args.warmup} warm-up, 1 Numba thread per rank, best of {args.repeat} run(s)")
    print(f"{'ranks':>5} {'images/s':>9} {'per rank':>9} {'efficiency':>10} {'ms/step':>8} "
          f"{'compute':>8} {'cpu':>6} {'reduce':>7} {'allreduce':>9} {'idle est.':>9} "
          f"{'payload B/step':>14} {'ring B/step/rank':>16}")
    for row in rows:
        r = row["ranks"]
        label = f"{r} ind." if row["independent"] else str(r)
        per_rank = row["images_per_s"] / r
        ring = 2 * (r - 1) / r * row["payload_bytes_per_step"]
        comm = row["best_allreduce_s"] if r > 1 else 0.0
        estimate = cpu1 / (r * (row["best_compute_cpu_s"] + comm))
        print(f"{label:>5} {row['images_per_s']:>9.0f} {per_rank:>9.0f} {per_rank / base:>10.1%} "
              f"{1e3 * row['seconds'] / row['steps']:>8.2f} {1e3 * row['compute_s']:>8.2f} "
              f"{1e3 * row['compute_cpu_s']:>6.2f} {1e3 * row['wait_s']:>7.2f} "
              f"{(f'{1e3 * comm:.2f}' if r > 1 else '-'):>9} {estimate:>9.0%} "
              f"{row['payload_bytes_per_step']:>14,.0f} {ring:>16,.0f}")
    print("ms per step: the whole data-parallel step; compute: up to the final wait (forward, "
          "backward,\nbuckets started), wall and CPU time; reduce: the final wait (reductions "
          "finishing and waiting\nfor the other rank); allreduce: one allreduce of all the "
          "gradients timed alone (best run);\nidle est.: the efficiency the best CPU times and "
          "allreduce would give on an idle machine;\nR ind.: R independent processes, each "
          "training on B/R samples, no communication (what\nthe machine gives R processes)")
    print("best CPU ms per step over all runs: " + "; ".join(
        f"{row['ranks']}{' ind.' if row['independent'] else ''}: "
        f"{1e3 * row['best_compute_cpu_s']:.2f}" for row in rows))
    if args.repeat > 1:
        print("images/s of every run: " + "; ".join(
            f"{row['ranks']}{' ind.' if row['independent'] else ''}: {row['all_images_per_s']}"
            for row in rows))
    return rows


def _step_seconds(model_name, batch, steps=3):
    """The best CPU time of one training step of ``batch`` samples in this process."""
    import minicnn
    from minicnn import data, nn, optim, zoo
    from minicnn.train import Trainer
    shape = MODELS[model_name]
    minicnn.manual_seed(0)
    model = zoo.MODELS[model_name](num_classes=10, in_channels=shape["channels"])
    x, y = data.DataLoader(data.Shapes(batch, size=shape["size"], channels=shape["channels"]),
                           batch_size=batch).load_batch(np.arange(batch))
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01),
                      progress=False)
    trainer.train_step(x, y)                                  # compile, allocate
    best = float("inf")
    for _ in range(steps):              # CPU time: one thread, and less disturbed by other load
        start = time.process_time()
        trainer.train_step(x, y)
        best = min(best, time.process_time() - start)
    return best, model.num_parameters()


def allreduce_seconds(ranks, grad_bytes, alpha, beta):
    """Rabenseifner's allreduce (recursive-halving reduce-scatter, then recursive-doubling
    allgather; what MPICH and Open MPI use for these sizes): 2 log2(R) latencies and
    2 (R - 1) / R of the bytes each way."""
    return 2 * math.log2(ranks) * alpha + 2 * (ranks - 1) / ranks * grad_bytes / beta


def _model(args):
    print("\nCost model: weak scaling (a fixed batch per rank), one rank per machine, no overlap "
          "assumed;\na machine is either this 1 thread or 12x faster (16 cores at 75%)")
    for name, batch in (("lenet5", 64), ("resnet20", 32)):
        compute, params = _step_seconds(name, batch)
        measured = _run(2, argparse.Namespace(**{**vars(args), "steps": 2, "warmup": 1,
                                                  "batch": 2 * batch}), name)
        grad_bytes = 4 * params
        print(f"\n{name}: {params:,} parameters = {grad_bytes / 1e6:.2f} MB of float32 "
              f"gradients; a step of {batch} samples on 1 thread here: {1e3 * compute:.1f} ms "
              f"(CPU); "
              f"an allreduce of the gradients between 2 ranks here: "
              f"{1e6 * measured['allreduce_s']:.0f} us")
        counts = (2, 8, 64, 512)
        print(f"  {'predicted efficiency':<38}" + "".join(f"{f'R={r}':>8}" for r in counts))
        for net, (alpha, beta) in NETWORKS.items():
            for label, step in (("1 thread", compute), ("16 cores", compute / 12)):
                cells = [step / (step + allreduce_seconds(r, grad_bytes, alpha, beta))
                         for r in counts]
                print(f"  {net + ', ' + label:<38}" + "".join(f"{c:>8.0%}" for c in cells))
        for net, (alpha, beta) in NETWORKS.items():
            print(f"  allreduce on {net}: " + ", ".join(
                f"R={r} {1e3 * allreduce_seconds(r, grad_bytes, alpha, beta):.2f} ms"
                for r in counts))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="lenet5", choices=sorted(MODELS))
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=64, help="global batch")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per configuration; the best is reported (a shared machine)")
    parser.add_argument("--bucket-bytes", type=int, default=1 << 20)
    parser.add_argument("--no-overlap", action="store_true")
    parser.add_argument("--independent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-model", action="store_true", help="only the measured runs")
    parser.add_argument("--skip-measured", action="store_true", help="only the cost model")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")    # before numba is imported: 1 thread
    os.environ.setdefault("MINICNN_DISABLE_PLUGIN_AUTOLOAD", "1")
    if not args.skip_measured:
        _measured(args)
    if not args.skip_model:
        _model(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
