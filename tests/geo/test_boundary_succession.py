"""Boundary changes orphan nothing: a retired grid's 包保 units and inspectors go to its successors,
and a generation that would leave a grid without a unit is refused unless allowed."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import box
from sqlalchemy import select

from geo import importing
from geo.accounts import add_account
from geo.areas import areas_frame, current_generation
from geo.demo import DEMO_PASSWORD
from geo.errors import InvalidImport
from geo.store.models import Account, GridResponsibility
from tests.conftest import rolled_back

COMMUNITY = "421281001007"  # eight grids, 001–008, in the Chibi demo
G = {n: f"{COMMUNITY}{n:03d}" for n in range(1, 11)}


@pytest.fixture
def tx(cases_store):
    with rolled_back(cases_store) as session:
        yield session


def _units(session, grid: str) -> set[str]:
    return set(
        session.scalars(select(GridResponsibility.unit_code).where(GridResponsibility.grid_code == grid))
    )


def _community_file(session, tmp_path, change) -> str:
    """The community's current grids, changed by `change(frame)`, written as a GeoJSON file."""
    grids = areas_frame(session, levels=["grid"])
    grids = grids[grids["parent_code"] == COMMUNITY][["level", "code", "name", "parent_code", "geometry"]]
    frame = change(grids.copy())
    path = tmp_path / "recut.geojson"
    gpd.GeoDataFrame(frame, geometry="geometry", crs=4326).to_file(path, driver="GeoJSON")
    return path


def _merge_005_006_into_009(frame):
    merged = shapely.union(
        frame.loc[frame.code == G[5], "geometry"].iloc[0], frame.loc[frame.code == G[6], "geometry"].iloc[0]
    )
    frame = frame[~frame.code.isin([G[5], G[6]])]
    row = {"level": "grid", "code": G[9], "name": "第9网格", "parent_code": COMMUNITY, "geometry": merged}
    return gpd.GeoDataFrame([*frame.to_dict("records"), row], geometry="geometry", crs=4326)


def test_merging_two_grids_carries_their_units_and_inspectors(tx, tmp_path):
    before_5, before_6 = _units(tx, G[5]), _units(tx, G[6])
    assert before_5 and before_6, "the demo gives both grids a unit"
    add_account(tx, "inspector_005", DEMO_PASSWORD, "inspector", grid_codes=[G[5], G[1]])
    add_account(tx, "inspector_006", DEMO_PASSWORD, "inspector", grid_codes=[G[6]])
    generation = current_generation(tx)

    result = importing.import_areas(tx, _community_file(tx, tmp_path, _merge_005_006_into_009))

    assert result.generation == current_generation(tx) > generation and result.retired == 2
    carried = {(c.retired, c.successor): c for c in result.carried}
    assert set(carried) == {(G[5], G[9]), (G[6], G[9])}
    assert set(carried[(G[5], G[9])].units) == before_5 and carried[(G[5], G[9])].share == pytest.approx(1)
    # The demo inspector walks the North Canal, which crosses grid 006.
    assert carried[(G[6], G[9])].inspectors == ["inspector", "inspector_006"]
    assert _units(tx, G[9]) == before_5 | before_6
    grids = dict(tx.execute(select(Account.username, Account.grid_codes)).all())
    assert grids["inspector_005"] == [G[9], G[1]] and grids["inspector_006"] == [G[9]]
    assert G[9] in grids["inspector"] and G[6] not in grids["inspector"]
    assert result.unassigned == []
    lines = result.succession_lines()
    assert any(line.startswith(f"carried {G[5]} → {G[9]}") and "inspector_005" in line for line in lines)
    # The new grid is current, the retired ones are not.
    now = set(areas_frame(tx, levels=["grid"])["code"])
    assert G[9] in now and not {G[5], G[6]} & now


def _split_008_adding_010(frame):
    whole = frame.loc[frame.code == G[8], "geometry"].iloc[0]
    minx, miny, maxx, maxy = whole.bounds
    west = shapely.intersection(whole, box(minx - 1, miny - 1, whole.centroid.x, maxy + 1))
    east = shapely.difference(whole, west)
    frame.loc[frame.code == G[8], "geometry"] = gpd.GeoSeries([west], index=frame.index[frame.code == G[8]])
    row = {"level": "grid", "code": G[10], "name": "第10网格", "parent_code": COMMUNITY, "geometry": east}
    return gpd.GeoDataFrame([*frame.to_dict("records"), row], geometry="geometry", crs=4326)


def test_a_generation_leaving_a_grid_without_a_unit_is_refused_unless_allowed(tx, tmp_path):
    path = _community_file(tx, tmp_path, _split_008_adding_010)
    generation = current_generation(tx)
    with pytest.raises(InvalidImport) as refused:
        importing.import_areas(tx, path)
    assert G[10] in refused.value.message and "--allow-unassigned" in refused.value.message
    assert refused.value.field == "grids"
    assert current_generation(tx) == generation  # nothing was written

    result = importing.import_areas(tx, path, allow_unassigned=True)
    assert result.generation == current_generation(tx) and result.generation > generation
    assert result.unassigned == [G[10]]  # listed in the report
    assert any(G[10] in line and "without a unit" in line for line in result.succession_lines())
    assert _units(tx, G[10]) == set()
