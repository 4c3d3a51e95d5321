"""Cases as monthly GeoParquet: what is written, how it is read, streamed in chunks (server-side cursor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import geopandas as gpd
import pyarrow.parquet as pq
import pytest
from pyproj import CRS
from sqlalchemy import event, text

from geo import hotspots
from geo.errors import InvalidInput
from geo.export import SCHEMA, export_cases
from tests.conftest import REPO


@pytest.fixture(scope="module")
def exported(demo_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "cases"
    cursors: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        cursors.append(type(cursor).__name__)

    event.listen(demo_store.engine, "before_cursor_execute", seen)
    try:
        report = export_cases(demo_store.engine, out, chunk_rows=1000)
    finally:
        event.remove(demo_store.engine, "before_cursor_execute", seen)
    return out, report, cursors


def test_every_case_is_written_once_in_its_china_month(demo_store, exported):
    out, report, _ = exported
    with demo_store.engine.connect() as connection:
        by_month = dict(
            connection.execute(
                text(
                    "SELECT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), count(*) "
                    "FROM cases GROUP BY 1"
                )
            ).all()
        )
    assert report.rows == sum(by_month.values()) >= 7_534
    assert sorted(report.files) == sorted(by_month)
    assert {"2026-07", "2026-08", "2026-09"} <= set(by_month)
    for month, count in by_month.items():
        path = out / f"month={month}" / "part-0.parquet"
        assert report.files[month] == path and pq.ParquetFile(path).metadata.num_rows == count


def test_streamed_in_chunks_through_a_server_side_cursor(exported):
    out, report, cursors = exported
    assert "ServerCursor" in cursors  # psycopg's named cursor: rows arrive chunk by chunk
    july = pq.ParquetFile(report.files["2026-07"])
    # Each chunk of 1,000 rows became a row group: the writer never held a month whole.
    assert july.metadata.num_row_groups >= july.metadata.num_rows // 1000
    assert max(july.metadata.row_group(i).num_rows for i in range(july.metadata.num_row_groups)) <= 1000


def test_geoparquet_metadata_wkb_points_in_wgs84(demo_store, exported):
    out, report, _ = exported
    path = report.files["2026-08"]
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["geometry_types"] == ["Point"]
    frame = gpd.read_parquet(path)
    assert CRS(frame.crs) == CRS("OGC:CRS84")  # the specification's default: lon, lat on WGS-84
    sample = frame.iloc[0]
    with demo_store.engine.connect() as connection:
        lon, lat = connection.execute(
            text("SELECT ST_X(location), ST_Y(location) FROM cases WHERE id = :id"),
            {"id": int(sample.case_id)},
        ).one()
    assert (sample.geometry.x, sample.geometry.y) == pytest.approx((lon, lat), abs=1e-12)


def test_no_personal_fields_leave_the_database(exported):
    out, report, _ = exported
    names = pq.read_schema(report.files["2026-07"]).names
    assert names == SCHEMA.names
    for private in ("tracking_code", "reporter_contact", "description", "reported_by"):
        assert private not in names


def test_read_lazily_month_by_month_and_counted(demo_store, exported):
    out, report, _ = exported
    cases = hotspots.read_cases(out)
    assert cases.npartitions == len(report.files)
    cells, grids = hotspots.hotspot_counts(cases)
    everything = gpd.read_parquet(out)  # the demo fits in memory: the same counts eagerly
    eager_cells, eager_grids = hotspots.hotspot_counts(everything)
    assert (
        cells.sort_values(["ix", "iy"])
        .reset_index(drop=True)
        .equals(eager_cells.sort_values(["ix", "iy"]).reset_index(drop=True))
    )
    assert int(cells["cases"].sum()) == int(everything.geometry.notna().sum())
    with demo_store.engine.connect() as connection:
        sql = "SELECT grid_code, count(*) FROM cases WHERE grid_code IS NOT NULL GROUP BY 1"
        per_grid = {code: count for code, count in connection.execute(text(sql))}
    assert dict(zip(grids["grid_code"], grids["cases"], strict=True)) == per_grid
    assert grids.equals(eager_grids)
    top = hotspots.top_cells(cells, n=5)
    assert list(top["rank"]) == [1, 2, 3, 4, 5] and top.crs == "EPSG:4326"
    assert list(top["unresolved"]) == sorted(top["unresolved"], reverse=True)


def test_an_earlier_export_is_kept_unless_replaced(demo_store, exported, tmp_path):
    out, report, _ = exported
    with pytest.raises(InvalidInput) as refused:
        export_cases(demo_store.engine, out)
    assert refused.value.field == "out" and "--replace" in refused.value.message
    again = export_cases(demo_store.engine, tmp_path / "again")
    replaced = export_cases(demo_store.engine, tmp_path / "again", start=date(2026, 9, 1), replace=True)
    assert sorted(again.files) == sorted(report.files) and again.rows == report.rows
    # Replacing removes the earlier months: only September on are left.
    assert sorted(p.name for p in (tmp_path / "again").glob("month=*")) == [
        f"month={m}" for m in sorted(replaced.files)
    ]
    assert min(replaced.files) == "2026-09"
    september = pq.ParquetFile(replaced.files["2026-09"]).metadata.num_rows
    assert september == pq.ParquetFile(report.files["2026-09"]).metadata.num_rows


def test_the_export_command(demo_store, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": demo_store.url,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    argv = ["gridcase", "export", "cases", "--format", "parquet", "--out", str(tmp_path / "q3")]
    window = ["--from", "2026-07-01", "--to", "2026-10-01"]
    run = subprocess.run(argv + window, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    with demo_store.engine.connect() as connection:
        quarter = connection.execute(
            text(
                "SELECT count(*) FROM cases WHERE reported_at >= '2026-07-01 00:00+08' "
                "AND reported_at < '2026-10-01 00:00+08'"
            )
        ).scalar_one()
    assert f"{quarter:,} cases in 3 monthly files from 2026-07 to 2026-09" in run.stdout
    again = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "out: " in again.stderr and "--replace" in again.stderr
    bad = subprocess.run(argv + ["--from", "July"], env=env, cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "--from must be YYYY-MM-DD" in bad.stderr
