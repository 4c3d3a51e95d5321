"""`GET /healthz` reports the real database and PostGIS versions."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.app import create_app
from geo.cases.work_calendar import calendar_status, stored_calendar
from geo.store import migrate


def test_healthz_reports_versions(settings, store):
    with TestClient(create_app(settings, store=store)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] in ("ok", "warning")
    assert body["postgresql"].startswith("15")
    assert body["postgis"].startswith("3.")
    assert body["schema_revision"] == migrate.head_revision(store.engine)


def test_healthz_warns_from_sixty_days_before_the_calendar_ends(settings, store):
    """The seeded calendar ends on 2026-12-31: from 2 November 2026 the check says so, in words."""
    with TestClient(create_app(settings, store=store)) as client:
        body = client.get("/healthz").json()
    with store.transaction() as session:
        status = calendar_status(stored_calendar(session), datetime.now(UTC))
    assert body["calendar"] == {
        "ends": "2026-12-31",
        "days_left": status.days_left,
        "next_year": 2027,
    }
    if status.warning:
        assert body["status"] == "warning"
        (warning,) = body["warnings"]
        assert "2026-12-31" in warning and "gridcase calendar import" in warning and "2027" in warning
    else:
        assert body["status"] == "ok" and body["warnings"] == []
