"""What a command says when its database is missing its tables or cannot be reached.

A command run before ``migrate`` (or against a database server that is down) would otherwise end
in the driver's traceback. Only these two cases are translated; any other database error is a
bug and keeps its traceback.
"""

from __future__ import annotations

_SQLITE_MISSING_TABLE = "no such table"
_PG_UNDEFINED_TABLE = "42P01"  # SQLSTATE undefined_table


def database_error_message(exc: BaseException) -> str | None:
    """A one-line explanation of ``exc`` for the command line, or None to let it propagate."""
    from django.db.utils import OperationalError, ProgrammingError

    if not isinstance(exc, OperationalError | ProgrammingError):
        return None
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if sqlstate == _PG_UNDEFINED_TABLE or (
        isinstance(exc, OperationalError) and text.startswith(_SQLITE_MISSING_TABLE)
    ):
        return f"the database has no tables yet ({text}): run `python manage.py migrate` first"
    if isinstance(exc, OperationalError) and _is_connection_error(text):
        return f"cannot reach the database ({text}): check DATABASE_URL and that its server runs"
    return None


def _is_connection_error(text: str) -> bool:
    lowered = text.lower()
    return any(
        s in lowered
        for s in ("connection", "could not connect", "unable to open database", "timeout expired")
    )
