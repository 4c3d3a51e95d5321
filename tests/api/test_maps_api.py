"""The map pages over HTTP: HTML with local assets, filters from the query, 4xx naming the field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from geo.maps.heatmap import OPEN_STATES
from geo.maps.offline import VENDOR_DIR, external_urls
from geo.store.models import Case


@pytest.fixture(scope="module")
def client(settings, demo_store):
    with TestClient(create_app(settings, store=demo_store)) as client:
        yield client


@pytest.fixture(scope="module")
def tiled_client(settings, demo_store):
    tiled = settings.model_copy(
        update={"tiles_url": "http://tiles.lan/{z}/{x}/{y}.png", "tiles_attribution": "intranet tiles"}
    )
    with TestClient(create_app(tiled, store=demo_store)) as client:
        yield client


@pytest.fixture(scope="module")
def community(demo_store) -> str:
    with demo_store.sessions() as session:
        return session.execute(
            select(Case.community_code)
            .where(Case.state.in_(OPEN_STATES))
            .group_by(Case.community_code)
            .order_by(func.count().desc(), Case.community_code)
            .limit(1)
        ).scalar_one()


def test_community_heatmap_page(client, demo_store, community):
    response = client.get(f"/maps/communities/{community}/heatmap")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "L.heatLayer" in html and "markerClusterGroup" in html and community in html
    assert external_urls(html) == [] and "L.tileLayer" not in html
    # Anonymous viewers (the big screen) get no tracking codes in the marker popups.
    with demo_store.sessions() as session:
        codes = session.scalars(
            select(Case.tracking_code).where(Case.community_code == community, Case.state.in_(OPEN_STATES))
        ).all()
    assert codes and not any(code in html for code in codes)


def test_filters_come_from_the_query(client, community):
    everything = client.get(f"/maps/communities/{community}/heatmap").text
    narrowed = client.get(
        f"/maps/communities/{community}/heatmap",
        params=[("state", "signed,rework"), ("overdue", "true"), ("min_age_days", "1")],
    ).text
    assert "状态 signed,rework" in narrowed and "仅超期 overdue" in narrowed
    assert len(narrowed) < len(everything)


def test_unknown_community_is_a_404_page(client):
    response = client.get("/maps/communities/421281999999/heatmap")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-kind="err_404_community"' in response.text and "找不到这个社区" in response.text
    assert "421281999999" in response.text  # the detail names the code that was not found
    assert 'href="/maps/city?lang=zh"' in response.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"category": "E9999"}, "category"),
        ({"state": "closed"}, "state"),
        ({"min_age_days": "5", "max_age_days": "2"}, "max_age_days"),
        ({"min_age_days": "-3"}, "query.min_age_days"),
        ({"min_age_days": "soon"}, "query.min_age_days"),
    ],
)
def test_bad_filters_are_422_naming_the_field(client, community, params, field):
    response = client.get(f"/maps/communities/{community}/heatmap", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field


def test_a_bad_token_is_refused_not_ignored(client, community):
    response = client.get(
        f"/maps/communities/{community}/heatmap", headers={"Authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401


def test_city_map_pages(client):
    for bins in ("grid", "hex"):
        response = client.get("/maps/city", params={"bins": bins})
        assert response.status_code == 200, response.text
        assert external_urls(response.text) == [] and "L.heatLayer" not in response.text
        assert len(response.content) < 300_000
    bad = client.get("/maps/city", params={"bins": "squares"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "query.bins"


def test_tile_template_from_settings(tiled_client, community):
    html = tiled_client.get(f"/maps/communities/{community}/heatmap").text
    assert "http://tiles.lan/{z}/{x}/{y}.png" in html and "intranet tiles" in html


def test_vendored_assets_are_served(client):
    for path in (
        "leaflet/leaflet.js",
        "leaflet/leaflet.css",
        "leaflet/images/marker-icon.png",
        "leaflet.heat/leaflet-heat.js",
        "leaflet.markercluster/leaflet.markercluster.js",
        "leaflet.markercluster/MarkerCluster.Default.css",
        "jquery/jquery.min.js",
    ):
        response = client.get(f"/static/vendor/{path}")
        assert response.status_code == 200, path
        assert response.content == (VENDOR_DIR / path).read_bytes()
