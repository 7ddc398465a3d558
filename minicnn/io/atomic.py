"""Atomic file writes: a reader (or a crash) sees either the old file or the complete new one.

The bytes go to a hidden temporary file in the target's directory (same file system, so the rename
is atomic), which is flushed and fsynced, then ``os.replace``-d over the target; finally the
directory is fsynced so the rename itself survives a power cut. On any exception the temporary file
is removed and the old file is left untouched. A process killed outright (SIGKILL, power loss) can
leave a stale ``.<name>.<random>.tmp`` beside the target, never a half-written target.
"""

import os
import uuid

_CHUNK = 1 << 22   # bytes per write call (4 MiB)


def _write_chunk(fd, view):
    """Write one chunk (a separate function so tests can slow it down or make it fail)."""
    while len(view):
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:          # platforms where directories cannot be opened (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_name(path):
    """The temporary name used while ``path`` is written (hidden, unique, same directory)."""
    directory, base = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp")


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes-like) to ``path`` atomically; returns the path."""
    return atomic_write_chunks(path, [data])


def atomic_write_chunks(path, buffers):
    """Write the concatenation of ``buffers`` (bytes-like objects, e.g. a header then arrays viewed
    as bytes) to ``path`` atomically, without joining them in memory; returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = temp_name(path)
    # 0o666 so the umask applies, as for a plain open(path, "wb")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            for data in buffers:
                view = memoryview(data).cast("B")
                for start in range(0, len(view), _CHUNK):
                    _write_chunk(fd, view[start:start + _CHUNK])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return path
