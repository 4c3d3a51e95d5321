"""Cases as GeoParquet for planners: one folder per month (`month=YYYY-MM`, hive style), streamed.

`export_cases` reads the cases from PostgreSQL through a server-side cursor, `chunk_rows` at a
time, and appends each chunk to its month's file as a row group: memory holds one chunk, never
all cases. The location is WKB (PostGIS's `ST_AsBinary`, no shapely objects made), described by
the GeoParquet 1.1 `geo` metadata, CRS OGC:CRS84 (WGS-84 longitude, latitude: the axis order the
WKB has; the specification's default, see `geo_metadata`). A month is China time (Asia/Shanghai),
as the reports count months.

Exported: what a planner needs to place and count cases (category, channel, state, the grid,
community, street, district and unit codes, the times). Not exported: contacts, descriptions,
tracking codes, reporters: a file leaves the access policy behind.

`MonthlyGeoParquet` is the writer, shared with bench/hotspots.py (synthetic cases, same layout).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import text
from sqlalchemy.engine import Engine

from geo.errors import InvalidInput

TIME = pa.timestamp("us", tz="UTC")
#: The columns of an exported case, in order (`month` is the folder, not a column of the files).
SCHEMA = pa.schema(
    [
        ("case_id", pa.int64()),
        ("category_code", pa.string()),
        ("channel", pa.string()),
        ("state", pa.string()),
        ("reported_at", TIME),
        ("dispatched_at", TIME),
        ("deadline_at", TIME),
        ("closed_at", TIME),
        ("grid_code", pa.string()),
        ("community_code", pa.string()),
        ("street_code", pa.string()),
        ("district_code", pa.string()),
        ("unit_code", pa.string()),
        ("geometry", pa.binary()),
    ]
)

_SELECT = """
SELECT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month,
       id AS case_id, category_code, channel, state, reported_at, dispatched_at, deadline_at,
       closed_at, grid_code, community_code, street_code, district_code, unit_code,
       ST_AsBinary(location) AS geometry
FROM cases
-- A day's midnight in China time: the date as a local timestamp, then placed in Asia/Shanghai (a
-- bare date AT TIME ZONE would first become a timestamptz at the session's zone).
WHERE (CAST(:start AS date) IS NULL
       OR reported_at >= CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE 'Asia/Shanghai')
  AND (CAST(:end AS date) IS NULL
       OR reported_at < CAST(CAST(:end AS date) AS timestamp) AT TIME ZONE 'Asia/Shanghai')
ORDER BY reported_at, id
"""


def geo_metadata() -> bytes:
    """GeoParquet 1.1 file metadata: one WKB point column, CRS OGC:CRS84 (lon, lat on WGS-84).

    The CRS is left to the specification's default, which is OGC:CRS84, rather than written out as
    PROJJSON: readers (geopandas) strip the ids of WGS-84's datum ensemble from a PROJJSON and then
    spend 60 ms resolving it by name per file read, which made reading 120 small months 8 s slower.
    """
    column = {"encoding": "WKB", "geometry_types": ["Point"]}
    return json.dumps(
        {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    ).encode()


@dataclass
class ExportReport:
    """What an export wrote: cases, and the files per month."""

    rows: int = 0
    files: dict[str, Path] = field(default_factory=dict)  # month -> file

    def summary(self) -> str:
        months = sorted(self.files)
        span = f" from {months[0]} to {months[-1]}" if months else ""
        return f"{self.rows:,} cases in {len(months)} monthly files{span}"


class MonthlyGeoParquet:
    """Appends tables of cases (SCHEMA plus a `month` column) to `<out>/month=YYYY-MM/part-0.parquet`.

    Rows of one month may come in several tables (each becomes a row group of that month's file);
    a month's writer stays open until `close`, so rows need not arrive sorted.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.schema = SCHEMA.with_metadata({b"geo": geo_metadata()})
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.report = ExportReport()

    def write(self, table: pa.Table) -> None:
        """Append `table`'s rows, each to its month's file."""
        months = table.column("month")
        for month in pc.unique(months).to_pylist():
            part = table.filter(pc.equal(months, month)).drop_columns(["month"])
            self._writer(month).write_table(part.cast(self.schema))
            self.report.rows += part.num_rows

    def _writer(self, month: str) -> pq.ParquetWriter:
        if month not in self._writers:
            folder = self.out / f"month={month}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "part-0.parquet"
            self._writers[month] = pq.ParquetWriter(path, self.schema, compression="zstd")
            self.report.files[month] = path
        return self._writers[month]

    def close(self) -> ExportReport:
        """Finish every file (their footers carry the geo metadata) and say what was written."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        return self.report


def prepare_folder(out: Path, *, replace: bool) -> None:
    """Make `out` ready for an export: refuse one that holds months unless `replace` (then they go)."""
    months = sorted(out.glob("month=*")) if out.is_dir() else []
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out} is a file, not a folder", field="out")
    if months and not replace:
        raise InvalidInput(
            f"{out} already holds {len(months)} months of an export; pass --replace to write it again",
            field="out",
        )
    for folder in months:
        shutil.rmtree(folder)
    out.mkdir(parents=True, exist_ok=True)


def _rows_to_table(rows: Sequence[Any]) -> pa.Table:
    names = ["month", *SCHEMA.names]
    columns: list[Sequence[Any]] = [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * len(names)
    types = [pa.string(), *SCHEMA.types]
    arrays = [pa.array(list(c), type=t) for c, t in zip(columns, types, strict=True)]
    return pa.Table.from_arrays(arrays, names=names)


def export_cases(
    engine: Engine,
    out: Path,
    *,
    start: date | None = None,
    end: date | None = None,
    chunk_rows: int = 50_000,
    replace: bool = False,
) -> ExportReport:
    """Write the cases reported in [start, end) (China time; None: no bound) as monthly GeoParquet
    under `out`, `chunk_rows` at a time from a server-side cursor (one transaction, one snapshot)."""
    prepare_folder(out, replace=replace)
    writer = MonthlyGeoParquet(out)
    try:
        with engine.connect() as connection:
            # stream_results: psycopg's named (server-side) cursor, so rows arrive chunk by chunk.
            result = connection.execution_options(stream_results=True, max_row_buffer=chunk_rows).execute(
                text(_SELECT), {"start": start, "end": end}
            )
            for rows in result.partitions(chunk_rows):
                writer.write(_rows_to_table(rows))
    finally:
        report = writer.close()
    return report
