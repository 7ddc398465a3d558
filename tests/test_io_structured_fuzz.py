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
        try:
            model = mio.load(bad)
        except ModelFormatError as exc:
            assert str(bad) in str(exc), change
            outcomes["refused"] += 1
            continue
        except Exception as exc:   # anything else is the defect this test looks for
            pytest.fail(f"{change}: {type(exc).__name__}: {exc}")
        outcomes["loaded"] += 1
        try:
            model(x)
        except MinicnnError:
            pass
        except Exception as exc:
            pytest.fail(f"{change} loaded, then the forward pass raised "
                        f"{type(exc).__name__}: {exc}")
    assert outcomes["refused"] > 50 and outcomes["loaded"] > 5, outcomes
