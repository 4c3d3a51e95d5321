"""While PostgreSQL is unreachable every answer is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.store import Store


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client_without_database(settings, tmp_path_factory):
    url = f"postgresql+psycopg://gridcase:x@127.0.0.1:{closed_port()}/gridcase"
    store = Store(settings, url=url)
    app = create_app(settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("s")}), store=store)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    store.dispose()


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/healthz", {}),
        ("post", "/api/v1/auth/token", {"data": {"username": "operator", "password": "x" * 12}}),
        ("get", "/api/v1/cases", {"headers": {"Authorization": "Bearer abc"}}),
        ("get", "/api/v1/track/GC261201ABCDEFGH", {}),
        ("get", "/api/v1/dashboard/summary", {"screen": True}),
        ("get", "/api/v1/route?lon=113.9&lat=29.72", {}),
        (
            "post",
            "/api/v1/cases",
            {
                "json": {"category": "E0102", "lon": 113.9, "lat": 29.72},
                "headers": {"Authorization": "Bearer abc"},
            },
        ),
    ],
)
def test_unreachable_database_is_503_with_retry_after(client_without_database, method, path, kwargs):
    if kwargs.pop("screen", False):  # the big screen's feed, with its kiosk key
        kwargs = {**kwargs, "headers": {"X-Screen-Key": client_without_database.app.state.screen_keys[0]}}
    response = getattr(client_without_database, method)(path, **kwargs)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["detail"][0]["field"] == "database"
