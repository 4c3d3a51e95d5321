"""Issue 11's access findings: the claim board leaks nothing, channels by role, one pending request."""

from __future__ import annotations

import pytest

from tests.api.test_cases import after_photo, do, report, to_dispatched
from tests.conftest import auth


def test_claim_on_a_case_not_on_the_board_looks_like_no_case(case_client):
    """Before: a resident's claim on any case answered 409 naming its tracking code and state."""
    client = case_client
    case = report(client, fraction=0.3)  # reported, not published
    response = client.post(
        f"/api/v1/cases/{case.id}/actions/claim", json={}, headers=auth(client, "resident2")
    )
    assert response.status_code == 404, response.text
    assert case.tracking_code not in response.text and "reported" not in response.text


def test_a_volunteer_who_claims_a_task_sees_the_task_not_the_reporter(case_client):
    client = case_client
    case = report(client, fraction=0.35, reporter_contact="13900000000")
    for action in ("verify", "file", "publish"):
        do(client, case.id, action, "operator")
    claimed = do(client, case.id, "claim", "resident2")
    assert claimed["state"] == "claimed"
    assert claimed["reporter_contact"] is None and claimed["reported_by"] is None
    seen = client.get(f"/api/v1/cases/{case.id}", headers=auth(client, "resident2")).json()
    assert seen["reporter_contact"] is None and seen["reported_by"] is None
    # The centre still sees who reported it and how to call back.
    staff = client.get(f"/api/v1/cases/{case.id}", headers=auth(client, "operator")).json()
    assert staff["reporter_contact"] == "13900000000" and staff["reported_by"] == "inspector"
    assert do(client, case.id, "close_off", "resident2", files=after_photo())["state"] == "closed"


@pytest.mark.parametrize(
    ("who", "channel", "status", "stored"),
    [
        ("resident", None, 201, "resident"),
        ("resident", "video_patrol", 403, None),
        ("resident", "inspector", 403, None),
        ("inspector", None, 201, "inspector"),
        ("inspector", "hotline_12345", 403, None),
        ("operator", None, 201, "hotline_12345"),
        ("operator", "video_patrol", 201, "video_patrol"),
        ("dispatcher", "referral", 201, "referral"),
    ],
)
def test_channels_are_set_by_role(case_client, who, channel, status, stored):
    from tests.api.test_cases import canal_point

    lon, lat = canal_point(0.4, 12)
    body = {"category": "E0102", "lon": lon, "lat": lat, **({"channel": channel} if channel else {})}
    response = case_client.post("/api/v1/cases", json=body, headers=auth(case_client, who))
    assert response.status_code == status, response.text
    if stored:
        assert response.json()["channel"] == stored
    else:
        detail = response.json()["detail"][0]
        assert detail["field"] == "channel" and channel in detail["message"]


def test_a_second_extension_request_while_one_waits_is_refused(case_client):
    client = case_client
    case = to_dispatched(client, fraction=0.45)
    do(client, case.id, "request_extension", "unit_handler", reason="需要清淤设备")
    again = do(client, case.id, "request_extension", "unit_handler", expect=409, reason="再申请")
    assert "waiting for approval" in again["detail"][0]["message"]
    events = client.get(f"/api/v1/cases/{case.id}", headers=auth(client, "operator")).json()["events"]
    assert [e["action"] for e in events].count("request_extension") == 1


def test_supervision_is_ordered_once(case_client):
    client = case_client
    case = to_dispatched(client, fraction=0.55)
    do(client, case.id, "supervise", "operator", reason="市领导督办")
    again = do(client, case.id, "supervise", "operator", expect=409, reason="再督办")
    assert "under supervision since" in again["detail"][0]["message"]
