"""The container of every minicnn file: safetensors (an 8-byte little-endian header length, a JSON
header, then raw little-endian tensor bytes), written atomically, read with every size checked
before anything is allocated.

Only float32, float64 and int64 tensors are accepted. minicnn's files carry string metadata
(``format``, ``format_version``, ``kind``, JSON documents) and a ``sha256`` digest over the metadata
and every tensor (name, dtype, shape, bytes), verified on load, so a flipped bit anywhere is caught.
Plain safetensors files from other tools (no digest) load too.

Reading never trusts the file: the header length is checked against the file size and a hard limit
before the header is read, the JSON is parsed with duplicate keys rejected, and every tensor's
offsets, dtype and shape are checked (in range, no overlap, no gap, byte size equal to the shape's)
before any array is made. Every problem is one :class:`minicnn.ModelFormatError` naming the file.
"""

import hashlib
import json
import os
import struct
from collections import OrderedDict

import numpy as np

from ..errors import ModelFormatError
from .atomic import atomic_write_chunks

FORMAT = "minicnn"
FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 100 * 1024 * 1024     # the same limit as the safetensors library
MAX_RANK = 16
MAX_EXTENT = 1 << 48                      # bytes spanned by a shape, counting empty axes as 1
DIGEST_KEY = "sha256"

_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}
_CODES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _digest(metadata, tensors):
    """sha256 of the metadata (without the digest) and every tensor's name, dtype, shape, data."""
    h = hashlib.sha256()

    def put(text):
        raw = text.encode("utf-8")
        h.update(struct.pack("<Q", len(raw)))
        h.update(raw)

    for key in sorted(metadata):
        if key != DIGEST_KEY:
            put(key)
            put(metadata[key])
    for name in sorted(tensors):
        array = tensors[name]
        put(name)
        put(_CODES[np.dtype(array.dtype).newbyteorder("=")])
        put(",".join(str(d) for d in array.shape))
        data = np.asarray(array, order="C")
        if data.dtype.byteorder == ">":
            data = data.astype(data.dtype.newbyteorder("<"))
        h.update(struct.pack("<Q", data.nbytes))
        h.update(data.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _prepare(tensors):
    """Tensors as C-ordered little-endian arrays, 8-byte dtypes first (so every offset stays
    aligned to its itemsize after the 8-byte-aligned header)."""
    clean = OrderedDict()
    for name, array in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be strings, got {name!r}")
        array = np.asarray(array)
        if np.dtype(array.dtype).newbyteorder("=") not in _CODES:
            raise TypeError(f"tensor '{name}' has dtype {array.dtype}; minicnn files hold only "
                            f"float32, float64 and int64")
        clean[name] = np.asarray(array.astype(array.dtype.newbyteorder("<"), copy=False),
                                 order="C")
    order = sorted(clean, key=lambda n: -clean[n].dtype.itemsize)   # stable: keeps name order
    return OrderedDict((n, clean[n]) for n in order)


def encode_chunks(tensors, metadata):
    """The safetensors file as a list of buffers: the length, the header, then each tensor's bytes
    (views of the arrays, not copies). The digest is added to the metadata."""
    clean = _prepare(tensors)
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta[DIGEST_KEY] = _digest(meta, clean)
    header = OrderedDict([("__metadata__", meta)])
    offset = 0
    for name, array in clean.items():
        header[name] = {"dtype": _CODES[np.dtype(array.dtype).newbyteorder("=")],
                        "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)          # pad so the data starts 8-byte aligned
    if len(text) > MAX_HEADER_BYTES:         # refuse to write what read_file would refuse
        raise ValueError(f"the safetensors header would take {len(text)} bytes, more than the "
                         f"limit of {MAX_HEADER_BYTES} bytes (metadata too large?)")
    return [struct.pack("<Q", len(text)), text] + [a.reshape(-1).view(np.uint8)
                                                    for a in clean.values()]


def encode_file(tensors, metadata):
    """The bytes of a safetensors file holding ``tensors`` and ``metadata`` (digest added)."""
    return b"".join(bytes(chunk) for chunk in encode_chunks(tensors, metadata))


def write_file(path, tensors, metadata):
    """Write a safetensors file atomically (:mod:`minicnn.io.atomic`), streaming the arrays."""
    atomic_write_chunks(path, encode_chunks(tensors, metadata))


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _finite_float(text):
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range (not finite)")
    return value


def _no_constant(name):
    raise ValueError(f"{name} is not allowed here")


def parse_json(text, what, path, allow_nan=True):
    """``json.loads``; duplicate keys, deep nesting, huge numbers become ModelFormatError.

    ``allow_nan=False`` also refuses ``NaN``, ``Infinity`` and numbers that overflow to infinity
    (``1e999``): strict JSON.
    """
    extra = {} if allow_nan else {"parse_float": _finite_float, "parse_constant": _no_constant}
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, **extra)
    except (ValueError, RecursionError, TypeError) as exc:
        raise ModelFormatError(f"{what} is not valid JSON: {exc}", path=path) from None


def _check_entry(name, entry, data_len, path):
    where = f"tensor '{name}'"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelFormatError(f"{where}: a header entry must have exactly 'dtype', 'shape' and "
                               f"'data_offsets'", path=path)
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ModelFormatError(f"{where} has dtype {dtype!r:.40}; minicnn reads only F32, F64 "
                               f"and I64 (float32, float64, int64)", path=path)
    shape = entry["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_RANK \
            or not all(_is_int(d) and d >= 0 for d in shape):
        raise ModelFormatError(f"{where} has an invalid shape {shape!r}", path=path)
    offsets = entry["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        raise ModelFormatError(f"{where} has invalid data_offsets {offsets!r}", path=path)
    begin, end = offsets
    if not 0 <= begin <= end <= data_len:
        raise ModelFormatError(f"{where}: data_offsets [{begin}, {end}] are out of range (the data "
                               f"section has {data_len} bytes)", path=path)
    count, extent = 1, _DTYPES[dtype].itemsize
    for d in shape:
        count *= d
        extent *= max(d, 1)
    if extent > MAX_EXTENT:      # even when empty: numpy refuses such shapes
        raise ModelFormatError(f"{where} has an absurd shape {shape}", path=path)
    nbytes = count * _DTYPES[dtype].itemsize
    if nbytes != end - begin:
        raise ModelFormatError(f"{where}: shape {shape} of {dtype} needs {nbytes} bytes, the "
                               f"offsets give {end - begin}", path=path)
    return _DTYPES[dtype], tuple(shape), begin, end


def read_file(path, verify=True):
    """``(tensors, metadata)`` of a safetensors file; any defect is a ModelFormatError.

    Tensors are read-only-safe numpy arrays (views into one buffer read from the file; copy them
    before keeping them long if memory matters). ``verify`` checks minicnn's digest when present.
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ModelFormatError(f"cannot open: {exc.strerror or exc}", path=path) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ModelFormatError(f"not a safetensors file: truncated to {size} bytes (it must "
                                   f"start with an 8-byte header length)", path=path)
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > size - 8:
            raise ModelFormatError(f"not a safetensors file or truncated: header length "
                                   f"{header_len} is larger than the file ({size} bytes)",
                                   path=path)
        if header_len > MAX_HEADER_BYTES:
            raise ModelFormatError(f"header length {header_len} exceeds the limit of "
                                   f"{MAX_HEADER_BYTES} bytes", path=path)
        if header_len < 2:
            raise ModelFormatError(f"not a safetensors file: header length {header_len}", path=path)
        raw = f.read(header_len)
        if len(raw) != header_len:
            raise ModelFormatError("truncated while reading the header", path=path)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelFormatError(f"not a safetensors file: header is not UTF-8 ({exc})",
                                   path=path) from None
        header = parse_json(text, "the safetensors header", path)
        if not isinstance(header, dict):
            raise ModelFormatError("not a safetensors file: the header is not a JSON object",
                                   path=path)
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ModelFormatError("__metadata__ must map strings to strings", path=path)
        data_len = size - 8 - header_len
        entries = OrderedDict()
        for name, entry in header.items():
            entries[name] = _check_entry(name, entry, data_len, path)
        spans = sorted((begin, end, name) for name, (_, _, begin, end) in entries.items())
        position = 0
        for begin, end, name in spans:
            if begin < position:
                raise ModelFormatError(f"tensor '{name}' overlaps the previous tensor (offset "
                                       f"{begin} < {position})", path=path)
            if begin > position:
                raise ModelFormatError(f"gap of {begin - position} bytes before tensor '{name}'",
                                       path=path)
            position = end
        if position != data_len:
            raise ModelFormatError(f"the data section has {data_len} bytes but the tensors cover "
                                   f"{position} (extra bytes or truncated)", path=path)
        buffer = np.empty(data_len, np.uint8)      # not zero-filled: every byte is read
        if f.readinto(buffer) != data_len:
            raise ModelFormatError("truncated while reading the tensor data", path=path)
    tensors = OrderedDict()
    for name, (dtype, shape, begin, end) in entries.items():
        array = np.frombuffer(buffer, dtype=dtype, count=(end - begin) // dtype.itemsize,
                              offset=begin).reshape(shape)
        if not array.flags.aligned or dtype.byteorder == ">":
            array = array.astype(dtype.newbyteorder("="))
        tensors[name] = array
    if verify and DIGEST_KEY in metadata:
        if _digest(metadata, tensors) != metadata[DIGEST_KEY]:
            raise ModelFormatError("checksum mismatch: the file is corrupted (its sha256 digest "
                                   "does not match its contents)", path=path)
    return tensors, metadata


def check_minicnn(metadata, kind, path):
    """Raise unless the metadata says this is a minicnn file of ``kind`` (None: any kind) in a
    version we read."""
    fmt = metadata.get("format")
    if fmt != FORMAT:
        what = "minicnn file" if kind is None else f"minicnn {kind} file"
        raise ModelFormatError(f"not a {what} (metadata format={fmt!r}; expected {FORMAT!r})",
                               path=path)
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"unsupported minicnn file format version {version!r} (this minicnn "
                               f"reads version {FORMAT_VERSION})", path=path)
    if kind is not None and metadata.get("kind") != kind:
        raise ModelFormatError(f"this is a minicnn {metadata.get('kind')!r} file, not a {kind!r} "
                               f"file", path=path)


def base_metadata(kind):
    from .. import __version__
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "minicnn_version": __version__}
