"""Errors of the hits app."""


class HitsError(Exception):
    """Base class for the hits app's errors."""


class ProviderError(HitsError):
    """A provider call failed (wraps botocore errors; never swallowed)."""

    def __init__(self, message: str, *, code: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class AssignmentMismatch(HitsError):
    """An assignment id was presented with a different worker or HIT than it belongs to."""


class LaunchRefused(HitsError):
    """A launch may not go ahead (over budget or balance, unconfirmed live, wrong state);
    nothing was created."""


class MarketRefused(HitsError):
    """The built-in marketplace will not give this worker this HIT; the message says why."""


class BatchStateError(HitsError):
    """The batch is not in a state that allows this action."""
