"""The error every rank raises when another rank failed, hung or died."""

from ..errors import MinicnnError


class DistributedError(MinicnnError):
    """A collective could not complete: another rank raised, died, hung, or a timeout expired.

    ``rank`` is the rank that failed (None when it cannot be told), ``ranks`` every rank found
    silent. ``propagated`` is True on ranks that learned of the failure from another rank (they do
    not pass it on again); ``collective`` is True when every rank raised the same error at the same
    point (the communicator is then still consistent and the job may end normally).
    """

    def __init__(self, message, *, rank=None, ranks=None, propagated=False, collective=False):
        super().__init__(message)
        self.rank = rank
        self.ranks = list(ranks) if ranks is not None else ([] if rank is None else [rank])
        self.propagated = propagated
        self.collective = collective
