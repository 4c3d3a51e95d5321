"""Migrations go up and down cleanly on a real PostGIS, and the event log is append-only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import DBAPIError

from geo.store import migrate
from geo.store.models import Case, CaseEvent, Unit
from tests.conftest import add_exposed_garbage, fresh_store

TABLES = {
    "boundary_generation",
    "area",
    "unit",
    "grid_responsibility",
    "category",
    "responsibility_layer",
    "cases",
    "case_event",
    "reference_version",
    "account",
    "api_token",
    "case_photo",
    "case_link",
    "stats_daily",
    "stats_handling",
}


def test_up_down_up(settings):
    store = fresh_store(settings, "migrations")
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision(store.engine)
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        migrate.downgrade(store.engine, "base")
        assert migrate.current_revision(store.engine) is None
        assert not TABLES & set(inspect(store.engine).get_table_names())
        migrate.upgrade(store.engine)
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        with store.engine.connect() as conn:
            gist = (
                conn.execute(text("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gist%'"))
                .scalars()
                .all()
            )
        assert {"idx_area_geom", "idx_cases_location", "idx_responsibility_layer_zone"} <= set(gist)
    finally:
        store.dispose()


def add_case(session, reported_at: datetime, **values) -> int:
    """One case of category E0102 for unit U1 (both added here); returns its id."""
    session.execute(insert(Unit).values(code="U1", name="单位", kind="bureau"))
    add_exposed_garbage(session, time_limit=4, unit="working_hours")
    return session.execute(
        insert(Case)
        .values(
            tracking_code="T1",
            category_code="E0102",
            channel="inspector",
            reported_at=reported_at,
            location="SRID=4326;POINT(113.9 29.72)",
            version=1,
            cooperating_unit_codes=[],
            description="",
            reported_crs="wgs84",
            **values,
        )
        .returning(Case.id)
    ).scalar_one()


def test_case_events_cannot_be_edited_or_deleted(session):
    case_id = add_case(session, datetime.now(UTC), state="reported")
    session.execute(
        insert(CaseEvent).values(case_id=case_id, at=datetime.now(UTC), action="report", to_state="reported")
    )
    for statement in ("UPDATE case_event SET note = 'edited'", "DELETE FROM case_event"):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(statement))


def test_handling_hours_survive_0004_down_and_up(settings):
    """0004 moved handling hours from rollup arrays to `stats_handling`; both ways keep them."""
    store = fresh_store(settings, "migrations_0004")
    try:
        with store.transaction() as s:
            case_id = add_case(
                s,
                datetime(2026, 3, 2, 1, tzinfo=UTC),
                state="handled",
                unit_code="U1",
                grid_code="421281001001001",
                deadline_at=datetime(2026, 3, 3, tzinfo=UTC),
            )
            s.execute(
                insert(CaseEvent),
                [
                    {
                        "case_id": case_id,
                        "at": datetime(2026, 3, 2, h, tzinfo=UTC),
                        "action": a,
                        "to_state": a,
                        "unit_code": "U1",
                    }
                    for h, a in ((1, "report"), (2, "dispatch"), (8, "handle"))
                ],
            )
        handling = text("SELECT hours, unit_code, grid_code FROM stats_handling")
        arrays = text("SELECT handling_hours FROM stats_daily WHERE dim = 'all'")
        with store.engine.connect() as conn:
            assert conn.execute(handling).all() == [(6.0, "U1", "421281001001001")]
        migrate.downgrade(store.engine, "0003")
        with store.engine.connect() as conn:
            assert conn.execute(arrays).scalars().all() == [[6.0]]
        migrate.upgrade(store.engine)
        with store.engine.connect() as conn:
            assert conn.execute(handling).all() == [(6.0, "U1", "421281001001001")]
    finally:
        store.dispose()
