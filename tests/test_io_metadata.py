"""User metadata in model and weights files: ``minicnn.save(model, path, metadata=...)``,
``save_weights(..., metadata=...)`` and ``minicnn.io.read_metadata``."""

import json
import math
import struct
from collections import OrderedDict

import numpy as np
import pytest
import safetensors.numpy

import minicnn
from minicnn import ModelFormatError, Sequential, nn
from minicnn import io as mio
from minicnn.io import tensorfile


def _model():
    minicnn.manual_seed(0)
    return Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


NESTED = {
    "classes": ["background", "cat", "dög", "日本"],
    "preprocess": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                   "size": 224, "flip": False, "crop": None},
    "history": [{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.75, "notes": [[1, [2, [3]]]]}],
    "big": 2 ** 70, "negative": -1e-300, "empty": {}, "nothing": [],
    "": "an empty key", "quote\"and\\slash": "\u0000 and \n",
}


def test_round_trip_of_nested_values(tmp_path):
    model = _model()
    path = tmp_path / "m.mcnn"
    minicnn.save(model, path, metadata=NESTED)
    got = mio.read_metadata(path)
    assert got == NESTED and got is not NESTED
    assert type(got["big"]) is int and type(got["preprocess"]["flip"]) is bool
    again = minicnn.load(path)                       # the model is unaffected
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    model.eval(), again.eval()
    np.testing.assert_array_equal(model(x), again(x))
    # one JSON entry next to the architecture, covered by the digest
    _, raw = tensorfile.read_file(path)
    assert json.loads(raw["user_metadata"]) == NESTED
    assert {"architecture", "sha256", "format", "kind"} <= set(raw)


def test_tuples_are_stored_as_lists_and_str_path_works(tmp_path):
    path = str(tmp_path / "m.mcnn")
    mio.save(_model(), path, metadata={"shape": (3, 224, 224), "pairs": ((1, 2), [3, 4])})
    assert mio.read_metadata(path) == {"shape": [3, 224, 224], "pairs": [[1, 2], [3, 4]]}


def test_read_metadata_of_files_saved_without_it(tmp_path):
    minicnn.save(_model(), tmp_path / "m.mcnn")
    assert mio.read_metadata(tmp_path / "m.mcnn") == {}
    mio.save_weights(_model(), tmp_path / "w.safetensors")
    assert mio.read_metadata(tmp_path / "w.safetensors") == {}
    mio.save_checkpoint(tmp_path / "c.safetensors", _model(), epoch=3)
    assert mio.read_metadata(tmp_path / "c.safetensors") == {}
    minicnn.save(_model(), tmp_path / "e.mcnn", metadata={})
    assert mio.read_metadata(tmp_path / "e.mcnn") == {}


def test_weights_files_carry_metadata_too(tmp_path):
    path = tmp_path / "w.safetensors"
    model = _model()
    mio.save_weights(model, path, metadata={"source": "test", "epoch": 7})
    assert mio.read_metadata(path) == {"source": "test", "epoch": 7}
    other = _model()
    for p in other.parameters():
        p.data[...] = 0
    report = mio.load_weights(other, path)
    assert report.missing == [] and report.unexpected == []
    np.testing.assert_array_equal(other[0].weight.data, model[0].weight.data)


def test_files_without_metadata_written_by_the_old_code_still_load(tmp_path):
    """A model file as minicnn wrote it before metadata existed (no user_metadata entry)."""
    model = _model()
    tensors = OrderedDict(model.state_dict())
    new = tmp_path / "new.mcnn"
    minicnn.save(model, new)
    _, meta = tensorfile.read_file(new)
    meta = {k: v for k, v in meta.items() if k != "sha256"}
    assert "user_metadata" not in meta
    old = tmp_path / "old.mcnn"
    tensorfile.write_file(old, tensors, meta)
    again = minicnn.load(old)
    np.testing.assert_array_equal(again[3].weight.data, model[3].weight.data)
    assert mio.read_metadata(old) == {}


def test_read_metadata_of_a_plain_safetensors_file_is_a_clear_error(tmp_path):
    path = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({"w": np.ones(3, np.float32)}, str(path),
                                metadata={"user_metadata": "{\"a\": 1}", "format": "pt"})
    with pytest.raises(ModelFormatError, match="not a minicnn file") as info:
        mio.read_metadata(path)
    assert info.value.path == str(path)
    safetensors.numpy.save_file({"w": np.ones(3, np.float32)}, str(path))   # no metadata at all
    with pytest.raises(ModelFormatError, match="not a minicnn file"):
        mio.read_metadata(path)
    with pytest.raises(ModelFormatError, match="cannot open"):
        mio.read_metadata(tmp_path / "missing.mcnn")


class Odd:
    pass


def _cycle():
    a = {"x": []}
    a["x"].append(a)
    return a


INVALID = [
    ({"a": {"b": [1, 2, float("nan")]}}, ValueError, r"metadata\['a'\]\['b'\]\[2\] is nan"),
    ({"lr": math.inf}, ValueError, r"metadata\['lr'\] is inf.*finite"),
    ({"a": [{"b": -math.inf}]}, ValueError, r"metadata\['a'\]\[0\]\['b'\]"),
    ({"arr": np.zeros(3)}, TypeError, r"metadata\['arr'\] is a ndarray"),
    ({"n": np.int64(3)}, TypeError, r"metadata\['n'\] is a int64"),
    ({"a": {"s": {1, 2}}}, TypeError, r"metadata\['a'\]\['s'\] is a set"),
    ({"a": [b"bytes"]}, TypeError, r"metadata\['a'\]\[0\] is a bytes"),
    ({"o": Odd()}, TypeError, r"metadata\['o'\] is a Odd"),
    ({"a": {1: "x"}}, TypeError, r"metadata\['a'\] has the key 1 of type int.*keys must be str"),
    ({("t",): 1}, TypeError, r"metadata has the key \('t',\)"),
    ({"huge": 1 << 5000}, ValueError, r"metadata\['huge'\] is an integer of 5001 bits"),
    (_cycle(), ValueError, r"metadata\['x'\]\[0\] contains itself"),
    ([1, 2], TypeError, "metadata must be a dict"),
    ("text", TypeError, "metadata must be a dict"),
]


@pytest.mark.parametrize("metadata, error, match", INVALID,
                         ids=[m for _, _, m in INVALID])
def test_invalid_metadata_is_refused_before_writing(tmp_path, metadata, error, match):
    for save, name in ((mio.save, "m.mcnn"), (mio.save_weights, "w.safetensors")):
        path = tmp_path / name
        with pytest.raises(error, match=match):
            save(_model(), path, metadata=metadata)
        assert not path.exists() and list(tmp_path.iterdir()) == []


def test_invalid_metadata_leaves_an_existing_file_untouched(tmp_path):
    path = tmp_path / "m.mcnn"
    minicnn.save(_model(), path, metadata={"v": 1})
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"metadata\['v'\]"):
        minicnn.save(_model(), path, metadata={"v": float("nan")})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.mcnn"]


def test_too_deep_metadata_is_refused(tmp_path):
    deep = leaf = {}
    for _ in range(150):
        leaf["d"] = {}
        leaf = leaf["d"]
    with pytest.raises(ValueError, match="nested more than 100 levels"):
        minicnn.save(_model(), tmp_path / "m.mcnn", metadata=deep)
    assert not (tmp_path / "m.mcnn").exists()
    ok = leaf = {}
    for _ in range(99):
        leaf["d"] = {}
        leaf = leaf["d"]
    minicnn.save(_model(), tmp_path / "m.mcnn", metadata=ok)
    assert mio.read_metadata(tmp_path / "m.mcnn") == ok


def test_metadata_too_large_for_the_header_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorfile, "MAX_HEADER_BYTES", 4096)
    with pytest.raises(ValueError, match="limit of 4096 bytes"):
        minicnn.save(_model(), tmp_path / "m.mcnn", metadata={"text": "x" * 5000})
    assert list(tmp_path.iterdir()) == []


def _with_entry(src, dst, text):
    """``src`` rewritten with a new (valid-digest) user_metadata entry: a hostile writer."""
    tensors, meta = tensorfile.read_file(src)
    meta = {k: v for k, v in meta.items() if k != "sha256"}
    meta["user_metadata"] = text
    tensorfile.write_file(dst, OrderedDict((k, np.array(v)) for k, v in tensors.items()), meta)


HOSTILE = {
    "not json": ("{nope", "not valid JSON"),
    "list": ("[1, 2]", "must be a JSON object, not list"),
    "string": ("\"text\"", "must be a JSON object, not str"),
    "null": ("null", "must be a JSON object, not NoneType"),
    "duplicate": ("{\"a\": 1, \"a\": 2}", "duplicate key 'a'"),
    "nan": ("{\"a\": NaN}", "NaN is not allowed"),
    "infinity": ("{\"a\": [-Infinity]}", "Infinity is not allowed"),
    "overflow": ("{\"a\": 1e999}", "not finite"),
    "deep": ("{\"a\": " + "[" * 100000 + "]" * 100000 + "}", "not valid JSON"),
    "huge int": ("{\"a\": " + "9" * 20000 + "}", "not valid JSON"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_metadata_entry_is_a_model_format_error(tmp_path, name):
    text, match = HOSTILE[name]
    src, path = tmp_path / "m.mcnn", tmp_path / "hostile.mcnn"
    minicnn.save(_model(), src)
    _with_entry(src, path, text)
    with pytest.raises(ModelFormatError, match=match) as info:
        mio.read_metadata(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    minicnn.load(path)                  # the model itself does not depend on the entry


def test_changed_metadata_is_caught_by_the_checksum(tmp_path):
    path = tmp_path / "m.mcnn"
    minicnn.save(_model(), path, metadata={"label": "cat"})
    raw = bytearray(path.read_bytes())
    at = raw.index(b"cat")
    raw[at:at + 3] = b"dog"
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError, match="checksum"):
        mio.read_metadata(path)


def test_the_header_stays_a_plain_safetensors_header(tmp_path):
    path = tmp_path / "m.mcnn"
    minicnn.save(_model(), path, metadata={"k": ["v", 1]})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert all(isinstance(v, str) for v in header["__metadata__"].values())
    assert safetensors.numpy.load_file(str(path)).keys() == minicnn.load(path).state_dict().keys()
