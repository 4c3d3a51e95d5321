"""The append-only rollup under concurrent writers with a fold running: nothing lost, nothing twice.

Writers commit for real (their own database: a rolled-back test transaction could not show what
another connection sees), each report, dispatch, return, re-dispatch and close in its own
transaction, while `RollupFolder` folds in a loop. Every acknowledged (committed) report must be
in the rollup exactly once, and the rollup must equal the raw event log and a rebuild.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import insert, text

from geo import stats
from geo.store.models import Case, CaseEvent, Unit
from tests.conftest import add_exposed_garbage, fresh_store

CN = stats.CHINA
WRITERS = 6
CASES_PER_WRITER = 40
DAY0 = datetime(2026, 5, 4, 8, tzinfo=CN)
PERIOD = (date(2026, 5, 1), date(2026, 5, 31))
GRIDS = ["421281001001001", "421281001002001", "421281002001001"]


@pytest.fixture(scope="module")
def fold_store(settings):
    store = fresh_store(settings, "fold")
    with store.transaction() as s:
        s.execute(
            insert(Unit),
            [{"code": f"U{n}", "name": f"{n} 号单位", "kind": "bureau"} for n in range(1, 4)],
        )
        add_exposed_garbage(s)
    yield store
    store.dispose()


def _write_cases(store, writer: int, acknowledged: list[int], start: threading.Barrier) -> None:
    """One writer: each case's steps in separate committed transactions, like the app."""
    start.wait()
    for n in range(CASES_PER_WRITER):
        i = writer * CASES_PER_WRITER + n
        t = DAY0 + timedelta(days=i % 20, minutes=i)
        unit, other = f"U{1 + i % 3}", f"U{1 + (i + 1) % 3}"
        with store.transaction() as s:
            case_id = s.execute(
                insert(Case)
                .values(
                    tracking_code=f"F{i}",
                    category_code="E0102",
                    channel="inspector",
                    description="",
                    reported_by=f"inspector{i % 4}",
                    reported_at=t,
                    reported_crs="wgs84",
                    location="SRID=4326;POINT(113.9 29.72)",
                    state="reported",
                    unit_code=unit,
                    grid_code=GRIDS[i % 3],
                    community_code=GRIDS[i % 3][:12],
                    street_code=GRIDS[i % 3][:9],
                    deadline_at=t + timedelta(days=1),
                    cooperating_unit_codes=[],
                    version=1,
                )
                .returning(Case.id)
            ).scalar_one()
            s.execute(insert(CaseEvent).values(case_id=case_id, at=t, action="report", to_state="reported"))
        acknowledged.append(case_id)  # committed: the reporter got its tracking code
        if i % 5 == 4:
            continue  # reported only
        steps = [(1, "dispatch", unit)]
        if i % 4 == 1:  # returned by the wrong unit, re-dispatched (sometimes the next day)
            steps = [(1, "dispatch", other), (2, "return", other), (3 + 24 * (i % 2), "redispatch", unit)]
        if i % 3 != 2:
            steps += [(30, "handle", unit), (32, "close", unit)]
        for hours, action, at_unit in steps:
            with store.transaction() as s:
                s.execute(
                    insert(CaseEvent).values(
                        case_id=case_id,
                        at=t + timedelta(hours=hours),
                        action=action,
                        to_state=action,
                        unit_code=at_unit,
                    )
                )


def test_every_acknowledged_report_is_in_the_rollup_exactly_once(fold_store):
    acknowledged: list[int] = []
    start = threading.Barrier(WRITERS + 1)
    writers = [
        threading.Thread(target=_write_cases, args=(fold_store, w, acknowledged, start))
        for w in range(WRITERS)
    ]
    for w in writers:
        w.start()
    folder = stats.RollupFolder(fold_store.transaction, interval_s=0.002).start()
    start.wait()
    # Readers meanwhile: never more reports than acknowledged at the end of the read.
    while any(w.is_alive() for w in writers):
        with fold_store.sessions() as s:
            seen = stats.totals(s, start=PERIOD[0], end=PERIOD[1])["reported"]
        assert seen <= len(acknowledged) + WRITERS  # at most one in flight per writer
    for w in writers:
        w.join()
    folder.stop()
    assert folder.errors == 0 and folder.batches > 1  # folds ran while the writers wrote
    with fold_store.sessions() as s:
        assert s.scalar(text("SELECT count(*) FROM stats_delta")) == 0
        folded = s.scalar(text("SELECT sum(reported) FROM stats_daily WHERE dim = 'all'"))
        assert folded == len(acknowledged) == WRITERS * CASES_PER_WRITER
        for group_by in (None, *stats.GROUPS, "day"):
            rollup = stats.indicators(s, start=PERIOD[0], end=PERIOD[1], group_by=group_by)
            raw = stats.indicators(s, start=PERIOD[0], end=PERIOD[1], group_by=group_by, source="events")
            pd.testing.assert_frame_equal(rollup, raw)
        total = stats.totals(s, start=PERIOD[0], end=PERIOD[1])
        dispatched = WRITERS * CASES_PER_WRITER * 4 // 5
        assert total["dispatched"] == dispatched < total["received"]
        daily = text("SELECT * FROM stats_daily ORDER BY dim, day, key NULLS FIRST")
        by_fold = s.execute(daily).all()
    with fold_store.transaction() as s:
        stats.rebuild_rollup(s)
    with fold_store.sessions() as s:
        assert s.execute(daily).all() == by_fold


def test_a_second_fold_does_not_wait_for_the_first(fold_store):
    with fold_store.transaction() as first:
        assert stats.fold_rollup(first) >= 0  # holds the fold lock until commit
        with fold_store.transaction() as second:
            second.execute(text("SET LOCAL lock_timeout = '1s'"))
            assert stats.fold_rollup(second) == 0


def test_0005_down_and_up_keeps_the_figures(settings):
    """0005 counts dispatched cases, 0004 counted dispatch events; both ways rebuild from the log."""
    from geo.store import migrate

    store = fresh_store(settings, "migrations_0005")
    try:
        with store.transaction() as s:
            s.execute(insert(Unit), [{"code": u, "name": u, "kind": "bureau"} for u in ("U1", "U2")])
            add_exposed_garbage(s)
            case_id = s.execute(
                insert(Case)
                .values(
                    tracking_code="M1",
                    category_code="E0102",
                    channel="inspector",
                    description="",
                    reported_at=DAY0,
                    reported_crs="wgs84",
                    location="SRID=4326;POINT(113.9 29.72)",
                    state="dispatched",
                    unit_code="U1",
                    cooperating_unit_codes=[],
                    version=1,
                )
                .returning(Case.id)
            ).scalar_one()
            s.execute(
                insert(CaseEvent),
                [
                    {
                        "case_id": case_id,
                        "at": DAY0 + timedelta(hours=h),
                        "action": a,
                        "unit_code": u,
                        "to_state": a,
                    }
                    for h, a, u in (
                        (0, "report", None),
                        (1, "dispatch", "U2"),
                        (2, "return", "U2"),
                        (3, "redispatch", "U1"),
                    )
                ],
            )
        figures = text("SELECT key, dispatched FROM stats_daily WHERE dim = 'unit' ORDER BY key NULLS FIRST")
        with store.transaction() as s:
            stats.fold_rollup(s)
            assert s.execute(figures).all() == [("U1", 1), ("U2", 0)]
        migrate.downgrade(store.engine, "0004")
        with store.engine.connect() as conn:
            assert conn.execute(figures).all() == [("U1", 1), ("U2", 1)]  # events, as before
        migrate.upgrade(store.engine)
        with store.transaction() as s:
            assert s.execute(figures).all() == [("U1", 1), ("U2", 0)]
            assert s.scalar(text("SELECT sum(received) FROM stats_daily WHERE dim = 'all'")) == 2
    finally:
        store.dispose()
