"""`GET /healthz` reports the real database and PostGIS versions."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from geo.store import migrate


def test_healthz_reports_versions(settings, store):
    with TestClient(create_app(settings, store=store)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["postgresql"].startswith("15")
    assert body["postgis"].startswith("3.")
    assert body["schema_revision"] == migrate.head_revision(store.engine)
