"""The in-process AreaIndex answers exactly what PostGIS `ST_Covers ... ORDER BY code LIMIT 1` answers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from geoalchemy2 import Geometry
from pyproj import Geod
from sqlalchemy import Column, Float, MetaData, String, Table, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from geo.areas import areas_frame, current_generation
from geo.routing.index import AreaIndex
from geo.store.models import Area

GEOD = Geod(ellps="WGS84")
LON, LAT = 113.90, 29.72  # central Chibi
D = 0.001  # ~97 m of longitude, ~111 m of latitude here


def square(x: float, y: float, size: float = D) -> shapely.Polygon:
    """An axis-aligned square in degrees with its south-west corner at (x, y)."""
    return shapely.box(x, y, x + size, y + size)


def quad() -> tuple[list[str], list[shapely.Polygon]]:
    """Four squares meeting at (LON + D, LAT + D); codes deliberately not in geometry order."""
    geoms = [square(LON, LAT), square(LON + D, LAT), square(LON, LAT + D), square(LON + D, LAT + D)]
    return ["421281001001004", "421281001001002", "421281001001003", "421281001001001"], geoms


def edge_points(geoms: np.ndarray) -> np.ndarray:
    """Every ring vertex and the midpoint of every ring edge (where shared edges make ties)."""
    rings = shapely.get_rings(shapely.get_parts(geoms))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    return np.unique(np.vstack([xy, (xy[:-1][same] + xy[1:][same]) / 2]), axis=0)


def random_points(geoms: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n uniform points in the polygons' bbox grown by 2% (so some fall outside every polygon)."""
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    gx, gy = 0.02 * (x1 - x0), 0.02 * (y1 - y0)
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(x0 - gx, x1 + gx, n), rng.uniform(y0 - gy, y1 + gy, n)])


def voronoi_grids(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """n Voronoi cells tiling a ~20 km square of Chibi (lon/lat), shuffled 15-digit codes."""
    rng = np.random.default_rng(seed)
    frame = shapely.box(113.80, 29.65, 114.00, 29.83)
    seeds = shapely.multipoints(
        np.column_stack([rng.uniform(113.80, 114.00, n), rng.uniform(29.65, 29.83, n)])
    )
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame)
    codes = [f"421281{k:09d}" for k in rng.permutation(len(cells))]
    return codes, cells


def index_codes(index: AreaIndex, xy: np.ndarray) -> np.ndarray:
    """The code the index gives each point, None for none."""
    codes = np.array([*index.codes, None], dtype=object)
    return codes[index.locate(xy[:, 0], xy[:, 1])]


def postgis_codes(session: Session, table: Table | type[Area], xy: np.ndarray, *where: object) -> np.ndarray:
    """The code PostGIS gives each point: ST_Covers, smallest code, in one set-based query."""
    points = (
        func.unnest(bindparam("xs", type_=ARRAY(Float)), bindparam("ys", type_=ARRAY(Float)))
        .table_valued("x", "y", with_ordinality="i")
        .render_derived(name="p")
    )
    code, geom = (
        table.c.code if isinstance(table, Table) else Area.code,
        table.c.geom if isinstance(table, Table) else Area.geom,
    )
    covering = (
        select(code)
        .where(func.ST_Covers(geom, func.ST_SetSRID(func.ST_MakePoint(points.c.x, points.c.y), 4326)), *where)
        .order_by(code)
        .limit(1)
        .scalar_subquery()
    )
    rows = (
        session.execute(
            select(covering).select_from(points).order_by(points.c.i),
            {"xs": xy[:, 0].tolist(), "ys": xy[:, 1].tolist()},
        )
        .scalars()
        .all()
    )
    return np.array(rows, dtype=object)


# -- unit behaviour -------------------------------------------------------------------------------


def test_shared_edge_goes_to_smallest_code():
    codes, geoms = quad()
    index = AreaIndex(codes, geoms)
    # The edge between squares 0 (…004) and 1 (…002): both cover it, …002 wins.
    assert codes[index.locate_one(LON + D, LAT + D / 2)] == "421281001001002"
    # The edge between squares 0 (…004) and 2 (…003).
    assert codes[index.locate_one(LON + D / 2, LAT + D)] == "421281001001003"
    # Strictly inside stays with its own square.
    assert codes[index.locate_one(LON + D / 2, LAT + D / 2)] == "421281001001004"


def test_shared_vertex_goes_to_smallest_code():
    codes, geoms = quad()
    index = AreaIndex(codes, geoms)
    assert codes[index.locate_one(LON + D, LAT + D)] == "421281001001001"
    assert codes[int(index.locate(LON + D, LAT + D))] == "421281001001001"


def test_outer_boundary_counts_as_covered():
    codes, geoms = quad()
    index = AreaIndex(codes, geoms)
    assert codes[index.locate_one(LON, LAT)] == "421281001001004"  # corner of one square only
    assert codes[index.locate_one(LON + 2 * D, LAT + 1.5 * D)] == "421281001001001"


def test_hole():
    ring = shapely.Polygon(
        square(LON, LAT, 3 * D).exterior.coords, [square(LON + D, LAT + D).exterior.coords]
    )
    island = square(LON + D, LAT + D)
    index = AreaIndex(["421281001001009", "421281001001005"], [ring, island])
    assert index.locate_one(LON + 1.5 * D, LAT + 1.5 * D) == 1  # in the hole: the island
    assert index.locate_one(LON + 0.5 * D, LAT + 0.5 * D) == 0
    assert index.locate_one(LON + D, LAT + 1.5 * D) == 1  # hole edge: both cover, …005 smaller
    alone = AreaIndex(["421281001001009"], [ring])
    assert alone.locate_one(LON + 1.5 * D, LAT + 1.5 * D) == -1  # hole without island: nobody
    assert alone.locate_one(LON + D, LAT + 1.5 * D) == 0  # the hole's edge is the polygon's boundary


def test_outside_and_invalid_numbers():
    codes, geoms = quad()
    index = AreaIndex(codes, geoms)
    assert index.locate_one(LON - D, LAT) == -1
    assert index.locate_one(LON + D, LAT + 3 * D) == -1
    assert index.locate_one(float("nan"), LAT) == -1
    assert index.locate([LON - D, np.nan, LON + D / 2], [LAT, LAT, np.inf]).tolist() == [-1, -1, -1]


def test_multipolygon_and_empty_geometry():
    parts = shapely.MultiPolygon([square(LON, LAT), square(LON + 5 * D, LAT)])
    index = AreaIndex(["b", "a"], [parts, shapely.Polygon()])
    assert index.locate_one(LON + 5.5 * D, LAT + D / 2) == 0
    assert index.locate_one(LON + 3 * D, LAT + D / 2) == -1


def test_scalar_equals_vectorised():
    codes, geoms = voronoi_grids(400, seed=7)
    index = AreaIndex(codes, geoms)
    xy = np.vstack([random_points(geoms, 3000, seed=8), edge_points(geoms)[::3]])
    bulk = index.locate(xy[:, 0], xy[:, 1])
    assert [index.locate_one(x, y) for x, y in xy.tolist()] == bulk.tolist()
    # Above the threading threshold the answer is the same, in the same order.
    many = np.tile(xy, (8, 1))
    assert np.array_equal(index.locate(many[:, 0], many[:, 1]), np.tile(bulk, 8))
    assert index.locate(xy[:10, 0].reshape(2, 5), xy[:10, 1].reshape(2, 5)).shape == (2, 5)


def test_empty_inputs_and_empty_index():
    codes, geoms = quad()
    index = AreaIndex(codes, geoms)
    got = index.locate(np.array([]), np.array([]))
    assert got.shape == (0,) and got.dtype == np.int64
    idx, dist = index.nearest([], [], 50)
    assert idx.shape == (0,) and dist.shape == (0,)
    nothing = AreaIndex([], [])
    assert len(nothing) == 0
    assert nothing.locate_one(LON, LAT) == -1
    assert nothing.locate([LON], [LAT]).tolist() == [-1]
    idx, dist = nothing.nearest([LON], [LAT], 50)
    assert idx.tolist() == [-1] and np.isnan(dist).all()


def test_nearest_within_and_beyond_tolerance():
    codes, geoms = quad()
    index = AreaIndex(codes, geoms)
    east = LON + 2 * D
    # 30 m due east of the east edge, and 80 m due south of the south-west corner.
    lon_e, lat_e, _ = GEOD.fwd(east, LAT + D, 90, 30)
    lon_s, lat_s, _ = GEOD.fwd(LON, LAT, 180, 80)
    idx, dist = index.nearest([lon_e, lon_s, LON + D / 2], [lat_e, lat_s, LAT + D / 2], 50)
    # The nearest boundary point of the first is on the shared vertex of …002 and …001 at
    # (east, LAT + D): equidistant, so the smallest code; of the third, its own square at 0 m.
    assert [codes[i] if i >= 0 else None for i in idx] == ["421281001001001", None, "421281001001004"]
    expected = GEOD.inv(lon_e, lat_e, east, LAT + D)[2]
    assert dist[0] == pytest.approx(expected, abs=0.005)
    assert dist[0] == pytest.approx(30, abs=0.01)
    assert np.isnan(dist[1]) and dist[2] == 0.0
    idx, dist = index.nearest([lon_s], [lat_s], 100)
    assert codes[idx[0]] == "421281001001004"
    assert dist[0] == pytest.approx(GEOD.inv(lon_s, lat_s, LON, LAT)[2], abs=0.005)
    assert dist[0] == pytest.approx(80, abs=0.01)
    idx, dist = index.nearest(lon_e, lat_e, 29.9)  # just beyond the tolerance; scalars in, 0-d out
    assert idx.shape == () and int(idx) == -1 and np.isnan(dist)


def test_nearest_off_an_edge_is_geodesic_metres():
    codes, geoms = quad()
    index = AreaIndex(codes, geoms)
    # 40 m west of the middle of the west edge: the nearest point is on that edge.
    lon_w, lat_w, _ = GEOD.fwd(LON, LAT + D / 2, 270, 40)
    idx, dist = index.nearest(lon_w, lat_w, 50)
    assert codes[int(idx)] == "421281001001004"
    assert float(dist) == pytest.approx(GEOD.inv(lon_w, lat_w, LON, LAT + D / 2)[2], abs=0.005)


# -- equality with PostGIS ------------------------------------------------------------------------


def test_equals_postgis_on_demo_grids(demo_store):
    """≥100,000 points (random, grid vertices, edge midpoints) get the same grid from both."""
    with demo_store.transaction() as session:
        generation = current_generation(session)
        grids = areas_frame(session, generation, levels=["grid"])
        assert len(grids) == 263
        geoms = grids.geometry.to_numpy()
        index = AreaIndex(grids.code.tolist(), geoms)
        edges = edge_points(geoms)
        xy = np.vstack([random_points(geoms, 100_000, seed=1), edges])
        got = postgis_codes(
            session,
            Area,
            xy,
            Area.level == "grid",
            Area.generation_low <= generation,
            Area.generation_high >= generation,
        )
    mine = index_codes(index, xy)
    assert len(edges) > 1000
    assert (mine != None).sum() > 50_000  # noqa: E711 - most points land in a grid
    differ = np.flatnonzero(mine != got)
    assert differ.size == 0, [(xy[k].tolist(), got[k], mine[k]) for k in differ[:5]]


def test_equals_postgis_on_10000_synthetic_grids(session):
    """A 10,000-cell tessellation in a scratch table (rolled back): ≥100,000 points agree."""
    codes, geoms = voronoi_grids(10_000, seed=3)
    assert shapely.coverage_is_valid(geoms)  # they tile: shared edges are real shared edges
    scratch = Table(
        "scratch_routing_grid",
        MetaData(),
        Column("code", String(32), nullable=False),
        Column("geom", Geometry("MULTIPOLYGON", srid=4326), nullable=False),
    )
    scratch.create(session.connection())  # DDL is transactional: rolled back with the test
    multi = [shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in geoms]
    wkt = shapely.to_wkt(multi, rounding_precision=-1)  # full precision
    session.execute(
        insert(scratch), [{"code": c, "geom": f"SRID=4326;{w}"} for c, w in zip(codes, wkt, strict=True)]
    )
    # WKT round trip must not move a vertex: compare against what PostGIS now holds.
    stored = session.execute(select(scratch.c.code, func.ST_AsBinary(scratch.c.geom))).all()
    codes = [c for c, _ in stored]
    geoms = shapely.from_wkb([bytes(w) for _, w in stored])
    index = AreaIndex(codes, geoms)
    edges = edge_points(geoms)
    xy = np.vstack([random_points(geoms, 100_000, seed=4), edges])
    got = postgis_codes(session, scratch, xy)
    mine = index_codes(index, xy)
    assert len(edges) > 50_000
    differ = np.flatnonzero(mine != got)
    assert differ.size == 0, [(xy[k].tolist(), got[k], mine[k]) for k in differ[:5]]
