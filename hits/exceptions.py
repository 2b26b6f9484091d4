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


class NoMoreTasks(MarketRefused):
    """The batch has no HIT left that this worker may take."""


class BatchStateError(HitsError):
    """The batch is not in a state that allows this action."""


class Refused(HitsError):
    """A worker's request was refused and nothing was stored: ``code`` says why in a word,
    ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, code: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class TokenRefused(Refused):
    """A task token is forged, altered, for another HIT, or expired."""


class SubmissionRefused(Refused):
    """A submission was refused; for one already submitted, the answers that were kept."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        already_submitted: bool = False,
        answers: list | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.already_submitted = already_submitted
        self.answers = answers
