"""Indicators: each definition on a hand-made history with exact values, the published Chibi
figure, the rollup against the raw event log, and the demo quarter."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import insert, text

from geo import dashboard, stats
from geo.cases.intake import Channel
from geo.demo import DEMO_RATED_PERCENT, DEMO_VERDICT_PERCENT
from geo.errors import InvalidInput
from geo.store.models import Case, CaseEvent, Unit
from tests.conftest import REPO, add_exposed_garbage, rolled_back

CN = stats.CHINA
WEEK = (date(2026, 3, 2), date(2026, 3, 8))  # Monday to Sunday
COUNTS = [c for c in stats.COLUMNS if stats.BY_NAME[c].kind == "count"] + list(stats.AUXILIARY)


def at(day: int, hour: int, month: int = 3) -> datetime:
    """A China-time instant in 2026."""
    return datetime(2026, month, day, hour, tzinfo=CN)


def add_case(
    session,
    code: str,
    *,
    unit: str | None,
    grid: str | None,
    inspector: str | None,
    state: str,
    deadline: datetime | None = None,
    closed: datetime | None = None,
    reported: datetime,
) -> int:
    return session.execute(
        insert(Case)
        .values(
            tracking_code=code,
            category_code="E0102",
            channel="inspector",
            description="",
            reported_by=inspector,
            reported_at=reported,
            reported_crs="wgs84",
            location="SRID=4326;POINT(113.9 29.72)",
            state=state,
            unit_code=unit,
            grid_code=grid,
            community_code=grid[:12] if grid else None,
            street_code=grid[:9] if grid else None,
            deadline_at=deadline,
            closed_at=closed,
            cooperating_unit_codes=[],
            version=1,
        )
        .returning(Case.id)
    ).scalar_one()


def add_events(session, case_id: int, *events: tuple[datetime, str, str | None]) -> None:
    session.execute(
        insert(CaseEvent),
        [
            {"case_id": case_id, "at": when, "action": action, "to_state": action, "unit_code": unit}
            for when, action, unit in events
        ],
    )


@pytest.fixture
def week(session):
    """Six cases around the week of 2 March 2026 (see each comment for what it exercises)."""
    session.execute(
        insert(Unit),
        [
            {"code": "U1", "name": "一号单位", "kind": "bureau"},
            {"code": "U2", "name": "二号单位", "kind": "bureau"},
        ],
    )
    add_exposed_garbage(session)
    g1, g2 = "421281001001001", "421281002001001"
    # A: handled in 6 h, closed on time.
    a = add_case(
        session,
        "A",
        unit="U1",
        grid=g1,
        inspector="i1",
        state="closed",
        deadline=at(3, 10),
        closed=at(2, 18),
        reported=at(2, 9),
    )
    add_events(
        session,
        a,
        (at(2, 9), "report", None),
        (at(2, 9) + timedelta(minutes=30), "verify", "U1"),
        (at(2, 9) + timedelta(minutes=40), "file", "U1"),
        (at(2, 10), "dispatch", "U1"),
        (at(2, 16), "handle", "U1"),
        (at(2, 17), "check_pass", "U1"),
        (at(2, 18), "close", "U1"),
    )
    # B: handled on time (24 h), fails the check, handled again late (72 h), closed late.
    b = add_case(
        session,
        "B",
        unit="U1",
        grid=g1,
        inspector="i1",
        state="closed",
        deadline=at(4, 11),
        closed=at(5, 13),
        reported=at(2, 10),
    )
    add_events(
        session,
        b,
        (at(2, 10), "report", None),
        (at(2, 10) + timedelta(minutes=10), "verify", "U1"),
        (at(2, 10) + timedelta(minutes=20), "file", "U1"),
        (at(2, 11), "dispatch", "U1"),
        (at(3, 11), "handle", "U1"),
        (at(3, 12), "check_fail", "U1"),
        (at(5, 11), "handle", "U1"),
        (at(5, 12), "check_pass", "U1"),
        (at(5, 13), "close", "U1"),
    )
    # C: dispatched to U2, returned, re-dispatched to U1, extended; due Saturday, still open.
    c = add_case(
        session,
        "C",
        unit="U1",
        grid=g2,
        inspector=None,
        state="signed",
        deadline=at(7, 11),
        reported=at(3, 8),
    )
    add_events(
        session,
        c,
        (at(3, 8), "report", None),
        (at(3, 8) + timedelta(minutes=5), "verify", None),
        (at(3, 8) + timedelta(minutes=10), "file", None),
        (at(3, 9), "dispatch", "U2"),
        (at(3, 10), "return", "U2"),
        (at(3, 11), "redispatch", "U1"),
        (at(3, 12), "sign", "U1"),
        (at(4, 9), "approve_extension", "U1"),
    )
    # D: verified, then rejected: never routed to a unit.
    d = add_case(
        session,
        "D",
        unit=None,
        grid=None,
        inspector=None,
        state="rejected",
        closed=at(4, 9),
        reported=at(4, 8),
    )
    add_events(
        session,
        d,
        (at(4, 8), "report", None),
        (at(4, 8) + timedelta(minutes=20), "verify", None),
        (at(4, 9), "reject", None),
    )
    # E: reported and dispatched the week before, due this week but parked: not due, not counted.
    e = add_case(
        session,
        "E",
        unit="U2",
        grid=g2,
        inspector="i2",
        state="parked",
        deadline=at(3, 12),
        reported=at(25, 9, month=2),
    )
    add_events(
        session,
        e,
        (at(25, 9, month=2), "report", None),
        (at(25, 10, month=2), "dispatch", "U2"),
        (at(26, 10, month=2), "park", "U2"),
    )
    # F: dispatched on Friday, due next week.
    f = add_case(
        session,
        "F",
        unit="U2",
        grid=g2,
        inspector="i2",
        state="dispatched",
        deadline=at(10, 10),
        reported=at(6, 8),
    )
    add_events(
        session,
        f,
        (at(6, 8), "report", None),
        (at(6, 8) + timedelta(minutes=30), "verify", "U2"),
        (at(6, 8) + timedelta(minutes=40), "file", "U2"),
        (at(6, 10), "dispatch", "U2"),
    )
    return session


# C was dispatched to U2, returned and re-dispatched to U1: one dispatched case (for U1), two
# dispatch events received (one by each unit).
EXPECTED = {
    "reported": 5,
    "verified": 5,
    "filed": 4,
    "dispatched": 4,
    "received": 5,
    "handled": 3,
    "closed": 2,
    "returned": 1,
    "reworked": 1,
    "extended": 1,
    "due": 3,
    "overdue": 2,
    "closure_rate": 2 / 3,
    "on_time_closure_rate": 1 / 3,
    "disposal_rate": 2 / 4,
    "handled_rate": 3 / 4,
    "on_time_disposal_rate": 2 / 3,
    "return_rate": 1 / 5,
    "rework_rate": 1 / 3,
    "extension_rate": 1 / 4,
    "handling_hours_mean": 34.0,
    "handling_hours_p90": 62.4,
    "dispatched_closed": 2,
    "handled_on_time": 2,
    "closed_due": 2,
    "closed_on_time": 1,
}


@pytest.mark.parametrize("source", ["rollup", "events"])
def test_each_indicator_on_a_hand_made_week(week, source):
    row = stats.totals(week, start=WEEK[0], end=WEEK[1], source=source)
    for name, value in EXPECTED.items():
        assert row[name] == pytest.approx(value, abs=1e-6), name
    assert set(stats.COLUMNS) <= set(row.index)


@pytest.mark.parametrize("source", ["rollup", "events"])
def test_by_unit_attributes_each_event_to_its_unit(week, source):
    frame = stats.indicators(week, start=WEEK[0], end=WEEK[1], group_by="unit", source=source)
    rows = {r["unit"]: r for r in frame.to_dict(orient="records")}
    assert set(rows) == {"U1", "U2", None}
    # The report/verify/file of C carry no unit: they count for the case's unit (U1 now).
    assert (
        rows["U1"]["reported"],
        rows["U1"]["dispatched"],
        rows["U1"]["closed"],
        rows["U1"]["handled"],
        rows["U1"]["extended"],
        rows["U1"]["due"],
    ) == (3, 3, 2, 3, 1, 3)
    assert rows["U1"]["name"] == "一号单位"
    # U2 received C and F but rightly returned C: only F is its dispatched case.
    assert (
        rows["U2"]["reported"],
        rows["U2"]["received"],
        rows["U2"]["dispatched"],
        rows["U2"]["returned"],
        rows["U2"]["due"],
    ) == (1, 2, 1, 1, 0)
    assert rows["U2"]["disposal_rate"] == 0  # F is not closed
    assert rows["U2"]["return_rate"] == 0.5
    assert (rows["U1"]["received"], rows["U1"]["dispatched_closed"]) == (3, 2)
    assert rows[None]["reported"] == 1 and rows[None]["verified"] == 1


@pytest.mark.parametrize("group_by", [*stats.GROUPS, "day"])
def test_group_counts_add_up_to_the_totals(week, group_by):
    total = stats.totals(week, start=WEEK[0], end=WEEK[1])
    frame = stats.indicators(week, start=WEEK[0], end=WEEK[1], group_by=group_by)
    for column in COUNTS:
        assert frame[column].sum() == total[column], column


def test_outside_the_period_nothing_counts(week):
    row = stats.totals(week, start=date(2026, 3, 9), end=date(2026, 3, 15))
    assert row["due"] == 1 and row["reported"] == 0  # F is due on 10 March
    assert pd.isna(row["disposal_rate"]) and pd.isna(row["handling_hours_mean"])


@pytest.mark.parametrize("source", ["rollup", "events"])
def test_an_empty_period_has_zero_counts_and_no_rates(week, source):
    row = stats.totals(week, start=date(2027, 1, 1), end=date(2027, 1, 31), source=source)
    assert set(stats.COLUMNS) <= set(row.index)
    assert all(row[c] == 0 for c in COUNTS)
    assert pd.isna(row["disposal_rate"]) and pd.isna(row["handling_hours_p90"])


def test_trigger_rollup_equals_a_rebuild_from_the_log(week):
    daily = text(
        "SELECT dim, day, key, reported, verified, filed, dispatched, received, handled, "
        "handled_on_time, closed, returned, reworked, extended, dispatched_closed FROM stats_daily "
        "ORDER BY dim, day, key NULLS FIRST"
    )
    handling = text("SELECT * FROM stats_handling ORDER BY event_id")
    assert stats.fold_rollup(week) > 0
    assert week.scalar(text("SELECT count(*) FROM stats_delta")) == 0
    by_trigger = week.execute(daily).all(), week.execute(handling).all()
    # A (6 h), B (24 h, then 72 h after the failed check: still from the one dispatch).
    assert sorted(round(row.hours, 3) for row in by_trigger[1]) == [6.0, 24.0, 72.0]
    assert stats.rebuild_rollup(week) == len(by_trigger[0])
    assert (week.execute(daily).all(), week.execute(handling).all()) == by_trigger


@pytest.mark.parametrize("group_by", [None, *stats.GROUPS, "day"])
def test_folding_changes_no_figure(week, group_by):
    """Readers add the unfolded deltas: the figures before and after a fold are the same."""
    before = stats.indicators(week, start=WEEK[0], end=WEEK[1], group_by=group_by)
    stats.fold_rollup(week)
    after = stats.indicators(week, start=WEEK[0], end=WEEK[1], group_by=group_by)
    pd.testing.assert_frame_equal(before, after)
    raw = stats.indicators(week, start=WEEK[0], end=WEEK[1], group_by=group_by, source="events")
    pd.testing.assert_frame_equal(after, raw)


def _unit_and_category(session) -> None:
    session.execute(
        insert(Unit),
        [
            {"code": "U1", "name": "一号单位", "kind": "bureau"},
            {"code": "U2", "name": "二号单位", "kind": "bureau"},
        ],
    )
    add_exposed_garbage(session)


def _dispatched(session, start: date, end: date, source: str = "rollup") -> dict:
    frame = stats.indicators(session, start=start, end=end, group_by="unit", source=source)
    return {r["unit"]: (r["dispatched"], r["received"], r["returned"]) for r in frame.to_dict("records")}


@pytest.mark.parametrize("fold", [False, True])
def test_a_returned_case_is_not_charged_to_the_returning_unit(session, fold):
    """U2 rightly returns R: while R waits it is dispatched for no unit; re-dispatched two days
    later to U1, it is one dispatched case of U1 on that later day, and only U2's return stays."""
    _unit_and_category(session)
    r = add_case(
        session, "R", unit="U2", grid="421281001001001", inspector="i1", state="returned", reported=at(2, 8)
    )
    add_events(
        session, r, (at(2, 8), "report", None), (at(2, 9), "dispatch", "U2"), (at(2, 10), "return", "U2")
    )
    if fold:
        stats.fold_rollup(session)
    for source in ("rollup", "events"):
        assert _dispatched(session, date(2026, 3, 2), date(2026, 3, 2), source) == {
            "U2": (0, 1, 1),
            None: (1, 0, 0),  # dispatched, back with the centre: counted, but for no unit
        }
    add_events(
        session, r, (at(4, 9), "redispatch", "U1"), (at(5, 9), "handle", "U1"), (at(5, 12), "close", "U1")
    )
    if fold:
        stats.fold_rollup(session)
    for source in ("rollup", "events"):
        assert _dispatched(session, date(2026, 3, 2), date(2026, 3, 2), source) == {"U2": (0, 1, 1)}
        assert _dispatched(session, date(2026, 3, 4), date(2026, 3, 4), source) == {"U1": (1, 1, 0)}
        week = stats.totals(session, start=WEEK[0], end=WEEK[1], source=source)
        # Re-dispatched: one case dispatched, two dispatch events received.
        assert (week["dispatched"], week["received"], week["dispatched_closed"]) == (1, 2, 1)
        assert week["disposal_rate"] == 1.0 and week["return_rate"] == 0.5
        ranking = stats.unit_ranking(session, start=WEEK[0], end=WEEK[1], source=source)
        assert ranking["unit"].tolist() == ["U1"]  # U2 has no dispatched case: not ranked


def test_a_handled_case_without_a_deadline_is_not_on_time(session):
    session.execute(insert(Unit).values(code="U1", name="一号单位", kind="bureau"))
    add_exposed_garbage(session)
    case = add_case(
        session, "N", unit="U1", grid="421281001001001", inspector="i1", state="handled", reported=at(2, 9)
    )
    add_events(
        session, case, (at(2, 9), "report", None), (at(2, 10), "dispatch", "U1"), (at(2, 13), "handle", "U1")
    )
    for source in ("rollup", "events"):
        row = stats.totals(session, start=WEEK[0], end=WEEK[1], source=source)
        assert (row["handled"], row["handled_on_time"], row["handling_hours_mean"]) == (1, 0, 3)


def test_the_published_chibi_quarter_gives_94_29_percent(session):
    """7,389 dispatched and 6,967 closed, as published, give a disposal rate of 94.29%."""
    session.execute(insert(Unit).values(code="WATER", name="水利和湖泊局", kind="bureau"))
    add_exposed_garbage(session, time_limit=4, unit="working_hours")
    session.execute(
        text("""
        INSERT INTO cases (tracking_code, category_code, description, channel, reported_at,
                           reported_crs, location, state, unit_code, cooperating_unit_codes,
                           version, extensions, extension_requested)
        SELECT 'Q' || i, 'E0102', '', 'inspector',
               timestamptz '2026-07-01 08:00+08' + make_interval(hours => i % 2000), 'wgs84',
               ST_SetSRID(ST_MakePoint(113.9, 29.72), 4326),
               CASE WHEN i <= :closed THEN 'closed' ELSE 'dispatched' END, 'WATER', '{}', 1, 0,
               false
        FROM generate_series(1, :dispatched) AS i"""),
        {"dispatched": 7389, "closed": 6967},
    )
    session.execute(
        text("""
        INSERT INTO case_event (case_id, at, action, to_state, unit_code)
        SELECT id, reported_at + interval '1 hour', 'dispatch', 'dispatched', 'WATER'
        FROM cases WHERE tracking_code LIKE 'Q%%'
        UNION ALL
        SELECT id, reported_at + interval '5 hours', 'close', 'closed', 'WATER'
        FROM cases WHERE tracking_code LIKE 'Q%%' AND state = 'closed'""")
    )
    row = stats.totals(session, start=date(2026, 7, 1), end=date(2026, 9, 30))
    assert (row["dispatched"], row["closed"]) == (7389, 6967)
    assert round(row["disposal_rate"] * 100, 2) == 94.29
    assert stats.BY_NAME["disposal_rate"].name_zh == "处置率"


def test_bad_periods_and_groups_name_the_field(session):
    with pytest.raises(InvalidInput) as err:
        stats.indicators(session, start=date(2026, 3, 8), end=date(2026, 3, 2))
    assert err.value.field == "to"
    with pytest.raises(InvalidInput) as err:
        stats.indicators(session, start=WEEK[0], end=WEEK[1], group_by="planet")  # type: ignore[arg-type]
    assert err.value.field == "group_by"


def test_every_indicator_has_a_definition():
    for indicator in stats.INDICATORS:
        assert indicator.name and indicator.name_zh and indicator.formula and indicator.sql
    assert len({i.name for i in stats.INDICATORS}) == len(stats.INDICATORS)


# -- the seeded demo quarter --------------------------------------------------------------------
QUARTER = (date(2026, 7, 1), date(2026, 9, 30))


def test_demo_quarter_figures(demo_store):
    with demo_store.sessions() as session:
        quarter = stats.totals(session, start=QUARTER[0], end=QUARTER[1])
        # The quarter's cases: the last of them are closed by mid-October.
        cases = stats.totals(session, start=QUARTER[0], end=date(2026, 10, 31))
    assert (quarter["reported"], quarter["dispatched"], quarter["dispatched_closed"]) == (7534, 7389, 6967)
    # The cohort: of the quarter's dispatched cases, the share closed (some close in October).
    assert round(quarter["disposal_rate"] * 100, 2) == 94.29
    assert quarter["closed"] < 6967  # closes as a flow, counted on their day
    assert (cases["reported"], cases["dispatched"], cases["closed"]) == (7534, 7389, 6967)
    assert round(cases["disposal_rate"] * 100, 2) == 94.29
    for name in ("reported", "dispatched", "closed", "due"):
        assert type(quarter[name]) is int, name


MONTHS = [date(2026, m, 1) for m in (7, 8, 9, 10)]


@pytest.mark.parametrize("month", MONTHS, ids=lambda d: f"{d:%Y-%m}")
def test_no_unit_above_100_percent_in_any_month_of_the_demo(demo_store, month):
    with demo_store.sessions() as session:
        ranking = stats.monthly_ranking(session, month).tables["ranking"]
        screen = dashboard.units_ranking(
            session, dashboard.month_window(datetime(2026, 12, 1, tzinfo=CN), f"{month:%Y-%m}"), 500
        )
    rates = ranking["disposal_rate"].dropna()
    # October has closes of the quarter's cases but no dispatch: they count for their dispatch
    # month, and no unit is ranked on closes alone.
    assert len(ranking) > 0 if month.month < 10 else ranking.empty
    assert (rates <= 1).all() and (rates >= 0).all()
    assert (ranking["dispatched_closed"] <= ranking["dispatched"]).all()
    assert all(u.rate <= 1 for u in screen)


@pytest.mark.parametrize("group_by", stats.GROUPS)
def test_demo_groups_add_up_and_rollup_equals_the_raw_log(demo_store, group_by):
    with demo_store.sessions() as session:
        total = stats.totals(session, start=QUARTER[0], end=QUARTER[1])
        frame = stats.indicators(session, start=QUARTER[0], end=QUARTER[1], group_by=group_by)
        raw = stats.indicators(session, start=QUARTER[0], end=QUARTER[1], group_by=group_by, source="events")
    for column in COUNTS:
        assert frame[column].sum() == total[column], column
    pd.testing.assert_frame_equal(frame, raw)


def test_demo_weekly_report_and_monthly_ranking(demo_store):
    with demo_store.sessions() as session:
        weekly = stats.weekly_report(session, date(2026, 8, 12))
        monthly = stats.monthly_ranking(session, date(2026, 8, 20))
    assert weekly.period.start == date(2026, 8, 10) and weekly.period.end == date(2026, 8, 16)
    daily = weekly.tables["daily"]
    assert len(daily) == 7 and daily["reported"].sum() == weekly.totals["reported"]
    ranking = monthly.tables["ranking"]
    assert monthly.period.start == date(2026, 8, 1) and monthly.period.end == date(2026, 8, 31)
    assert list(ranking["rank"]) == list(range(1, len(ranking) + 1))
    rates = ranking["disposal_rate"].tolist()
    assert rates == sorted(rates, reverse=True) and (ranking["dispatched"] > 0).all()
    assert ranking["dispatched"].sum() == monthly.totals["dispatched"]


def test_the_command_centre_shows_the_reports_disposal_rate(demo_store):
    """The screen's 处置率 and unit ranking are the monthly ranking's, not a second definition."""
    now = datetime(2026, 11, 23, tzinfo=CN)
    with demo_store.sessions() as session:
        monthly = stats.monthly_ranking(session, date(2026, 8, 1))
        screen = dashboard.summary(session, now=now, month="2026-08").disposal
        units = dashboard.units_ranking(session, dashboard.month_window(now, "2026-08"), 5)
    assert (screen.closed, screen.dispatched) == (
        monthly.totals["dispatched_closed"],
        monthly.totals["dispatched"],
    )
    assert screen.rate == pytest.approx(monthly.totals["disposal_rate"])
    assert screen.definition.endswith(stats.BY_NAME["disposal_rate"].formula)
    top = monthly.tables["ranking"].head(5)
    assert [(u.rank, u.unit_code, u.closed, u.dispatched) for u in units] == list(
        zip(top["rank"], top["unit"], top["dispatched_closed"], top["dispatched"], strict=True)
    )
    assert [u.rate for u in units] == pytest.approx(top["disposal_rate"].tolist())


def _chart_report(kind: str, n: int) -> stats.Report:
    days = [date(2026, 3, 2) + timedelta(days=i) for i in range(7)]
    chart = (
        pd.DataFrame(
            {c: [n + i for i in range(7)] for c in ("reported", "dispatched", "handled", "closed")},
            index=days,
        )
        if kind == "weekly"
        else pd.DataFrame({"disposal_rate": [0.5 + n / 100, None]}, index=[f"单位{n}", "无派遣"])
    )
    p = stats.period(days[0], days[-1])
    return stats.Report(
        kind=kind, title="t", period=p, totals=pd.Series(dtype=object), chart=chart, chart_title=f"chart {n}"
    )  # type: ignore[arg-type]


def test_report_charts_render_in_threads_without_pyplot():
    """The chart uses matplotlib's object API: threads render their own figures, no pyplot state."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        svgs = list(
            pool.map(lambda n: stats.report_svg(_chart_report(("weekly", "monthly")[n % 2], n)), range(16))
        )
    for n, svg in enumerate(svgs):
        assert svg.startswith("<svg") and f"chart {n}" in svg  # each thread drew its own figure
    script = (
        "import sys; from tests.geo.test_stats import _chart_report; from geo import stats; "
        "stats.report_svg(_chart_report('weekly', 1)); stats.report_svg(_chart_report('monthly', 2)); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_one_units_figures_are_its_row_of_the_ranking(demo_store):
    """A unit desk's own figures: the unit's row of `indicators` by unit, queried for it alone."""
    august = stats.month_period(date(2026, 8, 20))
    assert (august.start, august.end) == (date(2026, 8, 1), date(2026, 8, 31))
    with demo_store.sessions() as session:
        units = stats.indicators(session, start=august.start, end=august.end, group_by="unit")
        water = stats.unit_totals(session, "WATER", start=august.start, end=august.end)
        nobody = stats.unit_totals(session, "NO-SUCH-UNIT", start=august.start, end=august.end)
    row = units.loc[units["unit"] == "WATER"].iloc[0]
    for column in (*stats.COLUMNS, *stats.AUXILIARY):
        expected = row[column]
        assert (water[column] is None and pd.isna(expected)) or water[column] == expected, column
    assert water["dispatched"] > 0
    assert nobody["dispatched"] == 0 and nobody["disposal_rate"] is None


# -- channels (来源) and satisfaction (回访率, 满意率) in the indicators and the monthly report -------
def test_demo_channels_add_up_and_one_channel_is_its_groups_row(demo_store):
    """Per channel, in words; the counts add up to the totals; a channel's own totals are its row."""
    with demo_store.sessions() as session:
        total = stats.totals(session, start=QUARTER[0], end=QUARTER[1])
        frame = stats.indicators(session, start=QUARTER[0], end=QUARTER[1], group_by="channel")
        hotline = stats.totals(session, start=QUARTER[0], end=QUARTER[1], channel="hotline_12345")
        with pytest.raises(InvalidInput) as refused:
            stats.totals(session, start=QUARTER[0], end=QUARTER[1], channel="fax")
    assert refused.value.field == "channel"
    # Every channel a report can come by has a name; the demo quarter has every one but Open311.
    assert set(stats.CHANNEL_NAMES_ZH) == {channel.value for channel in Channel}
    assert set(frame["channel"]) == set(stats.CHANNEL_NAMES_ZH) - {Channel.open311.value}
    assert dict(zip(frame["channel"], frame["name"], strict=True))["hotline_12345"] == "12345热线"
    for column in COUNTS:
        assert frame[column].sum() == total[column], column
    row = frame[frame["channel"] == "hotline_12345"].iloc[0]
    for column in (*COUNTS, "disposal_rate", "on_time_closure_rate"):
        assert row[column] == pytest.approx(hotline[column], nan_ok=True), column
    assert 0 < hotline["reported"] < total["reported"]


def _rate_closed_cases(session, month: date) -> dict[str, int]:
    """Rate some of the month's closed cases (every 3rd satisfied, every 5th unsatisfied, every
    7th by the callback): returns how many of each."""
    p = stats.month_period(month)
    ids = session.scalars(
        text(
            "SELECT id FROM cases WHERE state = 'closed' AND closed_at >= :t0 AND closed_at < :t1 ORDER BY id"
        ),
        {"t0": p.t0, "t1": p.t1},
    ).all()
    # The demo's own verdicts (geo/demo.py) are cleared: the month's ratings are exactly these.
    session.execute(text("DELETE FROM case_rating WHERE case_id = ANY(:ids)"), {"ids": list(ids)})
    counts = {"satisfied": 0, "unsatisfied": 0, "basically_satisfied": 0}
    for i, case_id in enumerate(ids):
        rating = (
            "satisfied"
            if i % 3 == 0
            else "unsatisfied"
            if i % 5 == 0
            else "basically_satisfied"
            if i % 7 == 0
            else None
        )
        if rating is None:
            continue
        counts[rating] += 1
        session.execute(
            text(
                "INSERT INTO case_rating (case_id, rating, comment, source, rated_at) "
                "VALUES (:id, :rating, '', :source, now())"
            ),
            {"id": case_id, "rating": rating, "source": "callback" if i % 2 else "resident"},
        )
    return counts | {"closed": len(ids)}


def test_the_monthly_report_has_satisfaction_per_unit_street_community_and_channel(demo_store):
    """回访率 = rated / closed and 满意率 = (满意 + 基本满意) / rated, in the summary (with the
    formulas), next to each unit and street, per community and per channel; the definitions list
    them; the per-group figures add up to the month's."""
    month = date(2026, 8, 1)
    with rolled_back(demo_store) as session:
        rated = _rate_closed_cases(session, month)
        report = stats.monthly_ranking(session, month)
        by_unit = stats.satisfaction(session, start=date(2026, 8, 1), end=date(2026, 8, 31), group_by="unit")
    n = rated["satisfied"] + rated["unsatisfied"] + rated["basically_satisfied"]
    summary = report.tables["summary"].set_index("indicator")
    assert summary.loc["callback_rate", "this month"] == pytest.approx(round(n / rated["closed"], 6))
    good = rated["satisfied"] + rated["basically_satisfied"]
    assert summary.loc["satisfaction_rate", "this month"] == pytest.approx(round(good / n, 6))
    assert summary.loc["callback_rate", "formula"] == stats.BY_NAME["callback_rate"].formula
    assert summary.loc["satisfaction_rate", "指标"] == "满意率"
    ranking = report.tables["ranking"]
    assert {"rated", "callback_rate", "satisfaction_rate"} <= set(ranking.columns)
    units = {r["unit"]: r for r in by_unit}
    for row in ranking.itertuples():
        if row.unit in units:
            assert row.rated == units[row.unit]["rated"]
            assert row.callback_rate == pytest.approx(units[row.unit]["callback_rate"], nan_ok=True)
    streets, communities = report.tables["streets"], report.tables["communities"]
    assert streets["rated"].sum() == communities["rated"].sum() == n
    assert communities["closed_cases"].sum() == rated["closed"]
    assert communities["name"].str.endswith("社区").all()
    channels = report.tables["channels"]
    assert "12345热线" in set(channels["name"]) and channels["rated"].sum() == n
    assert channels["reported"].sum() == report.totals["reported"]
    assert {"callback_rate", "satisfaction_rate"} <= {i.name for i in stats.REPORT_INDICATORS}
    html_labels = [stats.column_label(c) for c in channels.columns]
    assert "来源" in html_labels and "回访率" in html_labels and "满意率" in html_labels


def test_a_month_with_nothing_closed_still_makes_the_monthly_report(demo_store):
    """A month before the demo's first case: every table is there, empty, with its named columns
    (the API fuzzer found the satisfaction-per-community table refusing an empty month)."""
    with demo_store.sessions() as session:
        report = stats.monthly_ranking(session, date(2025, 1, 1))
    communities = report.tables["communities"]
    assert communities.empty and {"community", "name", "rated", "satisfaction_rate"} <= set(
        communities.columns
    )
    assert report.tables["channels"]["rated"].sum() == 0


def test_the_demo_quarter_has_its_verdicts(demo_store):
    """The demo rates a fixed share of its closed cases (geo/demo.py): the quarter's 回访率 and
    满意率 come out at the shares it was made with, and 12345 cases are rated in the callback."""
    with demo_store.sessions() as session:
        (quarter,) = stats.satisfaction(session, start=QUARTER[0], end=QUARTER[1])
        sources = dict(
            session.execute(
                text(
                    "SELECT c.channel = 'hotline_12345', count(DISTINCT r.source) FROM case_rating r "
                    "JOIN cases c ON c.id = r.case_id GROUP BY 1"
                )
            ).all()
        )
    assert quarter["callback_rate"] == pytest.approx(DEMO_RATED_PERCENT / 100, abs=0.02)
    good = DEMO_VERDICT_PERCENT["satisfied"] + DEMO_VERDICT_PERCENT["basically_satisfied"]
    assert quarter["satisfaction_rate"] == pytest.approx(good / 100, abs=0.02)
    assert sources == {True: 1, False: 1}  # one source each: callback for 12345, the page otherwise
