"""Routing rules on the Chibi demo: layers, owner/locality order, coordinate systems, edges."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from geo import importing
from geo.areas import areas_frame
from geo.coords import wgs84_to_bd09, wgs84_to_gcj02
from geo.errors import InvalidCoordinates, UnknownCategory, UnknownCoordinateSystem
from geo.routing import Router, RoutingStatus
from tests.conftest import FIXTURES, REPO, fresh_store

CHINA = ZoneInfo("Asia/Shanghai")
GEOD = Geod(ellps="WGS84")
LAYERS = gpd.read_file(REPO / "data" / "chibi" / "layers.geojson")


@pytest.fixture(scope="module")
def router(demo_store):
    return Router(demo_store.sessions)


@pytest.fixture(scope="module")
def grids(demo_store):
    with demo_store.transaction() as session:
        return areas_frame(session, levels=["grid"])


def _canal_point(offset_m: float) -> tuple[float, float]:
    """A point offset_m metres north of the middle of the North Canal (北渠)."""
    canal = LAYERS.loc[LAYERS.name == "北渠", "geometry"].iloc[0]
    mid = canal.interpolate(0.5, normalized=True)
    lon, lat, _ = GEOD.fwd(mid.x, mid.y, 0, offset_m)
    return lon, lat


def _inside_point(grids, code: str) -> tuple[float, float]:
    """A point well inside a grid."""
    point = grids.loc[grids.code == code, "geometry"].iloc[0].representative_point()
    return point.x, point.y


def test_exposed_garbage_by_the_canal_goes_to_the_water_bureau(router):
    lon, lat = _canal_point(10)
    decision = router.route(lon, lat, "E0102")
    assert decision.status == RoutingStatus.routed
    assert decision.primary_unit.code == "WATER"
    assert decision.primary_unit.name == "水利和湖泊局"
    rules = [step.rule for step in decision.rules]
    assert "layer_override" in rules and "layer_instead_of" in rules
    explanation = decision.explain()
    assert "北渠" in explanation and "within 30 m" in explanation and "priority 10" in explanation
    assert decision.grid is not None and decision.community and decision.street
    assert decision.district.code == "421281"


def test_beyond_the_buffer_the_locality_answers(router):
    lon, lat = _canal_point(80)
    decision = router.route(lon, lat, "E0102")
    assert decision.primary_unit.code != "WATER"
    assert decision.rules[-1].rule in ("owner_second", "street_office_cooperating", "event_locality_first")
    assert any(step.rule == "event_locality_first" for step in decision.rules)


def test_a_component_by_the_canal_goes_to_its_owner(router):
    lon, lat = _canal_point(10)
    decision = router.route(lon, lat, "C0110")  # street lamp: not a category the canal layer lists
    assert decision.primary_unit.code == "CGJ"
    rules = [step.rule for step in decision.rules]
    assert "layer_not_applicable" in rules and "component_owner_first" in rules
    assert decision.cooperating_units, "the locality cooperates"


def test_an_event_goes_to_the_grid_locality_with_the_street_office(router, grids, demo_store):
    code = grids.code.iloc[0]
    lon, lat = _inside_point(grids, code)
    decision = router.route(lon, lat, "E0501")
    assert decision.grid.code == code
    snapshot = router.snapshot()
    assert decision.primary_unit.code == snapshot.locality[code][0]
    assert decision.primary_unit.kind != "street_office"
    assert any(u.kind == "street_office" for u in decision.cooperating_units)
    assert decision.community.code == code[:12] and decision.street.code == code[:9]


@pytest.mark.parametrize(("crs", "convert"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_declared_coordinate_systems_route_to_the_right_grid(router, grids, crs, convert):
    code = grids.code.iloc[len(grids) // 2]
    lon, lat = _inside_point(grids, code)
    x, y = convert(lon, lat)
    shift = GEOD.inv(lon, lat, x, y)[2]
    assert shift > 500, f"{crs} offset in Chibi should be hundreds of metres, got {shift:.0f}"
    right = router.route(x, y, "E0102", crs=crs)
    assert right.grid.code == code
    assert abs(right.lon - lon) < 1e-6 and abs(right.lat - lat) < 1e-6
    assert right.rules[0].rule == "crs_normalised"
    wrong = router.route(x, y, "E0102", crs="wgs84")
    assert wrong.grid is None or wrong.grid.code != code


def test_near_the_edge_of_coverage_goes_to_the_nearest_grid(router, grids):
    coverage = shapely.union_all(grids.geometry.to_numpy())
    west = min(shapely.get_coordinates(coverage), key=lambda c: c[0])
    lon, lat, _ = GEOD.fwd(west[0], west[1], 270, 20)
    decision = router.route(lon, lat, "E0102")
    assert decision.status == RoutingStatus.nearest_grid
    assert 10 < decision.distance_to_grid_m <= 20.5
    assert decision.primary_unit is not None
    assert decision.rules[0].rule == "nearest_grid"
    far_lon, far_lat, _ = GEOD.fwd(west[0], west[1], 270, 5000)
    lost = router.route(far_lon, far_lat, "E0102")
    assert lost.status == RoutingStatus.unroutable
    assert lost.primary_unit is None and "not within 50 m" in lost.reason


def test_a_shared_vertex_routes_to_the_smallest_code_every_time(router, grids):
    geoms = grids.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    first = geoms[0]
    for x, y in shapely.get_coordinates(first):
        covering = tree.query(shapely.Point(x, y), predicate="intersects")
        if len(covering) >= 3:
            break
    else:
        pytest.fail("no vertex shared by three grids")
    expected = min(grids.code.iloc[i] for i in covering)
    results = {router.route(float(x), float(y)).grid.code for _ in range(5)}
    assert results == {expected}


@pytest.mark.parametrize(
    ("lon", "lat", "crs", "category", "error", "field", "words"),
    [
        (math.nan, 29.7, "wgs84", None, InvalidCoordinates, "lon", "finite"),
        (113.9, math.inf, "wgs84", None, InvalidCoordinates, "lat", "finite"),
        (29.72, 113.9, "wgs84", None, InvalidCoordinates, "lat", "swapped"),
        (200.0, 29.7, "wgs84", None, InvalidCoordinates, "lon", "out of range"),
        (113.9, 29.7, "mars", None, UnknownCoordinateSystem, "crs", "mars"),
        (113.9, 29.7, "wgs84", "X9999", UnknownCategory, "category", "X9999"),
    ],
)
def test_bad_input_is_refused_with_the_field(router, lon, lat, crs, category, error, field, words):
    with pytest.raises(error) as caught:
        router.route(lon, lat, category, crs)
    assert caught.value.field == field and words in caught.value.message


def test_route_many_equals_route_one_by_one(router, grids):
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = grids.total_bounds
    lon = rng.uniform(minx - 0.01, maxx + 0.01, 300)
    lat = rng.uniform(miny - 0.01, maxy + 0.01, 300)
    cats = [["E0102", "C0110", None][i % 3] for i in range(300)]
    many = router.route_many(lon, lat, cats)
    single = [router.route(float(x), float(y), c) for x, y, c in zip(lon, lat, cats, strict=True)]
    assert [d.model_dump() for d in many] == [d.model_dump() for d in single]


def test_lookups_use_the_generation_valid_at_report_time(settings, tmp_path):
    store = fresh_store(settings, "routing_generations")
    try:
        with store.transaction() as session:
            importing.import_areas(
                session,
                REPO / "data" / "chibi" / "boundary.geojson",
                valid_from=datetime(2026, 1, 1, tzinfo=CHINA),
            )
            importing.import_areas(
                session, FIXTURES / "import" / "valid.geojson", valid_from=datetime(2026, 2, 1, tzinfo=CHINA)
            )
        router = Router(store.sessions, refresh_seconds=0)
        frame = gpd.read_file(FIXTURES / "import" / "valid.geojson")
        inside_002 = frame.loc[frame.code == "421281001001002", "geometry"].iloc[0]
        point = inside_002.representative_point()
        assert router.route(point.x, point.y).grid.code == "421281001001002"
        merged = shapely.union(frame.loc[frame.code == "421281001001001", "geometry"].iloc[0], inside_002)
        frame.loc[frame.code == "421281001001001", "geometry"] = merged
        frame = frame[frame.code != "421281001001002"]
        frame.to_file(tmp_path / "recut.geojson", driver="GeoJSON")
        with store.transaction() as session:
            importing.import_areas(
                session, tmp_path / "recut.geojson", valid_from=datetime(2026, 6, 1, tzinfo=CHINA)
            )
        # No restart: the router sees the new version and rebuilds its index.
        now = router.route(point.x, point.y)
        assert now.grid.code == "421281001001001"
        march = router.route(point.x, point.y, at=datetime(2026, 3, 1, tzinfo=CHINA))
        assert march.grid.code == "421281001001002"
        assert march.grid.generation < now.grid.generation
        assert march.grid.area_id != now.grid.area_id
    finally:
        store.dispose()


def test_a_community_across_district_lines_is_served_by_its_community(settings, tmp_path):
    """插花地: part of community 002 lies beyond its street (and district); routing follows the
    community, and the import notes the crossing without refusing it."""
    frame = gpd.read_file(FIXTURES / "import" / "valid.geojson")
    annex = shapely.box(113.93, 29.71, 113.935, 29.72)  # east of the street's edge
    community = frame.code == "421281001002"
    frame.loc[community, "geometry"] = shapely.union(frame.loc[community, "geometry"].iloc[0], annex)
    extra = frame[frame.code == "421281001002003"].copy()
    extra["code"], extra["name"], extra["geometry"] = "421281001002004", "飞地网格", annex
    frame = gpd.GeoDataFrame(pd.concat([frame, extra], ignore_index=True), crs=frame.crs)
    path = tmp_path / "enclave.geojson"
    frame.to_file(path, driver="GeoJSON")
    store = fresh_store(settings, "enclave")
    try:
        with store.transaction() as session:
            importing.import_areas(session, REPO / "data" / "chibi" / "boundary.geojson")
            result = importing.import_areas(session, path)
        notes = [f for f in result.findings if f.kind == "outside_parent"]
        assert notes and all(not f.is_error for f in notes) and "插花地" in notes[0].message
        decision = Router(store.sessions).route(113.9325, 29.715)
        assert decision.grid.code == "421281001002004"
        assert decision.community.code == "421281001002"
        assert decision.street.code == "421281001" and decision.district.code == "421281"
    finally:
        store.dispose()
