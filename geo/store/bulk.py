"""Many rows in one INSERT whose text does not depend on how many: the rows as one JSON parameter.

`INSERT ... VALUES (...), (...)` with N rows is a new statement for every N, and long: psycopg
parses statements over 4 KB afresh each time (about 14 ms for 16 case rows here) and PostgreSQL
plans each anew. `INSERT ... SELECT ... FROM jsonb_to_recordset(:rows)` is one short statement
for any number of rows: parsed once, prepared by psycopg after a few uses, planned once; and the
rows travel as one JSON text that Python's C encoder writes (arrays of text, one per column, cost
psycopg a regular expression per value to escape).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

__all__ = ["BulkInsert"]


class BulkInsert:
    """`INSERT INTO table (...) SELECT ... FROM jsonb_to_recordset(:rows) AS r(...) RETURNING ...`.

    `inputs` lists "name type" pairs, comma-separated (PostgreSQL types, which the JSON values are
    read as). Each input goes into the column of its name, unless `computed` gives that column an
    SQL expression over `r.<input>` or the input is only `via` (used by a computed column).
    """

    def __init__(
        self,
        table: str,
        inputs: str,
        returning: str,
        computed: Mapping[str, str] | None = None,
        via: Sequence[str] = (),
    ):
        self.table = table
        self.inputs = [tuple(item.split()) for item in inputs.replace("\n", " ").split(",") if item.strip()]
        self.names = [name for name, _ in self.inputs]
        self.returning = returning
        self.computed = dict(computed or {})
        self.via = frozenset(via)

    @cached_property
    def statement(self) -> TextClause:
        record = ", ".join(f"{name} {kind}" for name, kind in self.inputs)
        direct = [n for n in self.names if n not in self.via and n not in self.computed]
        targets = ", ".join([*direct, *self.computed])
        values = ", ".join([*(f"r.{n}" for n in direct), *self.computed.values()])
        return text(
            f"INSERT INTO {self.table} ({targets}) SELECT {values} "
            f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({record}) RETURNING {self.returning}"
        )

    def insert(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Insert the rows (each a mapping of input name to value); the RETURNING rows."""
        if not rows:
            return []
        document = json.dumps([{name: row[name] for name in self.names} for row in rows], default=_json)
        return [tuple(row) for row in session.execute(self.statement, {"rows": document})]


def _json(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # read back as timestamptz (an aware time keeps its offset)
    raise TypeError(f"{type(value).__name__} is not a JSON value")
