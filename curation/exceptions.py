"""Errors of the curation app."""


class CurationError(Exception):
    """Base class for the curation app's errors."""


class RunInputError(CurationError):
    """A run's items, labels or feature source cannot be used; the message says why."""


class ReviewBatchRefused(CurationError):
    """No review batch can be made from this run as asked (nothing selected, wrong state)."""


class RetrievalRefused(CurationError):
    """A retrieval run cannot be made, ranked, verified or exported as asked; the message says
    why."""
