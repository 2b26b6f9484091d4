"""Errors the annotation app raises; each message names the input and the problem."""


class AnnotationError(Exception):
    """Base class for the annotation app's errors."""


class DatasetImportError(AnnotationError, ValueError):
    """An import was refused; nothing was written."""


class UnsafePickleError(DatasetImportError):
    """A pickle named a global outside the allowed set."""


class ExportError(AnnotationError, ValueError):
    """An export cannot be produced from the dataset as it is."""


class AggregationError(AnnotationError, ValueError):
    """Votes cannot be aggregated as asked (no votes of the kind, unknown method, ...)."""
