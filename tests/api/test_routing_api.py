"""The routing API: one point, batches as GeoJSON and CSV, and 422s that name the field."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from api.app import create_app
from geo.demo import DEMO_PASSWORD
from geo.routing import RoutingDecision
from tests.conftest import REPO

DECISIONS = TypeAdapter(list[RoutingDecision])


@pytest.fixture(scope="module")
def client(settings, demo_store):
    with TestClient(create_app(settings, store=demo_store)) as client:
        yield client


@pytest.fixture(scope="module")
def signed_in(client) -> dict[str, str]:
    """A planner's bearer token on the demo database (batches are for signed-in accounts)."""
    answer = client.post("/api/v1/auth/token", data={"username": "planner", "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture(scope="module")
def canal_point():
    layers = gpd.read_file(REPO / "data" / "chibi" / "layers.geojson")
    point = layers.loc[layers.name == "北渠", "geometry"].iloc[0].interpolate(0.3, normalized=True)
    return point.x, point.y


def test_route_a_point(client, canal_point):
    lon, lat = canal_point
    response = client.get("/api/v1/route", params={"lon": lon, "lat": lat, "category": "E0102"})
    assert response.status_code == 200
    decision = RoutingDecision.model_validate(response.json())
    assert decision.primary_unit.code == "WATER"
    assert any("北渠" in step.text for step in decision.rules)


def test_the_decision_schema_is_in_openapi(client):
    schema = client.get("/openapi.json").json()
    assert "RoutingDecision" in schema["components"]["schemas"]
    assert "/api/v1/route/batch" in schema["paths"]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"lon": "east", "lat": 29.7}, "query.lon", "number"),
        ({"lat": 29.7}, "query.lon", "required"),
        ({"lon": "nan", "lat": 29.7}, "lon", "finite"),
        ({"lon": 29.72, "lat": 113.9}, "lat", "swapped"),
        ({"lon": 113.9, "lat": 29.72, "crs": "mars"}, "query.crs", "wgs84"),
        ({"lon": 113.9, "lat": 29.72, "category": "X9999"}, "category", "catalogue"),
    ],
)
def test_bad_points_get_a_422_naming_the_field(client, params, field, words):
    response = client.get("/api/v1/route", params=params)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["field"] == field
    assert words in detail["message"]


def test_batch_geojson(client, signed_in, canal_point):
    lon, lat = canal_point
    body = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"category": "E0102"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"category": "C0110"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [112.0, 29.0]},
                "properties": {},
            },
        ],
    }
    response = client.post(
        "/api/v1/route/batch",
        content=json.dumps(body),
        headers={"content-type": "application/geo+json", **signed_in},
    )
    assert response.status_code == 200
    decisions = DECISIONS.validate_python(response.json())
    assert [d.primary_unit.code if d.primary_unit else None for d in decisions] == ["WATER", "CGJ", None]
    assert decisions[2].status == "unroutable"


def test_batch_csv_is_streamed_for_large_inputs(client, signed_in, canal_point):
    lon, lat = canal_point
    rows = "\n".join(f"{lon + i * 1e-6},{lat},E0102" for i in range(12_000))
    response = client.post(
        "/api/v1/route/batch?crs=wgs84",
        content=f"lon,lat,category\n{rows}\n",
        headers={"content-type": "text/csv", **signed_in},
    )
    assert response.status_code == 200
    assert "content-length" not in response.headers  # streamed in chunks
    decisions = response.json()
    assert len(decisions) == 12_000
    assert decisions[0]["primary_unit"]["code"] == "WATER"


@pytest.mark.parametrize(
    ("content", "kind", "field", "words"),
    [
        ("lon,lat\n113.9,north\n", "text/csv", "row 2.lat", "not a number"),
        ("x,y\n113.9,29.7\n", "text/csv", "lon", "'lon' column"),
        ("lon,lat,category\n113.9,29.7,ZZZ\n", "text/csv", "points[0].category", "catalogue"),
        ("lon,lat\n29.7,113.9\n", "text/csv", "points[0].lat", "swapped"),
        ('{"type": "FeatureCollection"}', "application/geo+json", "features", "FeatureCollection"),
        (
            '{"type": "FeatureCollection", "features": [{"geometry": {"type": "LineString"}}]}',
            "application/geo+json",
            "features[0].geometry",
            "Point",
        ),
        ("not json", "application/json", "body", "not JSON"),
        ("<xml/>", "application/xml", "content-type", "GeoJSON or CSV"),
    ],
)
def test_bad_batches_get_a_422_naming_the_field(client, signed_in, content, kind, field, words):
    response = client.post(
        "/api/v1/route/batch", content=content, headers={"content-type": kind, **signed_in}
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["field"] == field
    assert words in detail["message"]


def test_batches_need_a_sign_in(client, canal_point):
    """Before: no sign-in needed, and a 250 MB body was parsed in full."""
    lon, lat = canal_point
    anonymous = client.post(
        "/api/v1/route/batch", content=f"lon,lat\n{lon},{lat}\n", headers={"content-type": "text/csv"}
    )
    assert anonymous.status_code == 401 and anonymous.json()["detail"][0]["field"] == "authorization"


def test_oversized_batches_are_refused_before_they_are_read(client, signed_in):
    from api.routes.routing import MAX_BATCH_BYTES

    declared = client.post(
        "/api/v1/route/batch",
        content=b"lon,lat\n",
        headers={"content-type": "text/csv", "content-length": str(MAX_BATCH_BYTES + 1), **signed_in},
    )
    assert declared.status_code == 413 and declared.json()["detail"][0]["field"] == "body"
    sent = []

    def chunks():  # no length given: counted as it arrives, refused once past the limit
        yield b"lon,lat\n"
        for _ in range(MAX_BATCH_BYTES // (1 << 20) + 2):
            sent.append(1)
            yield b"113.9,29.7\n" * ((1 << 20) // 11)

    streamed = client.post(
        "/api/v1/route/batch", content=chunks(), headers={"content-type": "text/csv", **signed_in}
    )
    assert streamed.status_code == 413
    assert "at most" in declared.json()["detail"][0]["message"]
