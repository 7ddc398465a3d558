"""Errors of the data package: a file that is not what it claims to be, a dataset that is not
there."""

from ..errors import MinicnnError


class DataFormatError(MinicnnError, ValueError):
    """A data file is malformed, truncated, hostile (a decompression bomb) or of the wrong kind.

    The message always names the file and says what is wrong with it.
    """


class DatasetNotFoundError(MinicnnError, FileNotFoundError):
    """The files a dataset needs are missing; the message names every missing file and where it
    looked."""
