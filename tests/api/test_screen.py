"""The big screen's live feeds need its kiosk key or a staff sign-in; the public view is moderated."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.test_cases import report
from tests.conftest import auth

FEEDS = ["summary", "latest", "units", "live-cases"]


@pytest.fixture(scope="module")
def key(case_client) -> str:
    return case_client.app.state.screen_keys[0]


@pytest.mark.parametrize("feed", FEEDS)
def test_feeds_refuse_anyone_but_the_screen_and_staff(case_client, key, feed):
    """Before: without signing in, live-cases listed every open case's tracking code."""
    url = f"/api/v1/dashboard/{feed}"
    anonymous = case_client.get(url)
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"][0]["field"] == "screen_key"
    assert case_client.get(url, headers={"X-Screen-Key": "not-the-key"}).status_code == 401
    assert case_client.get(url, headers=auth(case_client, "resident")).status_code == 401
    assert case_client.get(url, headers=auth(case_client, "unit_handler")).status_code == 401
    assert case_client.get(url, headers={"X-Screen-Key": key}).status_code == 200
    for staff in ("operator", "dispatcher", "planner", "admin"):
        assert case_client.get(url, headers=auth(case_client, staff)).status_code == 200


def test_grid_boundaries_stay_public(case_client):
    assert case_client.get("/api/v1/dashboard/grids").status_code == 200


def test_a_screen_is_connected_once_with_its_key(settings, cases_store, tmp_path):
    app = create_app(settings.model_copy(update={"state_dir": tmp_path}), store=cases_store)
    with TestClient(app) as client:
        page = client.get("/command-center")
        assert page.status_code == 401 and "大屏接入" in page.text and 'name="key"' in page.text
        wrong = client.get("/command-center?key=nope")
        assert wrong.status_code == 401 and "接入密钥不正确" in wrong.text
        key = (tmp_path / "screen-key").read_text().strip()
        connected = client.get(f"/command-center?key={key}&lang=en", follow_redirects=False)
        assert connected.status_code == 303 and connected.headers["location"] == "/command-center?lang=en"
        cookie = connected.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        # The cookie alone now opens the screen and its feeds.
        client.cookies.set("gridcase_screen", key)
        assert client.get("/command-center").status_code == 200
        assert client.get("/api/v1/dashboard/live-cases").status_code == 200


def test_an_intranet_may_open_the_feeds_explicitly(settings, cases_store, tmp_path):
    opened = settings.model_copy(update={"state_dir": tmp_path, "screen_open": True})
    with TestClient(create_app(opened, store=cases_store)) as client:
        assert client.get("/api/v1/dashboard/live-cases").status_code == 200
        assert client.get("/command-center").status_code == 200


def test_configured_keys_replace_the_generated_one(settings, cases_store, tmp_path):
    keyed = settings.model_copy(update={"state_dir": tmp_path, "screen_keys": "wall-1, wall-2"})
    with TestClient(create_app(keyed, store=cases_store)) as client:
        for wall in ("wall-1", "wall-2"):
            assert client.get("/api/v1/dashboard/summary", headers={"X-Screen-Key": wall}).status_code == 200
    assert not (tmp_path / "screen-key").exists()


def test_the_landmarks_are_public_and_the_routing_reads_in_the_screens_language(case_client, key):
    places = case_client.get("/api/v1/dashboard/orientation")
    assert places.status_code == 200
    body = places.json()
    assert {f["properties"]["kind"] for f in body["layers"]["features"]} == {"river_lake", "road", "park"}
    assert "北渠" in {f["properties"]["name"] for f in body["layers"]["features"]}
    assert all(f["geometry"]["type"] == "Point" for f in body["communities"]["features"])
    grids = case_client.get("/api/v1/dashboard/grids").json()["features"]
    assert all(len(f["properties"]["label"]) == 2 for f in grids)  # where the screen writes a count
    code = report(case_client).tracking_code  # beside the North Canal (北渠)
    screen = {"X-Screen-Key": key}
    latest = {
        lang: next(
            c
            for c in case_client.get(f"/api/v1/dashboard/latest?limit=50&lang={lang}", headers=screen).json()
            if c["tracking_code"] == code
        )
        for lang in ("zh", "en")
    }
    zh, en = latest["zh"], latest["en"]
    assert any("专题责任区「北渠」" in text for text in zh["explanation"]), zh["explanation"]
    assert any("North Canal" in text or "北渠" in text for text in en["explanation"])
    assert not any("layer" in text for text in zh["explanation"])
