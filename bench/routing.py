"""Routing speed: gridcase's AreaIndex vs PostGIS ST_Covers per point, and vs geopandas.sjoin in bulk.

Run: `.venv/bin/python bench/routing.py [--sizes 263,10000,100000] [--points N] [--singles N]`

For each size, a synthetic tessellation of the real Chibi county boundary (Voronoi cells of seeded
random points, in lon/lat, clipped to the boundary; checked to tile it) is loaded into a plain table
`bench_grid_<size>` (code, MULTIPOLYGON 4326, GiST index) in the database `gridcase_bench` of the
managed cluster; loading is timed separately and not counted. Then, in the same run:
- single lookup: AreaIndex.locate_one vs one prepared `ST_Covers ... ORDER BY code LIMIT 1` per point
  over a warm psycopg connection (no ORM in the loop), median and p99 in µs;
- bulk: AreaIndex.locate vs geopandas.sjoin(points, grids, predicate="within") (building the points
  frame included) and, for information, one set-based PostGIS query over unnest()ed arrays;
- equality: the index and PostGIS agree on every sampled point, plus every grid vertex and the midpoint
  of every grid edge (where shared edges and vertices make the smallest-code rule matter).
Sampled points are uniform in the boundary's bounding box, thinned outside the boundary so that about
90% fall inside it (outside points are the cheap case).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from geo.routing.index import AreaIndex, bulk_pool  # noqa: E402
from geo.settings import Settings  # noqa: E402
from geo.store import Store  # noqa: E402
from geo.store.db import resolve_database_url  # noqa: E402

BOUNDARY = REPO / "data" / "chibi" / "boundary.geojson"
SEED = 421281
INSIDE_SHARE = 0.9

SINGLE_SQL = (
    "SELECT code FROM {table} WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) "
    "ORDER BY code LIMIT 1"
)
# One query for many points; WITH ORDINALITY keeps the answer aligned with the input arrays.
SET_SQL = (
    "SELECT (SELECT g.code FROM {table} g "
    "WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)) ORDER BY g.code LIMIT 1) "
    "FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p(x, y, i) ORDER BY p.i"
)


def boundary() -> shapely.Geometry:
    """The real Chibi county boundary (EPSG:4326)."""
    return gpd.read_file(BOUNDARY).to_crs(4326).geometry.union_all()


def tessellate(area: shapely.Geometry, n: int, seed: int = SEED) -> tuple[list[str], np.ndarray]:
    """n Voronoi cells of seeded random points inside `area`, clipped to it, with shuffled codes.

    Built in lon/lat: cells are a little taller than wide in metres (cos 29.7° ≈ 0.87), which does not
    matter for a benchmark. Neighbouring cells share bit-identical vertices (one Voronoi diagram).
    """
    rng = np.random.default_rng(seed + n)
    x0, y0, x1, y1 = area.bounds
    shapely.prepare(area)
    seeds = np.empty((0, 2))
    while len(seeds) < n:
        xy = np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])
        seeds = np.vstack([seeds, xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]])
    frame = shapely.box(x0 - 1, y0 - 1, x1 + 1, y1 + 1)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds[:n]), extend_to=frame))
    # Clip only the cells that cross the boundary; the rest are kept as computed.
    cross = ~shapely.contains_properly(area, cells)
    cells[cross] = shapely.intersection(cells[cross], area)
    cells = cells[~shapely.is_empty(cells)]
    # Codes 421281 + 9 digits, shuffled so code order is not geometry order (ties must use the code).
    codes = [f"421281{k:09d}" for k in rng.permutation(len(cells)) + 1]
    return codes, cells


def sample_points(area: shapely.Geometry, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform in area's bbox, thinned outside `area` so ~90% are inside."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = area.bounds
    xs, ys, have = [], [], 0
    while have < n:
        x, y = rng.uniform(x0, x1, 2 * n), rng.uniform(y0, y1, 2 * n)
        inside = shapely.contains_xy(area, x, y)
        p_keep_out = (1 - INSIDE_SHARE) / INSIDE_SHARE * inside.mean() / max(1 - inside.mean(), 1e-9)
        keep = inside | (rng.random(len(x)) < p_keep_out)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def edge_points(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ring vertex and the midpoint of every ring edge of the polygons."""
    rings = shapely.get_rings(shapely.get_parts(geoms))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    mid = (xy[:-1][same] + xy[1:][same]) / 2
    pts = np.unique(np.vstack([xy, mid]), axis=0)
    return pts[:, 0], pts[:, 1]


def load(store: Store, table: str, codes: list[str], geoms: np.ndarray) -> float:
    """(Re)create the bench table with a GiST index, COPY the grids in; seconds taken."""
    start = time.perf_counter()
    multi = np.array([shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in geoms])
    wkb = shapely.to_wkb(shapely.set_srid(multi, 4326), hex=True, include_srid=True)
    with store.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        # No btree on code on purpose: the planner must use the GiST index, PostGIS's best plan.
        conn.execute(
            text(f"CREATE TABLE {table} (code text NOT NULL, geom geometry(MultiPolygon, 4326) NOT NULL)")
        )
        raw = conn.connection.driver_connection
        with raw.cursor().copy(f"COPY {table} (code, geom) FROM STDIN") as copy:
            for code, g in zip(codes, wkb, strict=True):
                copy.write_row((code, g))
        conn.execute(text(f"CREATE INDEX ON {table} USING gist (geom)"))
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {table}"))
    return time.perf_counter() - start


def percentiles(ns: np.ndarray) -> tuple[float, float]:
    """Median and p99 in µs of timings in ns."""
    return float(np.median(ns)) / 1e3, float(np.percentile(ns, 99)) / 1e3


@dataclass
class Row:
    """One size's figures."""

    grids: int
    tiles: bool
    load_s: float
    build_s: float
    idx_med: float
    idx_p99: float
    pg_med: float
    pg_p99: float
    idx_bulk: float
    sjoin_bulk: float
    pg_bulk: float
    checked: int
    mismatches: int


def run_size(store: Store, area: shapely.Geometry, n: int, points: int, singles: int) -> Row:
    """Benchmark one tessellation size."""
    table = f"bench_grid_{n}"
    codes, geoms = tessellate(area, n)
    tiles = bool(shapely.coverage_is_valid(geoms)) and abs(shapely.area(geoms).sum() - area.area) < 1e-9
    load_s = load(store, table, codes, geoms)
    t = time.perf_counter()
    index = AreaIndex(codes, geoms)
    build_s = time.perf_counter() - t
    code_arr = np.array(codes + [""], dtype=object)  # -1 -> ""

    x, y = sample_points(area, points, SEED + 1)
    sx, sy = sample_points(area, singles, SEED + 2)

    # Single lookups. Both sides timed the same way, one call at a time, after a warm-up.
    for i in range(min(200, singles)):
        index.locate_one(sx[i], sy[i])
    ns = np.empty(singles, dtype=np.int64)
    mine = np.empty(singles, dtype=np.int64)
    for i in range(singles):
        a, b = float(sx[i]), float(sy[i])
        t0 = time.perf_counter_ns()
        mine[i] = index.locate_one(a, b)
        ns[i] = time.perf_counter_ns() - t0
    idx_med, idx_p99 = percentiles(ns)

    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection  # psycopg 3: no ORM between the clock and the server
        sql = SINGLE_SQL.format(table=table)
        for i in range(min(200, singles)):  # warm: plan cached, pages in shared buffers
            raw.execute(sql, (float(sx[i]), float(sy[i])), prepare=True).fetchone()
        pg_single = np.empty(singles, dtype=object)
        for i in range(singles):
            a, b = float(sx[i]), float(sy[i])
            t0 = time.perf_counter_ns()
            got = raw.execute(sql, (a, b), prepare=True).fetchone()
            ns[i] = time.perf_counter_ns() - t0
            pg_single[i] = got[0] if got else ""
        pg_med, pg_p99 = percentiles(ns)

        # Bulk, index: best of 3, on a pool the caller owns as the Router does (the first run also
        # pays the threads' start).
        runs = []
        with bulk_pool() as pool:
            for _ in range(3):
                t0 = time.perf_counter()
                bulk = index.locate(x, y, pool)
                runs.append(time.perf_counter() - t0)
        idx_bulk = points / min(runs)

        # Bulk, geopandas: building the points frame is part of the price.
        grids = gpd.GeoDataFrame({"code": codes}, geometry=geoms, crs=4326)
        _ = grids.sindex  # built once, outside the clock, as the index's own build is
        t0 = time.perf_counter()
        pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4326)
        gpd.sjoin(pts, grids, predicate="within", how="inner")
        sjoin_bulk = points / (time.perf_counter() - t0)

        # Bulk, PostGIS set-based (information), and equality on all sampled points + edges.
        ex, ey = edge_points(geoms)
        allx = np.concatenate([x, ex])
        ally = np.concatenate([y, ey])
        t0 = time.perf_counter()
        rows = raw.execute(SET_SQL.format(table=table), (allx.tolist(), ally.tolist())).fetchall()
        pg_bulk = len(allx) / (time.perf_counter() - t0)
    pg_all = np.array([r[0] or "" for r in rows], dtype=object)
    idx_all = code_arr[np.concatenate([bulk, index.locate(ex, ey)])]
    mismatches = int((pg_all != idx_all).sum()) + int((pg_single != code_arr[mine]).sum())
    for k in np.flatnonzero(pg_all != idx_all)[:5]:
        print(f"  MISMATCH at ({allx[k]!r}, {ally[k]!r}): PostGIS {pg_all[k]!r}, index {idx_all[k]!r}")
    return Row(
        len(codes),
        tiles,
        load_s,
        build_s,
        idx_med,
        idx_p99,
        pg_med,
        pg_p99,
        idx_bulk,
        sjoin_bulk,
        pg_bulk,
        len(allx) + singles,
        mismatches,
    )


def table(rows: list[Row]) -> str:
    """The results as a markdown table."""
    head = (
        "| grids | single: index µs (median / p99) | single: PostGIS µs (median / p99) | ratio "
        "(median / p99) | bulk: index pts/s | bulk: sjoin pts/s | ratio | bulk: PostGIS set pts/s "
        "| ratio | points checked | mismatches |"
    )
    lines = [head, "|" + " --- |" * 11]
    for r in rows:
        lines.append(
            f"| {r.grids:,} | {r.idx_med:.1f} / {r.idx_p99:.1f} | {r.pg_med:.0f} / {r.pg_p99:.0f} "
            f"| {r.pg_med / r.idx_med:.0f}× / {r.pg_p99 / r.idx_p99:.0f}× | {r.idx_bulk:,.0f} "
            f"| {r.sjoin_bulk:,.0f} | {r.idx_bulk / r.sjoin_bulk:.1f}× | {r.pg_bulk:,.0f} "
            f"| {r.idx_bulk / r.pg_bulk:.0f}× | {r.checked:,} | {r.mismatches} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark; exit 1 if a goal is missed or the index disagrees with PostGIS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="263,10000,100000")
    parser.add_argument("--points", type=int, default=500_000, help="bulk points per size")
    parser.add_argument("--singles", type=int, default=5_000, help="single lookups per size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    settings = Settings()
    store = Store(settings, url=resolve_database_url(settings, database="gridcase_bench"))
    store.migrate()
    with store.engine.connect() as conn:
        versions = conn.execute(text("SELECT version(), postgis_full_version()")).one()
    print(f"PostgreSQL: {versions[0].split(',')[0]}; {versions[1].split(' PGSQL')[0]}")
    print(
        f"shapely {shapely.__version__} / GEOS {shapely.geos_version_string}; "
        f"{args.points:,} bulk points and {args.singles:,} single lookups per size"
    )

    area = boundary()
    rows = []
    for n in sizes:
        t = time.perf_counter()
        row = run_size(store, area, n, args.points, args.singles)
        rows.append(row)
        print(
            f"{row.grids:>7,} grids (tile the boundary: {'yes' if row.tiles else 'NO'}; load "
            f"{row.load_s:.1f} s, index build {row.build_s:.2f} s) | single µs index "
            f"{row.idx_med:.1f}/{row.idx_p99:.1f} PostGIS {row.pg_med:.0f}/{row.pg_p99:.0f} "
            f"→ {row.pg_med / row.idx_med:.0f}×/{row.pg_p99 / row.idx_p99:.0f}× | bulk pts/s index "
            f"{row.idx_bulk:,.0f} sjoin {row.sjoin_bulk:,.0f} PostGIS {row.pg_bulk:,.0f} | "
            f"mismatches {row.mismatches} of {row.checked:,} | {time.perf_counter() - t:.0f} s",
            flush=True,
        )
    store.dispose()

    single_ok = all(r.pg_med / r.idx_med >= 10 and r.pg_p99 / r.idx_p99 >= 10 for r in rows)
    big = [r for r in rows if r.grids >= 100_000]
    bulk_ok = bool(big) and all(r.idx_bulk >= 500_000 for r in big)
    equal_ok = all(r.mismatches == 0 and r.tiles for r in rows)
    print()
    print(
        f"goal single lookup ≥10× PostGIS per point (median and p99), every size: "
        f"{'PASS' if single_ok else 'FAIL'}"
    )
    print(
        f"goal bulk ≥500,000 points/s at 100,000 grids: "
        f"{'PASS' if bulk_ok else 'FAIL' if big else 'not measured (no 100,000 size)'}"
    )
    print(f"index == PostGIS on every checked point: {'PASS' if equal_ok else 'FAIL'}")
    print()
    print(table(rows))
    return 0 if single_ok and (bulk_ok or not big) and equal_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
