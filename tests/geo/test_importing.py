"""Imports into a real PostGIS: validated in full, one transaction, boundary generations."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import func, select

from geo import importing
from geo.areas import areas_frame, count_by_level, current_generation, generation_at
from geo.errors import InvalidImport
from geo.store.models import Area, BoundaryGeneration, Category, GridResponsibility, Unit
from geo.validation import FindingKind
from tests.conftest import FIXTURES, REPO

IMPORT = FIXTURES / "import"
BOUNDARY = REPO / "data" / "chibi" / "boundary.geojson"
CHINA = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def district(session):
    """The real Chibi boundary as the parent of the fixture street."""
    importing.import_areas(session, BOUNDARY, valid_from=datetime(2026, 1, 1, tzinfo=CHINA))
    return session


def _state(session) -> tuple[int, int]:
    areas = session.scalar(select(func.count()).select_from(Area))
    generations = session.scalar(select(func.count()).select_from(BoundaryGeneration))
    return areas, generations


def test_valid_file_loads_every_level(district):
    result = importing.import_areas(district, IMPORT / "valid.geojson")
    assert result.inserted == 10 and result.generation is not None
    counts = count_by_level(district)
    assert counts == {"district": 1, "street": 1, "community": 2, "grid": 6, "compound": 1}


@pytest.mark.parametrize("name", ["valid.gpkg", "valid.shp"])
def test_other_formats_load_the_same(district, name):
    result = importing.import_areas(district, IMPORT / name)
    assert result.inserted == 10
    assert count_by_level(district)["grid"] == 6


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("self_intersection.geojson", FindingKind.invalid_geometry),
        ("gap.geojson", FindingKind.gap),
        ("overlap.geojson", FindingKind.overlap),
        ("outside.geojson", FindingKind.outside_parent),
        ("duplicate.geojson", FindingKind.duplicate_code),
        ("unknown_parent.geojson", FindingKind.unknown_parent),
        ("bad_code.geojson", FindingKind.bad_code),
        ("web_mercator.geojson", FindingKind.unsupported_crs),
    ],
)
def test_each_error_is_reported_with_location_and_nothing_is_written(district, name, kind):
    before = _state(district)
    with pytest.raises(InvalidImport) as caught:
        importing.import_areas(district, IMPORT / name)
    findings = [f for f in caught.value.findings if f.kind == kind]
    assert findings, caught.value.message
    if kind not in (FindingKind.unsupported_crs,):
        located = [f for f in findings if f.lon is not None and f.lat is not None]
        assert located, f"{kind} finding without a location"
        assert all(113.0 < f.lon < 115.0 and 29.0 < f.lat < 30.5 for f in located)
    assert "nothing was written" in caught.value.message
    assert _state(district) == before


def test_repair_is_applied_only_when_asked_and_shown(district):
    result = importing.import_areas(
        district, IMPORT / "self_intersection.geojson", repair=True, tolerance_m2=1e9
    )
    repaired = [f for f in result.findings if f.repair]
    assert repaired and "make_valid" in repaired[0].repair
    valid = district.scalar(select(func.bool_and(func.ST_IsValid(Area.geom))))
    assert valid is True


def test_foreign_crs_loads_when_declared(district):
    source = gpd.read_file(IMPORT / "web_mercator.geojson")
    declared = str(source.crs) if source.crs else "EPSG:3857"
    result = importing.import_areas(district, IMPORT / "web_mercator.geojson", source_crs=declared)
    assert result.inserted > 0
    grids = areas_frame(district, levels=["grid"])
    assert grids.total_bounds[0] > 113 and grids.total_bounds[3] < 31  # lon/lat now


def test_reimporting_an_unchanged_file_changes_nothing(district):
    importing.import_areas(district, IMPORT / "valid.geojson")
    before = _state(district)
    again = importing.import_areas(district, IMPORT / "valid.geojson")
    assert again.generation is None and again.inserted == 0 and again.unchanged == 10
    assert _state(district) == before


def test_recut_makes_a_generation_and_history_keeps_the_old_polygon(district, tmp_path):
    first = importing.import_areas(
        district, IMPORT / "valid.geojson", valid_from=datetime(2026, 2, 1, tzinfo=CHINA)
    )
    old_002 = district.scalar(select(Area).where(Area.code == "421281001001002"))
    # Re-cut community 001: grids 001 and 002 merge into 001; 002 is retired.
    frame = gpd.read_file(IMPORT / "valid.geojson")
    merged = shapely.union(
        frame.loc[frame.code == "421281001001001", "geometry"].iloc[0],
        frame.loc[frame.code == "421281001001002", "geometry"].iloc[0],
    )
    frame.loc[frame.code == "421281001001001", "geometry"] = merged
    frame = frame[frame.code != "421281001001002"]
    recut = tmp_path / "recut.geojson"
    frame.to_file(recut, driver="GeoJSON")

    second = importing.import_areas(district, recut, valid_from=datetime(2026, 6, 1, tzinfo=CHINA))
    assert second.generation == first.generation + 1
    assert second.retired == 1 and second.inserted == 1 and second.unchanged == 8
    assert current_generation(district) == second.generation
    now_grids = set(areas_frame(district, levels=["grid"])["code"])
    assert "421281001001002" not in now_grids and len(now_grids) == 5
    # A case reported in March still finds the polygon valid then.
    march = generation_at(district, datetime(2026, 3, 1, tzinfo=CHINA))
    assert march == first.generation
    then = set(areas_frame(district, march, levels=["grid"])["code"])
    assert "421281001001002" in then and len(then) == 6
    kept = district.get(Area, old_002.id)
    assert kept.generation_high == first.generation
    # The untouched community and the district were carried into the new generation.
    assert count_by_level(district)["district"] == 1
    assert count_by_level(district)["community"] == 2


def test_backdating_before_the_current_generation_is_refused(district):
    with pytest.raises(InvalidImport, match="before the current generation"):
        importing.import_areas(
            district, IMPORT / "valid.geojson", valid_from=datetime(2025, 1, 1, tzinfo=CHINA)
        )


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_units_categories_and_layers(district, tmp_path):
    importing.import_areas(district, IMPORT / "valid.geojson")
    units = _write(
        tmp_path / "units.csv",
        "code,name,name_en,kind,grids\n"
        "WATER,水利和湖泊局,Water Bureau,bureau,\n"
        "PC001,示范物业,Demo Property,property_company,"
        "421281001001001;421281001001002\n",
    )
    result = importing.import_units(district, units)
    assert result.rows == 2
    assert district.scalar(select(func.count()).select_from(GridResponsibility)) == 2
    categories = _write(
        tmp_path / "categories.csv",
        "code,kind,class_code,subclass_code,name,name_en,department,time_limit,"
        "time_limit_unit,duplicate_radius_m,duplicate_window_h\n"
        "E0102,event,01,02,暴露垃圾,Exposed garbage,WATER,4,working_hours,,\n"
        "C0101,component,01,01,上水井盖,Water manhole cover,,2,urgent_hours,30,12\n",
    )
    importing.import_categories(district, categories)
    cover = district.get(Category, "C0101")
    assert cover.duplicate_radius_m == 30 and cover.time_limit_unit == "urgent_hours"
    layer = gpd.GeoDataFrame(
        {
            "code": ["BEIQU"],
            "name": ["北渠"],
            "kind": ["river_lake"],
            "unit_code": ["WATER"],
            "priority": [10],
            "buffer_m": [30.0],
            "categories": ["E0102"],
        },
        geometry=[shapely.LineString([(113.89, 29.72), (113.91, 29.72)])],
        crs=4326,
    )
    layer.to_file(tmp_path / "layers.geojson", driver="GeoJSON")
    importing.import_layers(district, tmp_path / "layers.geojson")
    # The zone is 30 true metres either side of the line: about 60 m wide.
    width = district.scalar(
        select(
            func.ST_Area(func.geography(importing.ResponsibilityLayer.zone))
            / func.ST_Length(func.geography(importing.ResponsibilityLayer.geom))
        )
    )
    assert 58 < width < 62
    # Re-importing units replaces the 包保 list of the units in the file.
    importing.import_units(
        district,
        _write(
            tmp_path / "units2.csv", "code,name,kind,grids\nPC001,示范物业,property_company,421281001002001\n"
        ),
    )
    assert district.scalars(
        select(GridResponsibility.grid_code).where(GridResponsibility.unit_code == "PC001")
    ).all() == ["421281001002001"]
    assert district.get(Unit, "WATER") is not None


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("units", "code,name,kind,grids\nX,甲,bureau,421281999999999\n", "not a current grid"),
        ("units", "code,name,kind,grids\nX,甲,ministry,\n", "kind 'ministry'"),
        ("units", "code,name,kind\nX,甲,bureau\nX,乙,bureau\n", "appears more than once"),
        ("units", "code,name\nX,甲\n", "column 'kind' is missing"),
        (
            "categories",
            "code,kind,class_code,subclass_code,name,time_limit,time_limit_unit,department\n"
            "E0102,event,01,02,暴露垃圾,4,fortnights,\n",
            "time_limit_unit 'fortnights'",
        ),
        (
            "categories",
            "code,kind,class_code,subclass_code,name,time_limit,time_limit_unit,department\n"
            "E0102,event,01,02,暴露垃圾,-1,working_hours,\n",
            "positive number",
        ),
        (
            "categories",
            "code,kind,class_code,subclass_code,name,time_limit,time_limit_unit,department\n"
            "E0102,event,01,02,暴露垃圾,4,working_hours,NOBODY\n",
            "not a known unit",
        ),
        (
            "categories",
            "code,kind,class_code,subclass_code,name,time_limit,time_limit_unit,department\n"
            "E0103,event,01,02,暴露垃圾,4,working_hours,\n",
            "must be E + 2-digit class",
        ),
    ],
)
def test_table_errors_name_row_and_reason(district, tmp_path, kind, text, message):
    path = _write(tmp_path / f"{kind}.csv", text)
    before = (
        district.scalar(select(func.count()).select_from(Unit)),
        district.scalar(select(func.count()).select_from(Category)),
    )
    with pytest.raises(InvalidImport, match=re.escape(message)) as caught:
        importing.IMPORTERS[kind](district, path)
    assert any(f.row == 2 for f in caught.value.findings) or "missing" in message
    after = (
        district.scalar(select(func.count()).select_from(Unit)),
        district.scalar(select(func.count()).select_from(Category)),
    )
    assert after == before
