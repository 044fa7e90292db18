"""Model instances read by plain SQL, for the few statements run on every request of a hot page.

Building a statement with the ORM (its columns, joins, quoting) cost the listing's page more than
PostgreSQL took to run it, every time. ``Columns`` names a model's columns once; the page writes
its own ``SELECT`` with them and builds the instances from the rows, with the same converters the
ORM applies (SQLite's dates are text), so they behave as the ORM's. Columns left out are deferred:
reading one costs a query, never a wrong value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Field, Model

Converter = Callable[[Any, Any, Any], Any]


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """A cursor whose statements PostgreSQL plans once per connection: prepared, with their
    parameters bound by the server (Django's own cursor sends each statement with its values
    written in, planned every time: most of the time of these small statements). Django's own
    cursor elsewhere. Queries are logged as Django's are.

    Only for statements whose varying values are all parameters and whose constants (a status
    a partial index is built on) are written in: a plan made for any parameter value could not
    use such an index, and PostgreSQL would go on planning each statement afresh."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        if connection.connection.prepare_threshold is None:
            # Django turns preparing off (for connection poolers, which this deployment has
            # none of); only these cursors ask for it, Django's own never prepare.
            connection.connection.prepare_threshold = _NEVER_BY_COUNT
        raw = _prepared_cursor_class()(connection.connection)
    with connection._prepare_cursor(raw) as cursor:
        yield cursor


_NEVER_BY_COUNT = 2**31  # statements are prepared when asked, not after some executions
_cursor_class: list[type] = []


def _prepared_cursor_class() -> type:
    if not _cursor_class:
        from django.db.backends.postgresql.base import ServerBindingCursor

        class PreparedCursor(ServerBindingCursor):
            def execute(self, query, params=None, *, prepare=None, binary=None):
                return super().execute(query, params, prepare=True, binary=binary)

        _cursor_class.append(PreparedCursor)
    return _cursor_class[0]


def literal(value: str) -> str:
    """A constant of ours (a choice's value) written into a statement."""
    if not re.fullmatch(r"[a-z_]+", value):
        raise ValueError(f"not a plain constant: {value!r}")
    return f"'{value}'"


class Columns:
    """Some columns of ``model`` (in the model's order, its primary key always among them) in a
    ``SELECT``, under a table alias or the table's own name (as the ORM writes it: tools that
    sort statements by their text, ``bench/scale.py``, read them as the ORM's)."""

    def __init__(self, model: type[Model], names: Sequence[str], alias: str = "") -> None:
        wanted = {model._meta.get_field(name).attname for name in names}
        wanted.add(model._meta.pk.attname)
        self.model = model
        self.alias = alias
        self.fields: tuple[Field, ...] = tuple(
            field for field in model._meta.concrete_fields if field.attname in wanted
        )
        self.attnames = frozenset(field.attname for field in self.fields)
        self.width = len(self.fields)
        self.pk_index = self.fields.index(model._meta.pk)
        self._converters: dict[str, list[tuple[int, list[Converter], Any]]] = {}
        self._sql: dict[str, str] = {}

    def index(self, name: str) -> int:
        """Where the column of field ``name`` is among these."""
        return [field.name for field in self.fields].index(name)

    def table(self) -> str:
        """How the columns' table is named in the statement."""
        return self.alias or connection.ops.quote_name(self.model._meta.db_table)

    def sql(self) -> str:
        found = self._sql.get(connection.vendor)
        if found is None:
            quote, table = connection.ops.quote_name, self.table()
            found = ", ".join(f"{table}.{quote(field.column)}" for field in self.fields)
            self._sql[connection.vendor] = found
        return found

    def build(self, row: Sequence[Any], start: int = 0) -> Model | None:
        """The instance in ``row[start:start + width]``; None when its primary key is NULL (the
        missing side of a LEFT JOIN)."""
        values = list(row[start : start + self.width])
        if values[self.pk_index] is None:
            return None
        db = connections[DEFAULT_DB_ALIAS]  # the proxy ``connection`` looks it up every time
        for index, converters, expression in self._converters_of(db):
            for convert in converters:
                values[index] = convert(values[index], expression, db)
        return self.model.from_db(db.alias, self.attnames, values)

    def _converters_of(self, db: Any) -> list[tuple[int, list[Converter], Any]]:
        # What the ORM's compiler applies to each column (``SQLCompiler.get_converters``), found
        # once per database vendor.
        found = self._converters.get(db.vendor)
        if found is None:
            found = []
            for index, field in enumerate(self.fields):
                column = field.get_col(self.alias or self.model._meta.db_table)
                converters = db.ops.get_db_converters(column)
                converters += column.get_db_converters(db)
                if converters:
                    found.append((index, converters, column))
            self._converters[db.vendor] = found
        return found
