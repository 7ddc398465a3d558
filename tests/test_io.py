"""Model files: atomic writes, round trips, hostile files, weights by name, transfer,
checkpoints."""

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections import OrderedDict

import numpy as np
import pytest
import safetensors.numpy

import minicnn
from minicnn import Input, Model, ModelFormatError, Sequential, nn
from minicnn import io as mio
from minicnn.io import atomic, codec, tensorfile
from minicnn.registry import Registry, hookimpl, set_registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _state_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


def _mlp():
    minicnn.manual_seed(0)
    return Sequential(OrderedDict(
        features=Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.25)),
        head=nn.Linear(8, 3)))


def _dag():
    minicnn.manual_seed(1)
    x = Input((4,))
    shared = nn.Linear(4, 4)
    h = nn.Tanh()(shared(x, name="fc1"), name="act1")
    h2 = shared(h, name="fc1_again")                 # the same layer at two nodes
    skip = nn.Add()([h2, x], name="skip")
    return Model(x, [nn.Linear(4, 3)(skip, name="head"), nn.Sigmoid()(h, name="aux")])


def _tmp_files(directory):
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


# -- atomic writes ---------------------------------------------------------------------------------

def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "f.bin"
    atomic.atomic_write_bytes(target, b"old contents")
    atomic.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert _tmp_files(tmp_path) == []


@pytest.mark.parametrize("where", ["write", "replace"])
def test_failure_mid_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch, where):
    target = tmp_path / "model.mcnn"
    mio.save(_mlp(), target)
    before = target.read_bytes()
    calls = []

    def failing_chunk(fd, view):
        calls.append(len(view))
        if len(calls) == 3:
            raise OSError(28, "No space left on device (injected)")
        os.write(fd, view)

    def failing_replace(src, dst):
        raise OSError(5, "I/O error (injected)")

    monkeypatch.setattr(atomic, "_CHUNK", 64)
    if where == "write":
        monkeypatch.setattr(atomic, "_write_chunk", failing_chunk)
    else:
        monkeypatch.setattr(atomic.os, "replace", failing_replace)
    model = _mlp()
    model.head.weight.data[...] = 7.0
    with pytest.raises(OSError, match="injected"):
        mio.save(model, target)
    assert target.read_bytes() == before
    assert _tmp_files(tmp_path) == []
    monkeypatch.undo()
    _state_equal(mio.load(target), _mlp())


_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    import minicnn
    from minicnn import nn
    from minicnn.io import atomic, save_weights

    real = atomic._write_chunk
    def slow(fd, view):
        real(fd, view)
        time.sleep(0.05)          # about 3 s for the whole file: time to be killed mid-write
    atomic._CHUNK = 1 << 19
    atomic._write_chunk = slow
    minicnn.manual_seed(1)
    save_weights(nn.Linear(2048, 1536), {target!r})
""")


def test_killed_save_leaves_old_file(tmp_path):
    target = tmp_path / "big.safetensors"
    minicnn.manual_seed(0)
    old_model = nn.Linear(2048, 1536)
    mio.save_weights(old_model, target)
    old = target.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=ROOT, target=str(target))])
    deadline = time.time() + 60
    seen = 0
    try:
        while time.time() < deadline and child.poll() is None:
            temps = _tmp_files(tmp_path)
            if temps:
                seen = os.path.getsize(tmp_path / temps[0])
                if seen > 0:
                    break
            time.sleep(0.01)
        assert child.poll() is None, "the child finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert seen > 0                       # it was killed after it started writing
    assert target.read_bytes() == old     # the target is the old, complete file
    loaded = nn.Linear(2048, 1536)
    assert mio.load_weights(loaded, target) == mio.LoadReport([], [])
    np.testing.assert_array_equal(loaded.weight.data, old_model.weight.data)
    temps = _tmp_files(tmp_path)          # a SIGKILL cannot clean up: a hidden stale temp remains
    assert len(temps) == 1 and temps[0].startswith(".big.safetensors.")


# -- round trips -----------------------------------------------------------------------------------

def test_sequential_round_trip_with_buffers_and_frozen(tmp_path):
    model = _mlp()
    model(np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32))  # moves BN stats
    model.freeze("features.0")
    mio.save(model, tmp_path / "m.mcnn")
    loaded = mio.load(tmp_path / "m.mcnn")
    assert isinstance(loaded, Sequential) and list(dict(loaded.named_children())) == \
        ["features", "head"]
    _state_equal(model, loaded)
    assert loaded.state_dict()["features.1.num_batches_tracked"].shape == ()
    assert [p.requires_grad for p in loaded.parameters()] == \
        [p.requires_grad for p in model.parameters()]
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.eval()(x), loaded.eval()(x))


def test_functional_model_round_trip_keeps_sharing_and_names(tmp_path):
    model = _dag()
    mio.save(model, tmp_path / "g.mcnn")
    loaded = mio.load(tmp_path / "g.mcnn")
    assert [n.name for n in loaded.nodes] == [n.name for n in model.nodes]
    assert loaded["fc1"] is loaded["fc1_again"]
    _state_equal(model, loaded)
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    for a, b in zip(model(x), loaded(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_nested_model_inside_model_and_float64(tmp_path):
    inner = _dag()
    x = Input((4,))
    head, aux = inner(x, name="inner")
    model = Model(x, nn.Add()([head, nn.Linear(4, 3)(aux, name="proj")])).double()
    mio.save(model, tmp_path / "n.mcnn")
    loaded = mio.load(tmp_path / "n.mcnn")
    assert loaded.dtype == np.float64
    _state_equal(model, loaded)
    xx = np.random.default_rng(3).standard_normal((2, 4))
    np.testing.assert_array_equal(model(xx), loaded(xx))


def test_configs_keep_tuples_arrays_and_non_finite_values(tmp_path):
    weight = np.array([0.5, 2.0, 1.0], np.float32)
    loss = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)
    mio.save(loss, tmp_path / "loss.mcnn")
    loaded = mio.load(tmp_path / "loss.mcnn")
    assert type(loaded) is nn.CrossEntropyLoss
    np.testing.assert_array_equal(loaded.config()["weight"], weight)
    assert loaded.config()["weight"].dtype == np.float32
    pool = nn.MaxPool2d((2, 3), stride=(1, 2))
    mio.save(Sequential(pool), tmp_path / "pool.mcnn")
    config = mio.load(tmp_path / "pool.mcnn")[0].config()
    assert config == pool.config() and isinstance(config["kernel_size"], tuple)


def test_files_are_plain_safetensors(tmp_path):
    model = _mlp()
    mio.save(model, tmp_path / "m.mcnn")
    with open(tmp_path / "m.mcnn", "rb") as f:
        tensors = safetensors.numpy.load(f.read())     # the reference reader agrees
    state = model.state_dict()
    assert set(tensors) == set(state)
    for key, value in state.items():
        assert tensors[key].dtype == value.dtype
        np.testing.assert_array_equal(tensors[key], value)
    (header_len,) = struct.unpack("<Q", (tmp_path / "m.mcnn").read_bytes()[:8])
    assert header_len % 8 == 0
    metadata = json.loads((tmp_path / "m.mcnn").read_bytes()[8:8 + header_len])["__metadata__"]
    assert metadata["format"] == "minicnn" and metadata["kind"] == "model"
    assert json.loads(metadata["architecture"])["root"]["kind"] == "sequential"


def test_loading_does_not_draw_initial_weights(tmp_path):
    mio.save(Sequential(nn.Linear(3, 2)), tmp_path / "m.mcnn")
    minicnn.manual_seed(5)
    mio.load(tmp_path / "m.mcnn")
    after_load = minicnn.random.generator().random()
    minicnn.manual_seed(5)
    assert minicnn.random.generator().random() == after_load


def test_codec_round_trip():
    value = {"a": (1, 2.5, None), 3: [True, "s", float("nan"), float("-inf")],
             "arr": np.arange(6, dtype=np.int32).reshape(2, 3), "big": 2**100,
             "rng": np.random.default_rng(5)}
    arrays = {}
    doc = json.loads(json.dumps(codec.encode(value, arrays, "k"), allow_nan=False))
    back = codec.decode(doc, arrays, "file")
    assert back["a"] == (1, 2.5, None) and back["big"] == 2**100
    assert back[3][:2] == [True, "s"] and np.isnan(back[3][2]) and back[3][3] == -np.inf
    assert back["arr"].dtype == np.int32
    np.testing.assert_array_equal(back["arr"], value["arr"])
    assert back["rng"].random() == np.random.default_rng(5).random()
    with pytest.raises(TypeError, match="object"):
        codec.encode({"x": object()}, {}, "k")


def test_unsaveable_modules_are_refused_before_writing(tmp_path):
    class Custom(minicnn.Module):
        pass

    class Unregistered(nn.ReLU):
        type_name = "NotInTheRegistry"

    for model, match in ((Sequential(Custom()), "custom container"),
                         (Sequential(Unregistered()), "not registered")):
        with pytest.raises(TypeError, match=match):
            mio.save(model, tmp_path / "x.mcnn")
        assert not (tmp_path / "x.mcnn").exists()


# -- hostile and malformed files -------------------------------------------------------------------

def _raw(header, data=b"", header_len=None):
    text = json.dumps(header).encode()
    n = len(text) if header_len is None else header_len
    return struct.pack("<Q", n) + text + data


def _entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


HOSTILE = {
    "empty": (b"", "truncated"),
    "short": (b"\x01\x02\x03", "truncated"),
    "text": (b"this is not a model file at all", "header length"),
    "huge header length": (struct.pack("<Q", 2**63) + b"{}", "larger than the file"),
    "json": (struct.pack("<Q", 5) + b"{nope", "not valid JSON"),
    "not utf8": (struct.pack("<Q", 4) + b"\xff\xfe{}", "UTF-8"),
    "not an object": (_raw([1, 2]), "not a JSON object"),
    "deep": (struct.pack("<Q", 100000) + b"[" * 50000 + b"]" * 50000, "not valid JSON"),
    "duplicate": (struct.pack("<Q", 21) + b'{"a": {}, "a": {}}   ', "duplicate"),
    "dtype": (_raw({"w": _entry("F16", [2], 0, 4)}, b"\0" * 4), "dtype 'F16'"),
    "dtype i32": (_raw({"w": _entry("I32", [1], 0, 4)}, b"\0" * 4), "dtype 'I32'"),
    "dtype list": (_raw({"w": _entry(["F32"], [1], 0, 4)}, b"\0" * 4), r"dtype \['F32'\]"),
    "out of range": (_raw({"w": _entry("F32", [4], 0, 16)}, b"\0" * 8), "out of range"),
    "negative": (_raw({"w": _entry("F32", [1], -4, 0)}, b"\0" * 4), "out of range"),
    "bytes": (_raw({"w": _entry("F32", [3], 0, 8)}, b"\0" * 8), "needs 12 bytes"),
    "absurd shape": (_raw({"w": _entry("F64", [2**40, 2**40], 0, 8)}, b"\0" * 8), "absurd shape"),
    "huge shape": (_raw({"w": _entry("F64", [2**20, 2**20], 0, 8)}, b"\0" * 8), "needs 8796"),
    "absurd empty shape": (_raw({"w": _entry("F64", [0, 2**62], 0, 0)}), "absurd shape"),
    "overlap": (_raw({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 4, 12)},
                     b"\0" * 12), "overlaps"),
    "gap": (_raw({"a": _entry("F32", [1], 4, 8)}, b"\0" * 8), "gap"),
    "trailing": (_raw({"a": _entry("F32", [1], 0, 4)}, b"\0" * 8), "cover"),
    "bad shape": (_raw({"a": _entry("F32", [-1], 0, 0)}), "invalid shape"),
    "bool shape": (_raw({"a": _entry("F32", [True], 0, 4)}, b"\0" * 4), "invalid shape"),
    "extra key": (_raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}},
                       b"\0" * 4), "exactly"),
    "metadata": (_raw({"__metadata__": {"a": 1}}), "strings to strings"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_raise_one_clear_error(tmp_path, name):
    raw, match = HOSTILE[name]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    for load in (mio.load, lambda p: mio.load_weights(nn.Linear(1, 1), p),
                 lambda p: mio.load_checkpoint(p, nn.Linear(1, 1))):
        with pytest.raises(ModelFormatError, match=match) as info:
            load(path)
        assert str(path) in str(info.value) and info.value.path == str(path)


def test_missing_file_is_a_model_format_error(tmp_path):
    with pytest.raises(ModelFormatError, match="cannot open"):
        mio.load(tmp_path / "nope.mcnn")


def _rewrite(src, dst, edit_arch=None, edit_tensors=None, entry="architecture"):
    """A copy of ``src`` with its JSON metadata ``entry`` and its tensors edited, digest
    recomputed."""
    tensors, metadata = tensorfile.read_file(src)
    tensors = OrderedDict((k, np.array(v)) for k, v in tensors.items())
    metadata = dict(metadata)
    if edit_arch is not None:
        doc = json.loads(metadata[entry])
        edit_arch(doc)
        metadata[entry] = json.dumps(doc)
    if edit_tensors is not None:
        edit_tensors(tensors)
    tensorfile.write_file(dst, tensors, metadata)


def _swish_registry(with_swish):
    class Swish(nn.Sigmoid):
        """x * sigmoid(x), from a third-party plugin (only its registration matters here)."""

    class Plugin:
        @hookimpl
        def minicnn_layers(self):
            return [Swish]

    registry = Registry(load_entry_points=False)
    if with_swish:
        registry.register(Plugin(), name="swish_plugin")
        registry.distributions["swish_plugin"] = "minicnn-swish"
    return registry, Swish


def test_unknown_layer_type_names_the_plugin_and_package(tmp_path):
    registry, swish = _swish_registry(True)
    previous = set_registry(registry)
    try:
        mio.save(Sequential(nn.Linear(2, 2), swish()), tmp_path / "s.mcnn")
        assert isinstance(mio.load(tmp_path / "s.mcnn")[1], swish)
        set_registry(_swish_registry(False)[0])
        with pytest.raises(ModelFormatError, match=r"layer type 'Swish' is provided by plugin "
                                                   r"'swish_plugin' \(package 'minicnn-swish'\); "
                                                   r"install it"):
            mio.load(tmp_path / "s.mcnn")
        _rewrite(tmp_path / "s.mcnn", tmp_path / "t.mcnn",
                 edit_arch=lambda d: d["types"].pop("Swish"))
        with pytest.raises(ModelFormatError, match="unknown layer type 'Swish'"):
            mio.load(tmp_path / "t.mcnn")
    finally:
        set_registry(previous)


def _first_layer(doc):
    return doc["root"]["children"][0][1]


@pytest.mark.parametrize("edit, match", [
    (lambda d: _first_layer(d)["config"].update(bogus=1), r"does not accept config key\(s\) "
                                                          r"\['bogus'\]"),
    (lambda d: _first_layer(d)["config"].update(out_features=5), r"'0.weight' has shape"),
    (lambda d: _first_layer(d)["config"].update(in_features=-3), "cannot build layer type"),
    (lambda d: _first_layer(d)["config"].pop("in_features"), "does not fit layer type"),
    (lambda d: _first_layer(d).update(type="__import__"), "unknown layer type '__import__'"),
    (lambda d: d["root"].update(kind="pickle"), "unknown module kind"),
    (lambda d: d["root"]["children"].append(["2", {"ref": 99}]), "refers to module 99"),
    (lambda d: d.update(version=7), "unsupported architecture version"),
    # sizes the file cannot fill are refused before anything is allocated
    (lambda d: _first_layer(d)["config"].update(out_features=10**12),
     r"config value 1000000000000, more than the 15 weights the file holds"),
    (lambda d: _first_layer(d)["config"].update(in_features=20000, out_features=20000),
     r"the layers up to this 'Linear' have 400020000 weights, far more than the 15"),
    (lambda d: _first_layer(d).update(type="BatchNorm1d", config={"num_features": 10**9}),
     r"'BatchNorm1d' has config value 1000000000"),
    # file content where a hashable name goes
    (lambda d: _first_layer(d)["config"].update(in_features={"__array__": "x", "dtype": {}}),
     r"refers to tensor 'x'"),
    (lambda d: _first_layer(d)["config"].update(
        in_features={"__dict__": [[{"__tuple__": [[1]]}, 1]]}), r"dict key of type tuple"),
])
def test_architecture_that_does_not_fit(tmp_path, edit, match):
    mio.save(Sequential(nn.Linear(4, 3), nn.ReLU()), tmp_path / "a.mcnn")
    _rewrite(tmp_path / "a.mcnn", tmp_path / "b.mcnn", edit_arch=edit)
    with pytest.raises(ModelFormatError, match=match):
        mio.load(tmp_path / "b.mcnn")


def test_array_config_with_a_dtype_that_is_not_a_name(tmp_path):
    mio.save(Sequential(nn.Linear(4, 3)), tmp_path / "a.mcnn")

    def edit(tensors):
        tensors["__config__/x"] = np.zeros(1, np.int64)
    _rewrite(tmp_path / "a.mcnn", tmp_path / "b.mcnn", edit_tensors=edit, edit_arch=lambda d: (
        _first_layer(d)["config"].update(in_features={"__array__": "__config__/x", "dtype": {}})))
    with pytest.raises(ModelFormatError, match=r"unsupported array dtype \{\}"):
        mio.load(tmp_path / "b.mcnn")


def test_too_many_modules_are_refused(tmp_path, monkeypatch):
    from minicnn.io import architecture
    monkeypatch.setattr(architecture, "MAX_MODULES", 50)
    mio.save(Sequential(*[nn.ReLU() for _ in range(49)]), tmp_path / "ok.mcnn")
    assert len(mio.load(tmp_path / "ok.mcnn")) == 49           # 49 layers and the Sequential
    mio.save(Sequential(*[nn.ReLU() for _ in range(50)]), tmp_path / "many.mcnn")
    with pytest.raises(ModelFormatError, match=r"more than 50 modules"):
        mio.load(tmp_path / "many.mcnn")


def test_state_that_does_not_fit_the_architecture(tmp_path):
    mio.save(Sequential(nn.Linear(4, 3)), tmp_path / "a.mcnn")
    _rewrite(tmp_path / "a.mcnn", tmp_path / "b.mcnn",
             edit_tensors=lambda t: t.update({"0.extra": np.zeros(2, np.float32)}))
    with pytest.raises(ModelFormatError, match=r"unexpected keys \['0.extra'\]"):
        mio.load(tmp_path / "b.mcnn")
    _rewrite(tmp_path / "a.mcnn", tmp_path / "c.mcnn", edit_tensors=lambda t: t.pop("0.bias"))
    with pytest.raises(ModelFormatError, match=r"missing keys \['0.bias'\]"):
        mio.load(tmp_path / "c.mcnn")


def test_checksum_catches_changed_weights(tmp_path):
    mio.save_weights(nn.Linear(3, 2), tmp_path / "w.safetensors")
    raw = bytearray((tmp_path / "w.safetensors").read_bytes())
    raw[-1] ^= 0x01
    (tmp_path / "w.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        mio.load_weights(nn.Linear(3, 2), tmp_path / "w.safetensors")


def test_fuzzed_files_load_identically_or_raise_model_format_error(tmp_path):
    """Flip and truncate bytes of a valid model file: never anything but success or one error."""
    model = _mlp()
    path = tmp_path / "m.mcnn"
    mio.save(model, path)
    raw = path.read_bytes()
    rng = np.random.default_rng(0)
    positions = sorted(set(range(0, 64)) | set(rng.integers(0, len(raw), 250).tolist())
                       | set(range(len(raw) - 16, len(raw))))
    bad = tmp_path / "fuzz.mcnn"
    outcomes = {"ok": 0, "error": 0}
    cases = [(p, None) for p in positions] + [(None, n) for n in
                                               rng.integers(0, len(raw), 40).tolist()]
    for pos, cut in cases:
        data = bytearray(raw)
        if pos is not None:
            data[pos] ^= int(rng.integers(1, 256))
        else:
            data = data[:cut]
        bad.write_bytes(bytes(data))
        for attempt in ("load", "load_weights"):
            try:
                if attempt == "load":
                    loaded = mio.load(bad)
                else:
                    loaded = _mlp()
                    mio.load_weights(loaded, bad)
            except ModelFormatError:
                outcomes["error"] += 1
                continue
            _state_equal(model, loaded)
            outcomes["ok"] += 1
    assert outcomes["error"] > len(cases)    # most corruptions are caught


# -- weights by name and transfer learning ---------------------------------------------------------

def test_fuzzed_checkpoints_restore_identically_or_raise_model_format_error(tmp_path):
    model = _net(0)
    opt, sched = _make_optim("hand-written", model)
    _train(model, opt, sched, 3)
    path = tmp_path / "c.ckpt"
    mio.save_checkpoint(path, model, opt, sched, epoch=1, step=3, extra={"a": [1, 2]})
    raw = path.read_bytes()
    rng = np.random.default_rng(1)
    bad = tmp_path / "fuzz.ckpt"
    errors = 0
    for pos in sorted(set(rng.integers(0, len(raw), 150).tolist())):
        data = bytearray(raw)
        data[pos] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(data))
        fresh = _net(1)
        fresh_opt, fresh_sched = _make_optim("hand-written", fresh)
        try:
            info = mio.load_checkpoint(bad, fresh, fresh_opt, fresh_sched)
        except ModelFormatError:
            errors += 1
            continue
        _state_equal(model, fresh)
        assert info == {"epoch": 1, "step": 3, "extra": {"a": [1, 2]}}
        assert fresh_sched.state_dict() == sched.state_dict()
    assert errors > 100


def test_load_weights_strict_and_report(tmp_path):
    model = _mlp()
    mio.save_weights(model, tmp_path / "w.safetensors")
    fresh = _mlp()
    for p in fresh.parameters():
        p.data[...] = 0
    assert mio.load_weights(fresh, tmp_path / "w.safetensors") == mio.LoadReport([], [])
    _state_equal(model, fresh)
    other = Sequential(OrderedDict(features=Sequential(nn.Linear(4, 8)), extra=nn.Linear(8, 2)))
    with pytest.raises(ModelFormatError, match="missing keys"):
        mio.load_weights(other, tmp_path / "w.safetensors")
    report = mio.load_weights(other, tmp_path / "w.safetensors", strict=False)
    assert report.missing == ["extra.weight", "extra.bias"]
    assert "head.weight" in report.unexpected and "features.1.running_mean" in report.unexpected
    np.testing.assert_array_equal(other.features[0].weight.data, model.features[0].weight.data)
    wrong = Sequential(OrderedDict(features=Sequential(nn.Linear(4, 5))))
    with pytest.raises(ModelFormatError, match=r"'features.0.weight' has shape \(8, 4\) in the "
                                               r"file, the model expects \(5, 4\)"):
        mio.load_weights(wrong, tmp_path / "w.safetensors", strict=False)


def test_load_weights_from_model_checkpoint_and_plain_safetensors(tmp_path):
    model = _mlp()
    mio.save(model, tmp_path / "m.mcnn")
    mio.save_checkpoint(tmp_path / "c.ckpt", model, epoch=1)
    state = OrderedDict((k, v) for k, v in model.state_dict().items())
    (tmp_path / "plain.safetensors").write_bytes(safetensors.numpy.save(dict(state)))
    for name in ("m.mcnn", "c.ckpt", "plain.safetensors"):
        fresh = Sequential(OrderedDict(
            features=Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.25)),
            head=nn.Linear(8, 3)))
        assert mio.load_weights(fresh, tmp_path / name) == mio.LoadReport([], [])
        _state_equal(model, fresh)


def test_load_matching_swaps_a_head_with_another_class_count(tmp_path):
    minicnn.manual_seed(3)
    pretrained = Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 10))
    mio.save_weights(pretrained, tmp_path / "p.safetensors")
    minicnn.manual_seed(4)
    model = Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Sigmoid())
    head_before = model[2].weight.data.copy()
    report = mio.load_matching(model, tmp_path / "p.safetensors")
    assert report.loaded == ["0.weight", "0.bias"]
    assert report.mismatched == [("2.weight", (10, 8), (3, 8)), ("2.bias", (10,), (3,))]
    assert report.missing == [] and report.unexpected == []
    np.testing.assert_array_equal(model[0].weight.data, pretrained[0].weight.data)
    np.testing.assert_array_equal(model[2].weight.data, head_before)
    report = mio.load_matching(model, pretrained.state_dict())   # a state dict works too
    assert report.loaded == ["0.weight", "0.bias"]


def test_head_swap_and_freeze_recipe(tmp_path):
    model = _mlp()
    mio.save(model, tmp_path / "m.mcnn")
    loaded = mio.load(tmp_path / "m.mcnn")
    loaded[-1] = nn.Linear(8, 5)
    loaded.freeze("features")
    out = loaded.eval()(np.ones((2, 4), np.float32))
    assert out.shape == (2, 5)
    assert [n for n, p in loaded.named_parameters() if p.requires_grad] == \
        ["head.weight", "head.bias"]


# -- checkpoints -----------------------------------------------------------------------------------

class _MomentumSGD:
    """A hand-written optimizer with the state-dict contract (nested dicts, int keys, arrays)."""

    def __init__(self, params, lr=0.05, momentum=0.9):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.state = {}

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None or not p.requires_grad:
                continue
            buf = self.state.setdefault(i, {"momentum_buffer": np.zeros_like(p.data), "steps": 0})
            buf["momentum_buffer"] = self.momentum * buf["momentum_buffer"] + p.grad
            buf["steps"] += 1
            p.data -= self.lr * buf["momentum_buffer"]

    def state_dict(self):
        return {"state": {i: dict(s) for i, s in self.state.items()},
                "param_groups": [{"lr": self.lr, "momentum": self.momentum,
                                  "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state):
        self.lr = state["param_groups"][0]["lr"]
        self.momentum = state["param_groups"][0]["momentum"]
        self.state = {int(i): {"momentum_buffer": np.array(s["momentum_buffer"]),
                               "steps": s["steps"]} for i, s in state["state"].items()}


class _Halving:
    """A hand-written schedule: halves the rate every ``every`` steps."""

    def __init__(self, opt, every=7):
        self.opt, self.every, self.count = opt, every, 0

    def step(self):
        self.count += 1
        if self.count % self.every == 0:
            self.opt.lr *= 0.5

    def state_dict(self):
        return {"every": self.every, "count": self.count}

    def load_state_dict(self, state):
        self.every, self.count = state["every"], state["count"]


def _net(seed):
    minicnn.manual_seed(seed)
    return Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(0.3),
                      nn.Linear(16, 3))


_X = np.random.default_rng(10).standard_normal((64, 4)).astype(np.float32)
_T = np.random.default_rng(11).standard_normal((64, 3)).astype(np.float32)


def _train(model, opt, sched, steps):
    for _ in range(steps):
        idx = minicnn.random.generator().integers(0, len(_X), 8)   # data order from minicnn's rng
        y = model(_X[idx])
        model.backward(2.0 * (y - _T[idx]) / y.size)               # mean squared error
        opt.step()
        sched.step()


def _make_optim(kind, model):
    if kind == "hand-written":
        opt = _MomentumSGD(model.parameters())
        return opt, _Halving(opt)
    optim = pytest.importorskip("minicnn.optim")
    opt = optim.Adam(model.parameters(), lr=0.01)
    return opt, optim.StepLR(opt, step_size=5, gamma=0.7)


@pytest.mark.parametrize("kind", ["hand-written", "minicnn.optim"])
def test_checkpoint_resume_is_bit_identical(tmp_path, kind):
    k = 15
    model = _net(0)
    opt, sched = _make_optim(kind, model)
    _train(model, opt, sched, 2 * k)
    reference = model.state_dict()

    model = _net(0)
    opt, sched = _make_optim(kind, model)
    _train(model, opt, sched, k)
    mio.save_checkpoint(tmp_path / "c.ckpt", model, opt, sched, epoch=3, step=k,
                        extra={"best": 0.25, "history": [1.0, 0.5], "order": np.arange(4)})
    _train(model, opt, sched, 3)          # wander off: the checkpoint must bring everything back

    fresh = _net(123)                     # other initial weights and dropout generator
    fresh_opt, fresh_sched = _make_optim(kind, fresh)
    info = mio.load_checkpoint(tmp_path / "c.ckpt", fresh, fresh_opt, fresh_sched)
    assert info["epoch"] == 3 and info["step"] == k and info["extra"]["best"] == 0.25
    np.testing.assert_array_equal(info["extra"]["order"], np.arange(4))
    _train(fresh, fresh_opt, fresh_sched, k)
    resumed = fresh.state_dict()
    assert list(resumed) == list(reference)
    for key in reference:
        np.testing.assert_array_equal(resumed[key], reference[key], err_msg=key)


def test_checkpoint_errors(tmp_path):
    model = _net(0)
    mio.save_checkpoint(tmp_path / "c.ckpt", model)
    with pytest.raises(ModelFormatError, match="no optimizer state"):
        mio.load_checkpoint(tmp_path / "c.ckpt", _net(1), _MomentumSGD(model.parameters()))
    mio.save_weights(model, tmp_path / "w.safetensors")
    with pytest.raises(ModelFormatError, match="not a 'checkpoint' file"):
        mio.load_checkpoint(tmp_path / "w.safetensors", model)
    with pytest.raises(ModelFormatError, match="random generators for layers"):
        mio.load_checkpoint(tmp_path / "c.ckpt", Sequential(
            nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Identity(), nn.Linear(16, 3)))
    with pytest.raises(ModelFormatError, match="the weights do not match the model"):
        mio.load_checkpoint(tmp_path / "c.ckpt", Sequential(nn.Linear(4, 16), nn.Tanh(),
                                                            nn.Tanh(), nn.Dropout()))


def test_checkpoint_random_state_with_an_array_for_a_name(tmp_path):
    mio.save_checkpoint(tmp_path / "c.ckpt", _net(0))

    def edit(doc):
        doc["rng"]["minicnn"]["__dict__"][0][1] = {"__array__": "rng/x", "dtype": "i8"}
    _rewrite(tmp_path / "c.ckpt", tmp_path / "bad.ckpt", edit,
             lambda t: t.update({"rng/x": np.arange(2)}), entry="checkpoint")
    with pytest.raises(ModelFormatError, match=r"rng of minicnn: unsupported bit generator array"):
        mio.load_checkpoint(tmp_path / "bad.ckpt", _net(1))
