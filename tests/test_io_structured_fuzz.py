"""Structure-aware fuzzing of model files and checkpoints.

Byte flips mostly stop at the checksum. Here one JSON value of the architecture or checkpoint entry
is replaced by a hostile one (a huge int, a list where a name goes, a tagged value that refers to
nothing, a copy of another part of the document) or deleted, and the digest is recomputed, so each
mutation reaches the decoders and builders. Every outcome must be a load, whose model then runs or
raises one of minicnn's own errors, or a single ModelFormatError that names the file; a refused
checkpoint changes nothing.
"""

import copy
import json
from collections import OrderedDict
from functools import partial

import numpy as np
import pytest

import minicnn
from minicnn import Input, Model, ModelFormatError, Sequential, nn
from minicnn import io as mio
from minicnn.errors import MinicnnError
from minicnn.io import tensorfile

REPLACEMENTS = [
    None, True, -1, 0, 3, 2**70, 10**9, 1.5, "x", "", [], {}, [1, [2]], {"a": 1},
    {"__tuple__": [[1]]}, {"__tuple__": [3, 3]}, {"__array__": "nope", "dtype": "i8"},
    {"__array__": "model/0.weight", "dtype": {}}, {"__dict__": [[[1], 2]]},
    {"__dict__": [[{"__tuple__": [[1]]}, 1]]}, {"__float__": "nan"}, {"__float__": [1]},
    {"__rng__": {"bit_generator": [1]}}, {"ref": 0}, ["node", 0, 0], ["input", 5],
]


def _paths(value, path=()):
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, path + (key,))


def _mutate(doc, rng):
    """A copy of ``doc`` with one value replaced or deleted, and a description of the change."""
    doc = copy.deepcopy(doc)
    paths = [p for p in _paths(doc) if p]
    path = paths[int(rng.integers(len(paths)))]
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key, roll = path[-1], rng.random()
    if roll < 0.15:
        del parent[key]
        return doc, f"deleted {list(path)}"
    if roll < 0.3:
        source = paths[int(rng.integers(len(paths)))]
        value = doc
        for k in source:
            value = value[k]
        parent[key] = copy.deepcopy(value)
        return doc, f"{list(path)} = copy of {list(source)}"
    value = REPLACEMENTS[int(rng.integers(len(REPLACEMENTS)))]
    parent[key] = copy.deepcopy(value)
    return doc, f"{list(path)} = {value!r}"


def _load(load, path, change):
    """``load(path)``, or None when it raised the one clear error; anything else fails."""
    try:
        return load(path)
    except ModelFormatError as exc:
        assert str(path) in str(exc), change
        return None
    except Exception as exc:   # anything else is the defect these tests look for
        pytest.fail(f"{change}: {type(exc).__name__}: {exc}")


def _use(run, change):
    """What loaded must run, or raise one of minicnn's own errors."""
    try:
        run()
    except MinicnnError:
        pass
    except Exception as exc:
        pytest.fail(f"{change} loaded, then raised {type(exc).__name__}: {exc}")


def _rewrite(src, dst, entry, doc):
    tensors, metadata = tensorfile.read_file(src)
    tensors = OrderedDict((k, np.array(v)) for k, v in tensors.items())
    metadata = dict(metadata)
    metadata[entry] = json.dumps(doc)
    tensorfile.write_file(dst, tensors, metadata)      # a fresh, valid digest


def _conv_net():
    return Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2))


def _dag():
    x = Input((4,))
    shared = nn.Linear(4, 4)
    h = nn.Tanh()(shared(x, name="fc1"), name="act1")
    skip = nn.Add()([shared(h, name="fc1_again"), x], name="skip")
    both = nn.Concat()([skip, h], name="both")
    return Model(x, [nn.Linear(8, 3)(both, name="head"), nn.Sigmoid()(h, name="aux")])


MODELS = {"conv": (_conv_net, (2, 2, 4, 4)), "dag": (_dag, (3, 4))}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_mutated_architectures_load_or_raise_one_clear_error(tmp_path, name):
    make, input_shape = MODELS[name]
    minicnn.manual_seed(0)
    mio.save(make(), tmp_path / "m.mcnn")
    doc = json.loads(tensorfile.read_file(tmp_path / "m.mcnn")[1]["architecture"])
    rng = np.random.default_rng(7)
    x = rng.standard_normal(input_shape).astype(np.float32)
    bad = tmp_path / "bad.mcnn"
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        mutated, change = _mutate(doc, rng)
        _rewrite(tmp_path / "m.mcnn", bad, "architecture", mutated)
        model = _load(mio.load, bad, change)
        outcomes["refused" if model is None else "loaded"] += 1
        if model is not None:
            _use(partial(model, x), change)
    assert outcomes["refused"] > 50 and outcomes["loaded"] > 5, outcomes


def _net():
    return Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Dropout(0.2),
                      nn.Linear(6, 3))


def _optimizers(kind, model):
    optim = minicnn.optim
    if kind == "sgd":
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        return opt, optim.StepLR(opt, step_size=2, gamma=0.5)
    opt = optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    warm = optim.LinearLR(opt, start_factor=0.5, total_iters=2)
    return opt, optim.SequentialLR(opt, [warm, optim.CosineAnnealingLR(opt, T_max=5)], [2])


def _steps(model, opt, sched, x, count=2):
    for _ in range(count):
        y = model(x)
        model.backward(np.ones_like(y) / y.size)
        opt.step()
        sched.step()


def _snapshot(model, opt, sched):
    return (model.state_dict(), repr(opt.state_dict()), repr(sched.state_dict()),
            repr(minicnn.random.generator().bit_generator.state))


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_mutated_checkpoints_restore_or_change_nothing(tmp_path, kind):
    x = np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)
    minicnn.manual_seed(0)
    model = _net()
    opt, sched = _optimizers(kind, model)
    _steps(model, opt, sched, x, 3)
    mio.save_checkpoint(tmp_path / "c.ckpt", model, opt, sched, epoch=1, step=3,
                        extra={"best": 0.5, "order": np.arange(3)})
    doc = json.loads(tensorfile.read_file(tmp_path / "c.ckpt")[1]["checkpoint"])
    rng = np.random.default_rng(11)
    bad = tmp_path / "bad.ckpt"
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        mutated, change = _mutate(doc, rng)
        _rewrite(tmp_path / "c.ckpt", bad, "checkpoint", mutated)
        minicnn.manual_seed(1)
        fresh = _net()
        fresh_opt, fresh_sched = _optimizers(kind, fresh)
        before = _snapshot(fresh, fresh_opt, fresh_sched)
        info = _load(partial(mio.load_checkpoint, model=fresh, optimizer=fresh_opt,
                             scheduler=fresh_sched), bad, change)
        if info is None:                        # refused: nothing may have changed
            after = _snapshot(fresh, fresh_opt, fresh_sched)
            for key in before[0]:
                np.testing.assert_array_equal(after[0][key], before[0][key], err_msg=change)
            assert after[1:] == before[1:], change
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        _use(partial(_steps, fresh, fresh_opt, fresh_sched, x), change)
    assert outcomes["refused"] > 50 and outcomes["loaded"] > 5, outcomes
