"""The case API end to end: the Chibi canal case, the other paths, every refusal, idempotency."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta

import geopandas as gpd
import pytest
from PIL import Image
from pyproj import Geod

from api.schemas import CaseList, CaseOut, CasePublic
from tests.conftest import FIXTURES, REPO, auth

PHOTOS = FIXTURES / "photos"
GEOD = Geod(ellps="WGS84")
CANAL = gpd.read_file(REPO / "data" / "chibi" / "layers.geojson").pipe(
    lambda f: f.loc[f.name == "北渠", "geometry"].iloc[0]
)


def canal_point(fraction: float = 0.5, north_m: float = 10.0) -> tuple[float, float]:
    """A point north_m metres north of the canal, `fraction` along it."""
    mid = CANAL.interpolate(fraction, normalized=True)
    lon, lat, _ = GEOD.fwd(mid.x, mid.y, 0, north_m)
    return lon, lat


def report(client, who="inspector", category="E0102", fraction=0.5, north_m=10.0, **extra):
    """File a JSON report near the canal and return the case."""
    lon, lat = canal_point(fraction, north_m)
    body = {
        "category": category,
        "description": "渠边有少量垃圾",
        "lon": lon,
        "lat": lat,
        **extra,
    }
    response = client.post("/api/v1/cases", json=body, headers=auth(client, who))
    assert response.status_code == 201, response.text
    return CaseOut.model_validate(response.json())


def do(client, case_id, action, who, expect=200, files=None, **fields):
    """Apply an action; return the response JSON."""
    url = f"/api/v1/cases/{case_id}/actions/{action}"
    if files:
        response = client.post(url, data=fields, files=files, headers=auth(client, who))
    else:
        response = client.post(url, json=fields, headers=auth(client, who))
    assert response.status_code == expect, response.text
    return response.json()


def after_photo():
    return [("photos", ("after.jpg", (PHOTOS / "canal_after.jpg").read_bytes(), "image/jpeg"))]


def to_dispatched(client, **kwargs) -> CaseOut:
    case = report(client, **kwargs)
    do(client, case.id, "verify", "operator")
    do(client, case.id, "file", "operator")
    do(client, case.id, "dispatch", "dispatcher")
    return case


def test_the_chibi_canal_case_end_to_end(case_client):
    client = case_client
    photo = (PHOTOS / "canal_report.jpg").read_bytes()
    response = client.post(
        "/api/v1/cases",
        data={"category": "E0102", "description": "北渠边有少量垃圾", "channel": "inspector"},
        files=[("photos", ("canal.jpg", photo, "image/jpeg"))],
        headers=auth(client, "inspector"),
    )
    assert response.status_code == 201, response.text
    case = CaseOut.model_validate(response.json())
    # Located from the photo's EXIF GPS and routed to the canal's owner, not to sanitation.
    assert case.routing["located_by"] == "photo EXIF GPS"
    assert case.unit_code == "WATER"
    assert any(step["rule"] == "layer_override" for step in case.routing["rules"])
    assert case.state == "reported" and case.grid_code and case.community_code
    public_url = case.photos[0].url
    public = Image.open(io.BytesIO(client.get(public_url).content))
    assert not public.getexif() and "exif" not in public.info
    original_url = f"/api/v1/cases/{case.id}/photos/{case.photos[0].id}/original"
    original = client.get(original_url, headers=auth(client, "operator"))
    assert original.status_code == 200 and original.content == photo
    assert client.get(original_url, headers=auth(client, "inspector")).status_code == 403

    do(client, case.id, "verify", "operator")
    do(client, case.id, "file", "operator", note="值班长批准立案")
    dispatched = do(client, case.id, "dispatch", "dispatcher")
    assert dispatched["unit_code"] == "WATER" and dispatched["deadline_at"]
    do(client, case.id, "sign", "unit_handler")
    handled = do(client, case.id, "handle", "unit_handler", files=after_photo(), note="已清理")
    assert [p["purpose"] for p in handled["photos"]] == ["report", "after"]
    do(client, case.id, "check_pass", "inspector")
    closed = CaseOut.model_validate(do(client, case.id, "close", "operator"))
    assert closed.state == "closed" and closed.closed_at is not None
    steps = [(e.action, e.from_state, e.to_state) for e in closed.events]
    assert steps == [
        ("report", None, "reported"),
        ("verify", "reported", "verified"),
        ("file", "verified", "filed"),
        ("dispatch", "filed", "dispatched"),
        ("sign", "dispatched", "signed"),
        ("handle", "signed", "handled"),
        ("check_pass", "handled", "checked"),
        ("close", "checked", "closed"),
    ]
    assert closed.allowed_actions == []
    # The reporter follows it by tracking code; the public view hides people and contacts.
    tracked = client.get(f"/api/v1/track/{closed.tracking_code}")
    assert tracked.status_code == 200
    view = CasePublic.model_validate(tracked.json())
    assert view.state == "closed" and len(view.photos) == 2
    assert all(e.actor is None and e.note is None for e in view.events)
    assert "reporter_contact" not in tracked.json()
    # No free text and no doorstep: the description waits for moderation, the point is rounded.
    assert view.description is None
    assert view.lon == round(view.lon, 3) and view.lat == round(view.lat, 3)
    assert abs(view.lon - closed.lon) < 0.0006 and abs(view.lat - closed.lat) < 0.0006


def test_return_and_redispatch(case_client):
    client = case_client
    case = to_dispatched(client)
    do(client, case.id, "return", "unit_handler", expect=422)  # a return needs a reason
    returned = do(client, case.id, "return", "unit_handler", reason="不属于本单位: 城管负责")
    assert returned["state"] == "returned"
    do(client, case.id, "redispatch", "dispatcher", expect=422)  # needs a unit
    do(client, case.id, "redispatch", "dispatcher", unit="WATER", expect=422)  # not the same
    again = do(client, case.id, "redispatch", "dispatcher", unit="CGJ")
    assert again["state"] == "dispatched" and again["unit_code"] == "CGJ"
    # The water bureau no longer holds it; the city-management handler signs for it.
    assert client.post(
        f"/api/v1/cases/{case.id}/actions/sign", json={}, headers=auth(client, "unit_handler")
    ).status_code in (403, 404)
    assert do(client, case.id, "sign", "handler_cgj")["state"] == "signed"


def test_rework_after_a_failed_check(case_client):
    client = case_client
    case = to_dispatched(client)
    do(client, case.id, "sign", "unit_handler")
    do(client, case.id, "handle", "unit_handler", files=after_photo())
    do(client, case.id, "check_fail", "inspector", expect=422)
    rework = do(client, case.id, "check_fail", "inspector", reason="现场仍有垃圾")
    assert rework["state"] == "rework"
    do(client, case.id, "handle", "unit_handler", files=after_photo())
    do(client, case.id, "check_pass", "inspector")
    assert do(client, case.id, "close", "operator")["state"] == "closed"


def test_extensions_are_approved_at_most_twice_each_adding_one_limit(case_client):
    client = case_client
    case = to_dispatched(client)
    due = datetime.fromisoformat(
        client.get(f"/api/v1/cases/{case.id}", headers=auth(client, "operator")).json()["deadline_at"]
    )
    do(client, case.id, "approve_extension", "operator", expect=409)  # nothing requested
    deadlines = [due]
    for _ in range(2):
        do(client, case.id, "request_extension", "unit_handler", reason="需要清淤设备")
        extended = do(client, case.id, "approve_extension", "operator")
        deadlines.append(datetime.fromisoformat(extended["deadline_at"]))
    assert extended["extensions"] == 2
    assert deadlines[0] < deadlines[1] < deadlines[2]
    third = client.post(
        f"/api/v1/cases/{case.id}/actions/request_extension",
        json={"reason": "再延"},
        headers=auth(client, "unit_handler"),
    )
    assert third.status_code == 409 and "2 extensions" in third.json()["detail"][0]["message"]


def test_parking_stops_the_clock(case_client):
    client = case_client
    case = to_dispatched(client)
    do(client, case.id, "sign", "unit_handler")
    do(client, case.id, "park", "operator", expect=422)
    parked = do(client, case.id, "park", "operator", reason="等待资金")
    assert parked["state"] == "parked" and parked["parked_at"] and not parked["overdue"]
    assert do(client, case.id, "sign", "unit_handler", expect=409)
    resumed = do(client, case.id, "unpark", "operator")
    assert resumed["state"] == "signed" and resumed["parked_at"] is None
    assert resumed["events"][-1]["data"]["parked_hours"] is not None


def test_void_supervise_and_join(case_client):
    client = case_client
    case = to_dispatched(client)
    supervised = do(client, case.id, "supervise", "operator", reason="市领导督办")
    assert supervised["supervised_at"] is not None
    do(client, case.id, "join", "dispatcher", expect=422)  # join whom?
    joined = do(client, case.id, "join", "dispatcher", units=["CGJ", "ZJJ"])
    assert {"CGJ", "ZJJ"} <= set(joined["cooperating_unit_codes"])
    # A cooperating unit sees the case, but only the primary unit signs for it.
    assert client.get(f"/api/v1/cases/{case.id}", headers=auth(client, "handler_cgj")).status_code == 200
    do(client, case.id, "sign", "handler_cgj", expect=403)
    voided = do(client, case.id, "void", "operator", reason="重复录入")
    assert voided["state"] == "voided" and voided["allowed_actions"] == []


def test_claim_board(case_client):
    client = case_client
    case = report(client, category="E0102", fraction=0.2)
    do(client, case.id, "verify", "operator")
    do(client, case.id, "file", "operator")
    assert do(client, case.id, "publish", "operator")["state"] == "published"
    claimed = do(client, case.id, "claim", "resident2")
    assert claimed["state"] == "claimed"
    do(client, case.id, "close_off", "resident", expect=404, files=after_photo())  # not theirs
    do(client, case.id, "close_off", "operator", expect=403, files=after_photo())
    do(client, case.id, "close_off", "resident2", expect=422)  # needs an after-photo
    assert do(client, case.id, "close_off", "resident2", files=after_photo())["state"] == "closed"


def test_duplicates_are_suggested_and_can_be_merged(case_client):
    client = case_client
    first = report(client, category="E0105", fraction=0.6, north_m=5)
    second = report(client, category="E0105", fraction=0.6, north_m=25)
    detail = client.get(f"/api/v1/cases/{second.id}", headers=auth(client, "operator")).json()
    assert [d["tracking_code"] for d in detail["duplicates"]] == [first.tracking_code]
    assert 15 < detail["duplicates"][0]["distance_m"] < 25
    other_category = report(client, category="E0106", fraction=0.6, north_m=15)
    assert other_category.duplicates == []
    far = report(client, category="E0105", fraction=0.6, north_m=200)
    assert far.duplicates == []
    do(client, second.id, "merge", "operator", expect=422)  # into which?
    merged = do(client, second.id, "merge", "operator", into=first.tracking_code)
    assert merged["state"] == "merged" and merged["merged_into_id"] == first.id
    assert merged["duplicates"][0]["status"] == "merged"


def test_an_idempotent_retry_returns_the_same_case(case_client):
    client = case_client
    lon, lat = canal_point(0.4)
    key = str(uuid.uuid4())
    body = {"category": "E0102", "lon": lon, "lat": lat, "description": "retry me"}
    headers = {**auth(client, "inspector"), "Idempotency-Key": key}
    first = client.post("/api/v1/cases", json=body, headers=headers)
    again = client.post("/api/v1/cases", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    listed = client.get("/api/v1/cases", params={"page_size": 500}, headers=auth(client, "operator")).json()
    assert sum(1 for c in listed["items"] if c["description"] == "retry me") == 1
    changed = client.post("/api/v1/cases", json={**body, "description": "other"}, headers=headers)
    assert changed.status_code == 422
    assert changed.json()["detail"][0]["field"] == "Idempotency-Key"
    # Another account's identical key is its own.
    resident = client.post(
        "/api/v1/cases", json=body, headers={**auth(client, "resident"), "Idempotency-Key": key}
    )
    assert resident.status_code == 201 and resident.json()["id"] != first.json()["id"]


def test_an_unroutable_report_is_kept_for_triage(case_client):
    client = case_client
    response = client.post(
        "/api/v1/cases",
        json={"category": "E0102", "lon": 113.5, "lat": 29.5},
        headers=auth(client, "operator"),
    )
    assert response.status_code == 201
    case = response.json()
    assert case["unit_code"] is None and case["routing"]["status"] == "unroutable"
    triage = client.get("/api/v1/cases", params={"triage": True}, headers=auth(client, "operator")).json()
    assert case["id"] in [c["id"] for c in triage["items"]]
    refused = client.post(
        f"/api/v1/cases/{case['id']}/actions/verify", json={}, headers=auth(client, "operator")
    )
    assert refused.status_code == 200
    client.post(f"/api/v1/cases/{case['id']}/actions/file", json={}, headers=auth(client, "operator"))
    no_unit = client.post(
        f"/api/v1/cases/{case['id']}/actions/dispatch", json={}, headers=auth(client, "dispatcher")
    )
    assert no_unit.status_code == 422 and no_unit.json()["detail"][0]["field"] == "unit"


@pytest.mark.parametrize(
    ("body", "files", "field", "words"),
    [
        ({"category": "E0102"}, None, "location", "no location"),
        ({"category": "E0102", "lon": 113.9}, None, "lat", "both"),
        ({"category": "Z9999", "lon": 113.9, "lat": 29.72}, None, "category", "catalogue"),
        ({"lon": 113.9, "lat": 29.72}, None, "category", "required"),
        ({"category": "E0102", "lon": 29.72, "lat": 113.9}, None, "lat", "swapped"),
        ({"category": "E0102", "lon": 113.9, "lat": 29.72, "crs": "mars"}, None, "crs", "wgs84"),
        (
            {"category": "E0102", "lon": 113.9, "lat": 29.72, "channel": "pigeon"},
            None,
            "channel",
            "inspector",
        ),
        ({"category": "E0102"}, [("photos", ("x.jpg", b"not an image", "image/jpeg"))], "photos", ""),
        (
            {"category": "E0102"},
            [("photos", ("n.jpg", (PHOTOS / "no_gps.jpg").read_bytes(), "image/jpeg"))],
            "location",
            "no location",
        ),
        (
            {"category": "E0102"},
            [("photos", ("b.png", (PHOTOS / "bomb_400mp.png").read_bytes(), "image/png"))],
            "photos",
            "pixels",
        ),
        (
            {"category": "E0102"},
            [("photos", (f"{i}.jpg", (PHOTOS / "no_gps.jpg").read_bytes(), "image/jpeg")) for i in range(7)],
            "photos",
            "6",
        ),
        ({"category": "E0102"}, [("picture", ("a.jpg", b"x", "image/jpeg"))], "picture", "photos"),
    ],
)
def test_bad_reports_get_a_4xx_naming_the_field(case_client, body, files, field, words):
    client = case_client
    if files:
        response = client.post("/api/v1/cases", data=body, files=files, headers=auth(client, "inspector"))
    else:
        response = client.post("/api/v1/cases", json=body, headers=auth(client, "inspector"))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["field"] == field
    assert words in detail["message"]


def test_sign_in_and_refusals_name_the_reason(case_client):
    client = case_client
    assert client.post("/api/v1/cases", json={}).status_code == 401
    bad = client.post("/api/v1/auth/token", data={"username": "operator", "password": "nope1234"})
    assert bad.status_code == 401 and bad.json()["detail"][0]["field"] == "password"
    nobody = client.post("/api/v1/auth/token", data={"username": "ghost", "password": "x" * 9})
    assert nobody.status_code == 401
    forged = client.get("/api/v1/cases", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401 and forged.json()["detail"][0]["field"] == "authorization"
    me = client.get("/api/v1/auth/me", headers=auth(client, "unit_handler")).json()
    assert me == {"username": "unit_handler", "role": "unit_handler", "unit_code": "WATER", "grid_codes": []}
    case = report(client)
    wrong_state = client.post(
        f"/api/v1/cases/{case.id}/actions/close", json={}, headers=auth(client, "operator")
    )
    assert wrong_state.status_code == 409
    message = wrong_state.json()["detail"][0]["message"]
    assert "is reported" in message and "allowed now: verify, reject" in message
    wrong_role = client.post(
        f"/api/v1/cases/{case.id}/actions/verify", json={}, headers=auth(client, "planner")
    )
    assert (
        wrong_role.status_code == 403
        and "planner may not verify" in (wrong_role.json()["detail"][0]["message"])
    )
    unknown = client.post(
        f"/api/v1/cases/{case.id}/actions/teleport", json={}, headers=auth(client, "operator")
    )
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["field"] == "action"
    stale = client.post(
        f"/api/v1/cases/{case.id}/actions/verify",
        json={"expected_version": case.version + 5},
        headers=auth(client, "operator"),
    )
    assert stale.status_code == 409 and stale.json()["detail"][0]["field"] == "expected_version"
    missing = client.get("/api/v1/cases/99999999", headers=auth(client, "operator"))
    assert missing.status_code == 404


def test_lists_filter_and_respect_who_may_see(case_client):
    client = case_client
    mine = report(client, who="resident", fraction=0.45)
    to_dispatched(client, fraction=0.55)
    everything = CaseList.model_validate(
        client.get("/api/v1/cases", params={"page_size": 500}, headers=auth(client, "planner")).json()
    )
    assert everything.total >= 2
    water = CaseList.model_validate(
        client.get("/api/v1/cases", params={"page_size": 500}, headers=auth(client, "unit_handler")).json()
    )
    assert water.items and all("WATER" in ([c.unit_code] + c.cooperating_unit_codes) for c in water.items)
    cgj = client.get("/api/v1/cases", params={"page_size": 500}, headers=auth(client, "handler_cgj")).json()
    assert all(c["unit_code"] == "CGJ" or "CGJ" in c["cooperating_unit_codes"] for c in cgj["items"])
    far = client.get("/api/v1/cases", headers=auth(client, "inspector_far")).json()
    assert far["total"] == 0
    resident = client.get("/api/v1/cases", headers=auth(client, "resident")).json()
    assert {c["tracking_code"] for c in resident["items"]} >= {mine.tracking_code}
    assert all(c["reported_by"] == "resident" for c in resident["items"])
    other = client.get(f"/api/v1/cases/{mine.id}", headers=auth(client, "resident2"))
    assert other.status_code == 404
    # Filters: state, area (a community code is a prefix of its grids), bbox, category, window.
    community = mine.community_code
    by_area = client.get(
        "/api/v1/cases", params={"area": community, "page_size": 500}, headers=auth(client, "operator")
    ).json()
    assert by_area["items"] and all(c["grid_code"].startswith(community) for c in by_area["items"])
    lon, lat = mine.lon, mine.lat
    box = f"{lon - 0.0005},{lat - 0.0005},{lon + 0.0005},{lat + 0.0005}"
    boxed = client.get("/api/v1/cases", params={"bbox": box}, headers=auth(client, "operator")).json()
    assert mine.id in [c["id"] for c in boxed["items"]]
    dispatched = client.get(
        "/api/v1/cases", params={"state": "dispatched"}, headers=auth(client, "operator")
    ).json()
    assert dispatched["items"] and all(c["state"] == "dispatched" for c in dispatched["items"])
    later = (datetime.now().astimezone() + timedelta(days=1)).isoformat()
    none = client.get(
        "/api/v1/cases", params={"reported_from": later}, headers=auth(client, "operator")
    ).json()
    assert none["total"] == 0
    overdue = client.get("/api/v1/cases", params={"overdue": True}, headers=auth(client, "operator")).json()
    assert all(c["overdue"] for c in overdue["items"])
    page = client.get(
        "/api/v1/cases", params={"page_size": 1, "page": 2}, headers=auth(client, "operator")
    ).json()
    assert len(page["items"]) == 1 and page["page"] == 2
    bad_box = client.get("/api/v1/cases", params={"bbox": "1,2,3"}, headers=auth(client, "operator"))
    assert bad_box.status_code == 422 and bad_box.json()["detail"][0]["field"] == "bbox"


def test_a_token_works_the_moment_it_is_issued(settings, cases_store):
    """The session commits before the response goes out: no window where a reply is unsaved."""
    import threading

    import httpx
    import uvicorn

    from api.app import create_app
    from geo.demo import DEMO_PASSWORD
    from geo.store.cluster import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, store=cases_store), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                import time

                time.sleep(0.05)
        # Separate connections, as a browser or phone would use: the second request must not
        # overtake the first one's commit.
        with httpx.Client(base_url=base) as signing, httpx.Client(base_url=base) as asking:
            statuses = []
            for _ in range(40):
                token = signing.post(
                    "/api/v1/auth/token", data={"username": "operator", "password": DEMO_PASSWORD}
                ).json()["access_token"]
                statuses.append(
                    asking.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
                )
        assert statuses == [200] * 40
    finally:
        server.should_exit = True
        thread.join(timeout=10)
