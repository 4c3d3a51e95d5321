"""The 12345 call-taker's desk and the callback (回访) list, through the pages' forms."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from geo.demo import DEMO_PASSWORD
from geo.store.models import Case, CaseCallback, CaseFollower, CaseRating
from tests.conftest import auth, rolled_back, work_to_closing

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CANAL = (113.9002, 29.7250)


def desk_as(app, username: str) -> TestClient:
    """A browser-like client signed in to the desks (the app's lifespan is the shared client's)."""
    client = TestClient(app)
    token = CSRF.search(client.get("/desk/sign-in").text).group(1)  # type: ignore[union-attr]
    signed = client.post(
        "/desk/sign-in", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 200, signed.text
    return client


def csrf(client: TestClient, path: str) -> str:
    return CSRF.search(client.get(path).text).group(1)  # type: ignore[union-attr]


def test_the_call_taker_files_a_call_reads_the_code_back_and_the_callback_records_the_answer(
    case_client, cases_store
):
    desk = desk_as(case_client.app, "operator")
    form = desk.get("/desk/hotline")
    assert form.status_code == 200 and "来电号码" in form.text and "事件 › 市容环境" in form.text
    filed = desk.post(
        "/desk/hotline",
        data={
            "csrf_token": csrf(desk, "/desk/hotline"),
            "phone": "0715-5201234",
            "words": "北渠边漂着一片垃圾，很臭",
            "category": "E0106",
            "lon": str(CANAL[0]),
            "lat": str(CANAL[1]),
        },
    )
    assert filed.status_code == 200, filed.text
    code = re.search(r'id="filed-code">(GC\w+)<', filed.text).group(1)  # type: ignore[union-attr]
    assert "请把查询码读给来电人" in filed.text
    with rolled_back(cases_store) as session:
        case = session.scalar(select(Case).where(Case.tracking_code == code))
        assert case.channel == "hotline_12345" and case.reporter_contact == "07155201234"
        assert case.reported_by == "operator" and case.unit_code == "WATER"
        follower = session.scalar(select(CaseFollower).where(CaseFollower.case_id == case.id))
        assert (follower.kind, follower.address, follower.is_reporter) == ("phone", "07155201234", True)
        case_id = case.id

    work_to_closing(cases_store, case_client.app.state.cases, case_id)
    listed = desk.get("/desk/callback")
    assert listed.status_code == 200 and code in listed.text and "07155201234" in listed.text
    not_reached = desk.post(
        f"/desk/callback/{code}", data={"csrf_token": csrf(desk, "/desk/callback"), "reached": "no"}
    )
    assert not_reached.status_code == 200 and "已回访 1 次未接通" in not_reached.text
    reached = desk.post(
        f"/desk/callback/{code}",
        data={
            "csrf_token": csrf(desk, "/desk/callback"),
            "reached": "yes",
            "rating": "basically_satisfied",
            "comment": "处理得挺快",
        },
    )
    assert reached.status_code == 200 and f'data-code="{code}"' not in reached.text
    with rolled_back(cases_store) as session:
        rating = session.get(CaseRating, case_id)
        assert (rating.rating, rating.source, rating.comment) == (
            "basically_satisfied",
            "callback",
            "处理得挺快",
        )
        calls = session.scalars(select(CaseCallback).where(CaseCallback.case_id == case_id)).all()
        assert [c.reached for c in calls] == [False, True] and {c.by for c in calls} == {"operator"}
        assert session.get(Case, case_id).review_requested_at is None
    totals = case_client.get(
        "/api/v1/stats/satisfaction", params={"group_by": "unit"}, headers=auth(case_client, "planner")
    ).json()
    water = next(g for g in totals["groups"] if g["unit"] == "WATER")
    assert water["basically_satisfied"] >= 1


def test_refusals_on_the_hotline_and_callback_desks_are_pages(case_client):
    handler = desk_as(case_client.app, "unit_handler")
    assert handler.get("/desk/hotline").status_code == 403
    assert handler.get("/desk/callback").status_code == 403
    desk = desk_as(case_client.app, "operator")
    token = csrf(desk, "/desk/hotline")
    missing = desk.post("/desk/hotline", data={"csrf_token": token, "phone": "", "category": "E0106"})
    assert missing.status_code == 422 and "信息不完整" in missing.text
    no_place = desk.post(
        "/desk/hotline", data={"csrf_token": token, "phone": "13800000000", "category": "E0106"}
    )
    assert no_place.status_code == 422 and "请在地图上选择位置" in no_place.text
    unsaid = desk.post("/desk/callback/GC000NONE", data={"csrf_token": csrf(desk, "/desk/callback")})
    assert unsaid.status_code == 422
