"""Boundary files are checked before import: every kind of mistake is found, placed and counted."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from geo.errors import InvalidImport
from geo.validation import (
    Finding,
    FindingKind,
    check_areas,
    format_report,
    has_errors,
    read_areas,
    validate_file,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "import"
SOUTH, NORTH = 29.710, 29.730  # every fixture grid spans these latitudes


def findings_of(name: str, **options: object) -> list[Finding]:
    """All findings for a fixture file."""
    return validate_file(FIXTURES / name, **options)[1]  # type: ignore[arg-type]


def only(findings: list[Finding], kind: FindingKind) -> list[Finding]:
    """The findings of one kind."""
    return [f for f in findings if f.kind is kind]


def assert_inside(finding: Finding, west: float, south: float, east: float, north: float) -> None:
    """The finding is placed strictly inside the given lon/lat box."""
    assert finding.lon is not None and finding.lat is not None, finding
    assert west < finding.lon < east and south < finding.lat < north, finding


@pytest.mark.parametrize("name", ["valid.geojson", "valid.gpkg", "valid.shp"])
def test_valid_file_has_no_findings_in_every_format(name: str) -> None:
    areas, findings = validate_file(FIXTURES / name)
    assert findings == []
    assert not has_errors(findings)
    assert len(areas) == 10
    assert areas.crs.to_epsg() == 4326
    assert {"level", "code", "name", "parent_code", "row"} <= set(areas.columns)
    assert "parent_cod" not in areas.columns  # the shapefile's cut field name is mapped back
    assert set(areas.geom_type) == {"MultiPolygon"}
    assert list(areas["row"]) == list(range(1, 11))
    by_code = areas.set_index("code")
    # blank and missing parent codes are inferred from the codes
    assert by_code.loc["421281001002", "parent_code"] == "421281001"
    assert by_code.loc["421281001002003", "parent_code"] == "421281001002"
    assert by_code.loc["421281001001C001", "parent_code"] == "421281001001"
    assert by_code.loc["421281001001", "name"] == "北渠社区"


def test_bow_tie_is_reported_at_its_crossing_and_fixable() -> None:
    findings = findings_of("self_intersection.geojson")
    [bow_tie] = only(findings, FindingKind.invalid_geometry)
    assert (bow_tie.row, bow_tie.code) == (5, "421281001001002")
    assert bow_tie.lon == pytest.approx(113.9075, abs=1e-9)
    assert bow_tie.lat == pytest.approx(29.72, abs=1e-9)
    assert bow_tie.fixable and bow_tie.repair is None and bow_tie.is_error
    assert "Self-intersection" in bow_tie.message
    assert has_errors(findings)


def test_repair_splits_the_bow_tie_and_says_so() -> None:
    areas, findings = validate_file(FIXTURES / "self_intersection.geojson", repair=True)
    [bow_tie] = only(findings, FindingKind.invalid_geometry)
    assert bow_tie.repair is not None and not bow_tie.is_error
    assert bow_tie.repair.startswith("make_valid: self-intersection resolved into 2 part(s), area")
    repaired = areas.set_index("code").geometry["421281001001002"]
    assert isinstance(repaired, MultiPolygon) and repaired.is_valid and len(repaired.geoms) == 2
    # the repaired grid is two triangles: the two other triangles of its cell are now gaps
    gaps = only(findings, FindingKind.gap)
    assert len(gaps) == 2 and {g.code for g in gaps} == {"421281001001"}
    assert sorted(g.lat > 29.72 for g in gaps if g.lat is not None) == [False, True]


def test_gap_is_reported_once_with_its_place_and_area() -> None:
    findings = findings_of("gap.geojson")
    assert {f.kind for f in findings} == {FindingKind.gap}
    [gap] = findings
    assert (gap.row, gap.code) == (3, "421281001002")
    assert_inside(gap, 113.928, SOUTH, 113.930, NORTH)
    assert gap.area_m2 == pytest.approx(193.4 * 2220.9, rel=0.01)  # 0.002° × 0.02° at 29.7° N


def test_overlap_between_sibling_grids() -> None:
    findings = findings_of("overlap.geojson")
    assert {f.kind for f in findings} == {FindingKind.overlap}
    [overlap] = findings
    assert (overlap.row, overlap.code) == (4, "421281001001001")
    assert "421281001001002" in overlap.message
    assert_inside(overlap, 113.905, SOUTH, 113.906, NORTH)
    assert overlap.area_m2 == pytest.approx(96.7 * 2220.9, rel=0.01)


def test_grid_outside_its_community() -> None:
    findings = findings_of("outside.geojson")
    assert {f.kind for f in findings} == {FindingKind.outside_parent}
    [outside] = findings
    assert (outside.row, outside.code) == (9, "421281001002003")
    assert_inside(outside, 113.930, SOUTH, 113.932, NORTH)
    assert outside.area_m2 == pytest.approx(193.4 * 2220.9, rel=0.01)


def test_duplicate_code_reports_both_rows() -> None:
    findings = findings_of("duplicate.geojson")
    assert {f.kind for f in findings} == {FindingKind.duplicate_code}
    assert sorted((f.row, f.code) for f in findings) == [
        (7, "421281001002002"),
        (8, "421281001002002"),
    ]
    first, second = sorted(findings, key=lambda f: f.row or 0)
    assert_inside(first, 113.915, SOUTH, 113.920, NORTH)
    assert_inside(second, 113.920, SOUTH, 113.925, NORTH)


def test_unknown_parent() -> None:
    findings = findings_of("unknown_parent.geojson")
    assert {f.kind for f in findings} == {FindingKind.unknown_parent}
    [orphan] = findings
    assert (orphan.row, orphan.code) == (11, "421281001003001")
    assert "421281001003" in orphan.message
    assert_inside(orphan, 113.930, SOUTH, 113.935, NORTH)


def test_bad_codes() -> None:
    findings = findings_of("bad_code.geojson")
    assert {f.kind for f in findings} == {FindingKind.bad_code}
    short, stray = sorted(findings, key=lambda f: f.row or 0)
    assert (short.row, short.code) == (5, "42128100100102")
    assert "15 digits" in short.message
    assert_inside(short, 113.905, SOUTH, 113.910, NORTH)
    assert (stray.row, stray.code) == (6, "421281001002009")
    assert "does not start with" in stray.message and "421281001001" in stray.message
    assert_inside(stray, 113.910, SOUTH, 113.915, NORTH)


@pytest.mark.parametrize(
    ("name", "crs"), [("web_mercator.geojson", "EPSG:3857"), ("gauss_kruger.gpkg", "EPSG:4547")]
)
def test_foreign_crs_is_refused_without_source_crs(name: str, crs: str) -> None:
    _, findings = read_areas(FIXTURES / name)
    [refusal] = findings
    assert refusal.kind is FindingKind.unsupported_crs
    assert refusal.message == f"declared {crs}; pass --source-crs {crs} to transform"
    assert has_errors(findings)


def test_web_mercator_is_transformed_with_source_crs() -> None:
    areas, findings = validate_file(FIXTURES / "web_mercator.geojson", source_crs="EPSG:3857")
    assert findings == []
    assert areas.crs.to_epsg() == 4326
    expected = read_areas(FIXTURES / "valid.geojson")[0]
    assert list(areas["code"]) == list(expected["code"])
    for got, want in zip(areas.geometry, expected.geometry, strict=True):
        assert shapely.equals_exact(got, want, tolerance=1e-9)


def test_gauss_kruger_is_transformed_with_source_crs() -> None:
    # Drawn in CGCS2000 3-degree Gauss-Kruger metres: its straight edges tile exactly there, and the
    # checks must not invent slivers by judging them in lon/lat.
    areas, findings = validate_file(FIXTURES / "gauss_kruger.gpkg", source_crs="EPSG:4547")
    assert findings == []
    assert areas.crs.to_epsg() == 4326
    street = areas.set_index("code").geometry["421281001"]
    assert street.bounds == pytest.approx((113.900, 29.710, 113.930, 29.730), abs=1e-4)


def test_source_crs_must_agree_with_the_declared_one() -> None:
    _, findings = read_areas(FIXTURES / "web_mercator.geojson", source_crs="EPSG:4547")
    [refusal] = findings
    assert refusal.kind is FindingKind.unsupported_crs and "must agree" in refusal.message
    _, findings = read_areas(FIXTURES / "valid.geojson", source_crs="not a crs")
    assert [f.kind for f in findings] == [FindingKind.unsupported_crs]


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_file_without_crs(tmp_path: Path) -> None:
    for suffix in (".shp", ".shx", ".dbf", ".cpg"):  # no .prj: no CRS declared
        shutil.copy(FIXTURES / f"valid{suffix}", tmp_path / f"valid{suffix}")
    areas, findings = validate_file(tmp_path / "valid.shp")
    assert findings == [] and areas.crs.to_epsg() == 4326  # coordinates look like lon/lat

    # Gauss-Kruger metres with the CRS stripped: refused until the user names the CRS.
    drawn = gpd.read_file(FIXTURES / "gauss_kruger.gpkg").set_crs(None, allow_override=True)
    drawn.to_file(tmp_path / "gk.gpkg")
    _, findings = read_areas(tmp_path / "gk.gpkg")
    assert [f.kind for f in findings] == [FindingKind.unsupported_crs]
    assert "no CRS declared" in findings[0].message
    areas, findings = validate_file(tmp_path / "gk.gpkg", source_crs="EPSG:4547")
    assert findings == [] and areas.crs.to_epsg() == 4326


def sliver_frame(area_m2: float) -> gpd.GeoDataFrame:
    """The valid areas with grid 001 reaching `area_m2` into grid 002 along their shared edge."""
    areas = read_areas(FIXTURES / "valid.geojson")[0]
    probe = gpd.GeoSeries([box(113.905, SOUTH, 113.906, NORTH)], crs=4326).to_crs(32649)
    metres_per_degree_strip = probe.area.iloc[0] / 0.001  # m² per degree of longitude width
    east = 113.905 + area_m2 / metres_per_degree_strip
    at = areas.index[areas["code"] == "421281001001001"][0]
    areas.loc[at, "geometry"] = MultiPolygon([box(113.900, SOUTH, east, NORTH)])
    return areas


def test_tolerance_is_respected() -> None:
    areas = sliver_frame(0.5)
    assert check_areas(areas, tolerance_m2=1.0)[1] == []
    [sliver] = check_areas(areas, tolerance_m2=0.1)[1]
    assert sliver.kind is FindingKind.overlap and sliver.code == "421281001001001"
    assert sliver.area_m2 == pytest.approx(0.5, rel=0.02)
    assert_inside(sliver, 113.9049, SOUTH, 113.9051, NORTH)


def test_existing_areas_serve_as_parents_and_siblings() -> None:
    valid = read_areas(FIXTURES / "valid.geojson")[0]
    east_grids = valid["parent_code"] == "421281001002"
    in_database, in_file = valid[~east_grids].drop(columns="row"), valid[east_grids]
    assert check_areas(in_file, existing=in_database)[1] == []

    # without the community, its grids have no parent
    no_community = in_database[in_database["code"] != "421281001002"]
    kinds = {f.kind for f in check_areas(in_file, existing=no_community)[1]}
    assert kinds == {FindingKind.unknown_parent}

    # a file grid overlapping a database grid of the neighbouring community is caught
    poking = in_file.copy()
    at = poking.index[poking["code"] == "421281001002001"][0]
    poking.loc[at, "geometry"] = MultiPolygon([box(113.914, SOUTH, 113.920, NORTH)])
    findings = check_areas(poking, existing=in_database)[1]
    overlaps = only(findings, FindingKind.overlap)
    assert [f.code for f in overlaps] == ["421281001002001"]
    assert "existing grid 421281001001003" in overlaps[0].message
    assert_inside(overlaps[0], 113.914, SOUTH, 113.915, NORTH)
    assert only(findings, FindingKind.outside_parent)


def test_missing_column_and_empty_geometry(tmp_path: Path) -> None:
    areas = read_areas(FIXTURES / "valid.geojson")[0].drop(columns=["row"])
    areas.loc[areas.index[3], "geometry"] = None
    areas.to_file(tmp_path / "empty.geojson")
    findings = findings_of_path(tmp_path / "empty.geojson")
    [empty] = only(findings, FindingKind.empty_geometry)
    assert (empty.row, empty.code) == (4, "421281001001001")
    # the grid's cell is then a gap in its community, and nothing else is wrong
    [gap] = only(findings, FindingKind.gap)
    assert gap.code == "421281001001"
    assert_inside(gap, 113.900, SOUTH, 113.905, NORTH)
    assert len(findings) == 2

    valid = read_areas(FIXTURES / "valid.geojson")[0].drop(columns=["row"])
    valid.drop(columns=["code"]).to_file(tmp_path / "nocode.geojson")
    findings = findings_of_path(tmp_path / "nocode.geojson")
    assert [f.kind for f in findings] == [FindingKind.missing_field]  # once, not per step
    assert "`code`" in findings[0].message


def findings_of_path(path: Path) -> list[Finding]:
    """All findings for a file outside the fixtures."""
    return validate_file(path)[1]


def test_unreadable_file_is_an_invalid_import(tmp_path: Path) -> None:
    with pytest.raises(InvalidImport):
        read_areas(tmp_path / "nothing.geojson")


def test_report_groups_and_counts() -> None:
    findings = findings_of("bad_code.geojson") + findings_of("duplicate.geojson")
    report = format_report(findings)
    assert report.splitlines()[0] == "4 finding(s), 4 blocking the import"
    assert "bad_code (2)" in report and "duplicate_code (2)" in report
    assert report.index("duplicate_code (2)") < report.index("bad_code (2)")
    assert "42128100100102" in report and "113.9075" in report
    assert format_report([]).startswith("No findings")
