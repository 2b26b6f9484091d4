"""Querysets compiled to SQL once per database connection, then run with each call's values.

Compiling a queryset (its joins, select list and converters) costs the ORM several times the
statement itself: on a task page two small reads, an assignment with its HIT, batch, dataset and
worker and the HIT's ten items, were a fifth of the view's CPU. ``Prepared`` keeps what the
compiler worked out for one shape of query (how many values each argument holds) and runs that
SQL with the next call's values, building the model instances as the ORM does.

On PostgreSQL the statement is also prepared on the server (psycopg's ``prepare=True``), so the
planner does not plan it again on every call: planning a five-table join cost the database
more than running it. Only these statements are prepared; everything else keeps Django's
default of client-side binding.

The values are found in the compiled SQL's parameters by compiling once with stand-in values of
the same types, so a query may hold constants of its own (a status filter, say) and take its
arguments in any order. Each argument is an int, a str or a sequence of one of those (an ``IN``
list, compiled once per length). Anything else, or a list longer than ``max_list``, runs through
the ORM as usual.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections, router
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

Arg = int | str | Sequence[int] | Sequence[str]


@dataclass
class _Plan:
    sql: str
    params: list[Any]  # the compiled parameters; stand-ins are replaced per call
    slots: list[tuple[int, int, int | None]]  # (param position, argument, element or None)
    compiler: Any
    converters: dict
    model: type[Model]
    init_list: list[str]
    start: int
    end: int
    populators: list


class Prepared:
    """``Prepared(Model, build)(*args)`` is ``list(build(*args))``, compiled once per shape."""

    def __init__(self, model: type[Model], build: Callable[..., QuerySet], *, max_list: int = 500):
        self.model = model
        self._build = build
        self._max_list = max_list
        self._plans: weakref.WeakKeyDictionary[Any, dict[tuple, _Plan]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __call__(self, *args: Arg) -> list[Model]:
        shape = tuple(_shape(a) for a in args)
        if any(s is False for s in shape) or any(
            isinstance(s, int) and s > self._max_list for s in shape
        ):
            return list(self._build(*args))
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        with self._lock:
            plans = self._plans.setdefault(connection, {})
        plan = plans.get(shape)
        if plan is None:
            plan = self._compile(alias, args)
            if plan is None:
                return list(self._build(*args))
            plans[shape] = plan
        params = list(plan.params)
        for pos, arg, element in plan.slots:
            value = args[arg]
            params[pos] = value if element is None else value[element]  # type: ignore[index]
        with connection.cursor() as cursor, _server_prepared(cursor) as prepared:
            prepared.execute(plan.sql, params)
            rows: Any = prepared.fetchall()
        if plan.converters:
            rows = plan.compiler.apply_converters(rows, plan.converters)
        out = []
        for row in rows:
            obj = plan.model.from_db(alias, plan.init_list, row[plan.start : plan.end])
            for populator in plan.populators:
                populator.populate(row, obj)
            out.append(obj)
        return out

    def _compile(self, alias: str, args: Sequence[Arg]) -> _Plan | None:
        """The plan for the shape of ``args``, found by compiling with stand-in values; None
        when a stand-in does not come through to the parameters unchanged."""
        stand_ins: dict[Any, tuple[int, int | None]] = {}
        fake: list[Any] = []
        for n, arg in enumerate(args):
            if isinstance(arg, int | str):
                value = _stand_in(arg, len(stand_ins))
                stand_ins[value] = (n, None)
                fake.append(value)
            else:
                values = []
                for m, element in enumerate(arg):
                    value = _stand_in(element, len(stand_ins))
                    stand_ins[value] = (n, m)
                    values.append(value)
                fake.append(values)
        queryset = self._build(*fake)
        compiler = queryset.query.get_compiler(using=alias)
        try:
            sql, params = compiler.as_sql()
        except (EmptyResultSet, FullResultSet):  # a stand-in outside its field's range
            return None
        slots = [
            (pos, *stand_ins[value])
            for pos, value in enumerate(params)
            if isinstance(value, int | str) and value in stand_ins
        ]
        if len(slots) != len(stand_ins) or queryset._known_related_objects:
            return None
        klass_info = compiler.klass_info
        select = compiler.select
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        return _Plan(
            sql=sql,
            params=list(params),
            slots=slots,
            compiler=compiler,
            converters=compiler.get_converters([s[0] for s in select[: compiler.col_count]]),
            model=klass_info["model"],
            init_list=[f[0].target.attname for f in select[start:end]],
            start=start,
            end=end,
            populators=get_related_populators(klass_info, select, alias),
        )


def _server_prepared(cursor):
    """On PostgreSQL with psycopg 3 and prepared statements allowed (the connection has a
    ``prepare_threshold``, see the settings): ``cursor``'s wrapper (error mapping, execute
    wrappers and query logging as Django's) over a cursor on the same connection that binds
    values on the server and prepares what it runs. Elsewhere: ``cursor`` itself."""
    preparing = _preparing_cursor(cursor.db.vendor)
    if preparing is None or getattr(cursor.cursor.connection, "prepare_threshold", None) is None:
        return contextlib.nullcontext(cursor)  # the settings turned prepared statements off
    wrapper = _LoggedPrepared if isinstance(cursor, CursorDebugWrapper) else type(cursor)
    return wrapper(preparing(cursor.cursor.connection), cursor.db)


class _LoggedPrepared(CursorDebugWrapper):
    """Logs the statement with its values, as Django logs its own PostgreSQL queries (psycopg
    keeps no text of a statement it ran by name)."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params), params):
            return CursorWrapper.execute(self, sql, params)


@functools.cache
def _preparing_cursor(vendor: str) -> type | None:
    if vendor != "postgresql":
        return None
    from django.db.backends.postgresql import base as postgresql

    base = getattr(postgresql, "ServerBindingCursor", None)
    if base is None:  # psycopg 2 binds on the client only
        return None

    class PreparingCursor(base):  # type: ignore[misc, valid-type]
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparingCursor


def _shape(arg: Any) -> int | None | bool:
    """None for one value, the length for a list of values, False for anything else."""
    if isinstance(arg, bool):
        return False
    if isinstance(arg, int | str):
        return None
    if isinstance(arg, list | tuple) and all(
        isinstance(a, int | str) and not isinstance(a, bool) for a in arg
    ):
        return len(arg)
    return False


def _stand_in(value: int | str, n: int) -> int | str:
    """A value of ``value``'s type that no real call uses: integers near the top of a 32-bit
    field's range (inside it, or the ORM would compile the query to nothing), so that every
    integer column takes them; a query constant equal to one is caught by ``_compile``."""
    if isinstance(value, int):
        return 2_147_480_000 + n
    return f"\x00prepared-stand-in-{n}\x00"
