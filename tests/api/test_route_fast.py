"""The lookup's fast path (api/route_fast.py): the endpoint's bytes for a plain lookup, the endpoint
for the rest."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.route_fast import RoutePointFastPath, plain_query
from geo.coords import CoordinateSystem


@pytest.fixture(scope="module")
def app(settings, demo_store):
    app = create_app(settings, store=demo_store)
    with TestClient(app):  # runs the lifespan: app.state.router exists
        yield app


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


@pytest.fixture(scope="module")
def points(demo_store) -> list[tuple[float, float]]:
    """Inside grids, on the canal's buffer, near a grid and outside every grid."""
    with demo_store.sessions() as s:
        inside = s.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM area "
                "WHERE level = 'grid' ORDER BY code LIMIT 40) g"
            )
        ).all()
    return [(float(x), float(y)) for x, y in inside] + [(113.9, 29.72), (113.5, 29.5), (112.0, 29.0)]


def test_plain_lookups_get_the_endpoints_bytes(client, points):
    """Each plain lookup against the same lookup sent down to the endpoint (an extra parameter
    the endpoint ignores makes the fast path pass it on)."""
    compared = 0
    for lon, lat in points:
        for extra in ("", "&category=E0102", "&category=C0110", "&crs=gcj02", "&crs=bd09&category=E0102"):
            query = f"lon={lon:.6f}&lat={lat:.6f}{extra}"
            fast = client.get(f"/api/v1/route?{query}")
            endpoint = client.get(f"/api/v1/route?{query}&via=endpoint")
            assert fast.status_code == endpoint.status_code == 200
            assert fast.content == endpoint.content
            assert sorted(fast.headers.items()) == sorted(endpoint.headers.items())
            compared += 1
    assert compared == len(points) * 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"lon=113.9&lat=29.72", (113.9, 29.72, None, CoordinateSystem.wgs84)),
        (b"lat=-29.5&crs=gcj02&lon=113&category=E0102", (113.0, -29.5, "E0102", CoordinateSystem.gcj02)),
        (b"lon=113.9", None),  # the endpoint names the missing lat
        (b"lon=113.9&lat=29.72&lat=29.8", None),  # repeated: the framework's rule decides
        (b"lon=1e2&lat=29.72", None),  # pydantic's reading of other spellings is the endpoint's
        (b"lon=nan&lat=29.72", None),
        (b"lon=%31%31%33&lat=29.72", None),  # percent-encoded
        (b"lon=113.9&lat=29.72&category=", None),  # an empty category is the endpoint's 422
        (b"lon=113.9&lat=29.72&crs=WGS84", None),
        (b"lon=113.9&lat=29.72&lang=en", None),
        (b"lon=113.9&lat=29.72&", None),
        (b"", None),
    ],
)
def test_what_is_plain(query, expected):
    assert plain_query(query) == expected


class Endpoint:
    """The app below the middleware: records what was passed on (and answers 204)."""

    def __init__(self) -> None:
        self.passed: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        self.passed.append(scope["query_string"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call(app, middleware, method: str, path: str, query: bytes) -> list[dict]:  # noqa: ANN001
    sent: list[dict] = []
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": [],
        "app": app,
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/api/v1/route", b"lon=113.9&lat=29.72&category=X9999"),  # unknown category: its 422
        ("GET", "/api/v1/route", b"lon=29.72&lat=113.9"),  # swapped: the endpoint's 422 names lat
        ("GET", "/api/v1/route", b"lon=113.9&lat=29.72&category=E0102&via=endpoint"),
        ("HEAD", "/api/v1/route", b"lon=113.9&lat=29.72"),
        ("GET", "/api/v1/route/", b"lon=113.9&lat=29.72"),
        ("POST", "/api/v1/route/batch", b""),
    ],
)
def test_everything_else_goes_to_the_endpoint(app, method, path, query):
    endpoint = Endpoint()
    sent = call(app, RoutePointFastPath(endpoint), method, path, query)
    assert endpoint.passed == [query] and sent[0]["status"] == 204


def test_a_plain_lookup_never_reaches_the_framework(app):
    endpoint = Endpoint()
    app.state.router.route(113.9, 29.72)  # the cache answers now (checked within the last second)
    sent = call(app, RoutePointFastPath(endpoint), "GET", "/api/v1/route", b"lon=113.9&lat=29.72")
    assert endpoint.passed == [] and sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/json"
    assert b'"status":"routed"' in sent[1]["body"]


def test_a_stale_cache_goes_to_the_endpoint(app):
    """Past the refresh interval the version must be read from PostGIS: on the endpoint's thread."""
    endpoint = Endpoint()
    app.state.router.invalidate()
    sent = call(app, RoutePointFastPath(endpoint), "GET", "/api/v1/route", b"lon=113.9&lat=29.72")
    assert endpoint.passed == [b"lon=113.9&lat=29.72"] and sent[0]["status"] == 204
