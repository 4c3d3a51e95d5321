"""Planning analyses on the Chibi demo (read-only): hotspots, hexagons, repeats, workload, re-cuts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo import planning
from geo.demo import CLOSED, DISPATCHED, REPORTED
from geo.store.models import Case
from geo.validation import FindingKind, check_areas

START, END = date(2026, 7, 1), date(2026, 10, 1)


@pytest.fixture(scope="module")
def demo(demo_store) -> Iterator[Session]:
    """A session on the demo database, rolled back at the end: these tests never write."""
    session = demo_store.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture(scope="module")
def cases(demo) -> gpd.GeoDataFrame:
    return planning.case_points(demo, start=START, end=END)


@pytest.fixture(scope="module")
def workload(demo) -> gpd.GeoDataFrame:
    return planning.flag_grids(planning.grid_workload(demo, START, END))


@pytest.fixture(scope="module")
def proposal(demo, cases, workload) -> planning.RecutProposal:
    return planning.propose_recut(
        planning.grids_frame(demo), workload, cases=cases, communities=planning.communities_frame(demo)
    )


def test_case_points_hold_the_published_quarter(cases):
    assert len(cases) == REPORTED
    assert cases.crs.to_epsg() == 4326
    # As of the end of the quarter a few cases reported late in September are not closed yet.
    assert (cases["state"] == "closed").sum() <= CLOSED
    # Open at the end of the quarter: the dispatched cases not yet closed (some close after 1 Oct
    # local time, so "as of END" finds a few more open than the final states do).
    assert cases["unresolved"].sum() >= DISPATCHED - CLOSED
    assert set(cases["month"]) == {"2026-07", "2026-08", "2026-09"}
    assert cases["week_of_quarter"].between(1, 14).all()
    assert str(cases["reported_at"].dt.tz) == "Asia/Shanghai"


def test_state_is_read_from_the_event_log_as_of_a_moment(demo):
    final = planning.case_points(demo, start=START, end=END, as_of=date(2027, 1, 1))
    assert (final["state"] == "closed").sum() == CLOSED
    early = planning.case_points(demo, start=START, end=date(2026, 7, 8))
    now = planning.case_points(demo, start=START, end=date(2026, 7, 8), as_of=date(2027, 1, 1))
    assert len(early) == len(now) > 0
    # A week's reports are mostly still open at the end of that week, and mostly closed later.
    assert early["unresolved"].sum() > now["unresolved"].sum()
    # Read later than every event, the state is the case's current state.
    current = dict(
        demo.execute(select(Case.id, Case.state).where(Case.id.in_(now["case_id"].tolist()))).all()
    )
    assert now["state"].tolist() == [current[i] for i in now["case_id"]]


def test_unresolved_by_grid_adds_up(demo, cases):
    by_grid = planning.unresolved_by_grid(demo, start=START, end=END)
    assert len(by_grid) == 263
    assert by_grid["cases"].sum() == len(cases)
    assert by_grid["unresolved"].sum() == cases["unresolved"].sum()
    assert by_grid["past_deadline"].sum() == cases["past_deadline"].sum()
    assert by_grid["grid_code"].str.fullmatch(r"\d{15}").all()

    by_month = planning.unresolved_by_grid(demo, start=START, end=END, by="month")
    assert by_month["cases"].sum() == len(cases)
    one = by_month[by_month["month"] == "2026-08"]["cases"].sum()
    assert one == (cases["month"] == "2026-08").sum()


def test_unknown_grouping_is_refused(demo):
    with pytest.raises(ValueError, match="by must be one of"):
        planning.unresolved_by_grid(demo, by="colour")


def test_hexagons_count_every_case_once(demo, cases):
    hexes = planning.hex_bins(demo, 250, start=START, end=END)
    assert hexes.crs.to_epsg() == 4326
    assert hexes["cases"].sum() == len(cases)
    assert hexes["hex_id"].is_unique
    # Equal-area hexagons of edge 250 m: 3√3/2 × 250² ≈ 162,380 m², measured in UTM 49N.
    areas = hexes.to_crs(planning.METRIC_SRID).area
    assert areas.between(162_000, 162_800).all()
    # Each case lies in the hexagon it was counted in.
    joined = gpd.sjoin(cases[["case_id", "geometry"]], hexes[["hex_id", "geometry"]], predicate="within")
    assert joined["case_id"].nunique() == len(cases)

    by_category = planning.hex_bins(demo, 250, start=START, end=END, by="category")
    counts = by_category.groupby("category_code")["cases"].sum()
    assert counts.to_dict() == cases.groupby("category_code").size().to_dict()


def test_hexagon_size_must_be_positive(demo):
    with pytest.raises(ValueError):
        planning.hex_bins(demo, 0)


def test_repeat_hotspots(demo, cases):
    repeats = planning.repeat_hotspots(demo, start=START, end=END, window_days=30, min_repeats=3)
    assert len(repeats) > 0
    assert (repeats["repeats"] >= 3).all()
    assert (repeats["repeats"] < repeats["cases"]).all()  # the first report is never a repeat
    assert repeats["repeats"].is_monotonic_decreasing
    top = repeats.iloc[0]
    same = cases[(cases["grid_code"] == top["place"]) & (cases["category_code"] == top["category_code"])]
    assert len(same) == top["cases"]
    gaps = same.sort_values("reported_at")["reported_at"].diff().dropna()
    assert (gaps <= pd.Timedelta(days=30)).sum() == top["repeats"]

    hexes = planning.repeat_hotspots(demo, start=START, end=END, hex_size_m=250)
    assert len(hexes) > 0 and (hexes["place_kind"] == "hex").all()
    assert hexes.geometry.geom_type.eq("Polygon").all()


def test_seasonality_shares(demo, cases):
    monthly = planning.seasonality(demo, start=START, end=END, period="month", by="category_kind")
    assert monthly["cases"].sum() == len(cases)
    assert monthly.groupby("month")["share"].sum().round(9).eq(1).all()
    weekly = planning.seasonality(demo, start=START, end=END, period="week_of_quarter")
    assert sorted(weekly["week_of_quarter"].unique()) == list(range(1, 15))


def test_grid_workload_against_the_norm(workload, cases):
    assert len(workload) == 263
    assert workload["cases"].sum() == len(cases)
    assert (workload["workers"] >= 1).all()  # one grid worker per grid at least
    months = workload["months"].iloc[0]
    assert months == pytest.approx(92 / (365.25 / 12))
    row = workload.iloc[0]
    expected = row["cases"] / months / row["workers"] / planning.NORM.cases_per_worker_month
    assert row["load_ratio"] == pytest.approx(expected)
    assert (workload["area_km2"] > 0).all()
    assert "assumption" in planning.NORM.source


def test_flag_grids_thresholds(workload):
    assert set(workload["flag"]) == {"too loaded", "normal", "too idle"}
    assert (workload.loc[workload["flag"] == "too loaded", "load_ratio"] > 1.5).all()
    assert (workload.loc[workload["flag"] == "too idle", "load_ratio"] < 0.5).all()
    strict = planning.flag_grids(workload, high=1.1, low=0.9)
    assert (strict["flag"] == "normal").sum() < (workload["flag"] == "normal").sum()
    with pytest.raises(ValueError):
        planning.flag_grids(workload, high=0.5, low=1.0)


def test_recut_keeps_the_tiling_and_the_codes(demo, proposal, workload):
    assert proposal.findings == []
    assert proposal.valid
    assert set(proposal.changes["action"]) == {"split", "merge"}
    codes = proposal.grids["code"]
    assert codes.str.fullmatch(r"\d{15}").all() and codes.is_unique
    assert (codes.str[:12] == proposal.grids["parent_code"]).all()
    # Old codes are retired, never reused for a different polygon.
    before = set(workload["grid_code"])
    retired = {c for olds in proposal.changes["old_codes"] for c in olds}
    new = {c for news in proposal.changes["new_codes"] for c in news}
    assert not (new & before)
    assert set(codes) == (before - retired) | new
    # Every community is still covered exactly by its grids.
    communities = planning.communities_frame(demo).set_index("code")
    metric = proposal.grids.to_crs(planning.METRIC_SRID)
    for community, grids in metric.groupby("parent_code"):
        area = communities.loc[[community]].to_crs(planning.METRIC_SRID).area.iloc[0]
        assert grids.area.sum() == pytest.approx(area, rel=1e-6)


def test_recut_brings_loaded_grids_back(proposal, workload):
    after = proposal.workload
    assert after["cases"].sum() == workload["cases"].sum()
    split = proposal.changes[proposal.changes["action"] == "split"]
    assert len(split) == (workload["flag"] == "too loaded").sum()
    pieces = after[after["code"].isin({c for news in split["new_codes"] for c in news})]
    assert pieces["load_ratio"].max() < workload["load_ratio"].max()
    assert after["load_ratio"].max() <= planning.NORM.high
    merged = proposal.changes[proposal.changes["action"] == "merge"]
    assert (merged["load_ratio_before"] <= 1.0).all()
    assert merged["old_codes"].map(len).eq(2).all()


def test_a_broken_recut_is_caught(demo, proposal):
    """The check is real: drop a grid or stretch one and check_areas reports it."""
    communities = planning.communities_frame(demo)
    layer = proposal.grids
    _, gap = check_areas(layer.iloc[1:], existing=communities.assign(level="community"))
    assert any(f.kind is FindingKind.gap for f in gap)
    stretched = layer.copy()
    # 0.0005° ≈ 50 m: the grid now reaches into its neighbours.
    grown = shapely.get_parts(stretched.geometry.iloc[0].buffer(0.0005, join_style="mitre"))
    stretched.loc[0, "geometry"] = shapely.MultiPolygon(list(grown))
    _, overlap = check_areas(stretched, existing=communities.assign(level="community"))
    assert any(f.kind is FindingKind.overlap for f in overlap)


def test_period_is_required_for_workload(demo):
    with pytest.raises(ValueError):
        planning.grid_workload(demo, END, START)
