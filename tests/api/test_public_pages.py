"""The residents' pages over HTTP: report without signing in, follow instead, track, rate; every
refusal a page that names the field and why; satisfaction in the stats API."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from api.app import create_app
from api.routes.public import COOKIE
from geo import public
from geo.demo import DEMO_PASSWORD
from geo.errors import InvalidInput
from geo.store.models import Case, CaseFollower, CaseRating
from tests.conftest import FIXTURES, auth, rolled_back, work_to_closing
from tests.sinks import mail_sink

CANAL = (113.9001, 29.7249)  # by the North Canal (北渠): water cases go to the water bureau
PHOTOS = FIXTURES / "photos"


@pytest.fixture
def client(case_client):
    """The app with the public rate limits forgotten before and after each test: every test
    client comes from one address, and the counts live in PostgreSQL (shared by every app on
    the test database)."""
    limits = (*case_client.app.state.public_limits, case_client.app.state.throttles.tracking_address)
    for limit in limits:
        limit.clear()
    yield case_client
    for limit in limits:
        limit.clear()


def token_of(client) -> str:
    """The public form token the landing page sets (cookie and hidden field)."""
    answer = client.get("/report")
    assert answer.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
    assert found and client.cookies.get(COOKIE) == found.group(1)
    return found.group(1)


def file_report(client, **fields) -> str:
    """File a public report by the form; the tracking code it went to."""
    form = {
        "csrf_token": token_of(client),
        "idempotency_key": uuid.uuid4().hex,
        "category": "E0106",
        "lon": str(CANAL[0]),
        "lat": str(CANAL[1]),
        "phone": "138 0000 1111",
        **fields,
    }
    answer = client.post("/report", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    found = re.match(r"/track/(GC\w+)\?new=1", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def refused(answer, status: int, field_words: str) -> None:
    """A refusal drawn as a page naming the field in words."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert 'id="error"' in answer.text and field_words in answer.text, answer.text


def test_the_landing_page_offers_reporting_tracking_and_fixed_problems_without_codes(client):
    page = client.get("/")
    assert page.status_code == 200
    assert (
        "我要上报问题" in page.text and 'action="/track"' in page.text and "附近最近解决的问题" in page.text
    )
    assert not re.search(r"GC\d{6}", page.text)  # no tracking code of anyone's case
    assert "Report a problem" in client.get("/?lang=en").text


def test_a_resident_reports_without_signing_in_and_a_resent_form_is_the_same_report(client, cases_store):
    key = uuid.uuid4().hex
    code = file_report(client, idempotency_key=key, email="res@example.org", description="渠里漂着垃圾")
    assert (
        file_report(client, idempotency_key=key, email="res@example.org", description="渠里漂着垃圾") == code
    )
    with rolled_back(cases_store) as session:
        case = session.scalar(select(Case).where(Case.tracking_code == code))
        assert case.channel == "resident" and case.reported_by == "public" and case.unit_code == "WATER"
        assert case.reporter_contact == "13800001111 / res@example.org"
        followers = session.scalars(select(CaseFollower).where(CaseFollower.case_id == case.id)).all()
        assert {(f.kind, f.address, f.is_reporter) for f in followers} == {
            ("phone", "13800001111", True),
            ("email", "res@example.org", True),
        }
    page = client.get(f"/track/{code}?new=1")
    assert page.status_code == 200 and code in page.text and "上报成功" in page.text
    assert "待受理" in page.text and "待指挥中心受理后派遣" in page.text
    assert "13800001111" not in page.text and "渠里漂着垃圾" not in page.text  # no contact, no free text


def test_open_reports_nearby_are_shown_without_codes_and_can_be_followed_instead(client, cases_store):
    code = file_report(client)
    with rolled_back(cases_store) as session:
        case_id = session.scalar(select(Case.id).where(Case.tracking_code == code))
    # ~10 m west of the report (other tests' open water cases lie east of it, by the canal: the
    # answer is the 5 nearest, and this one must be the nearest).
    nearby = client.get(
        "/api/v1/public/nearby", params={"lon": 113.9000, "lat": 29.7249, "category": "E0106"}
    )
    assert nearby.status_code == 200
    mine = [c for c in nearby.json() if c["id"] == case_id]
    assert mine and mine[0]["distance_m"] <= 30 and mine[0]["state"] == "reported"
    assert "tracking_code" not in mine[0] and mine[0]["lon"] == round(CANAL[0], 3)
    far = client.get("/api/v1/public/nearby", params={"lon": 113.93, "lat": 29.7249, "category": "E0106"})
    assert case_id not in [c["id"] for c in far.json()]

    followed = client.post(
        "/report/follow",
        data={"csrf_token": token_of(client), "case": str(case_id), "phone": "13900002222"},
    )
    assert followed.status_code == 200 and "已关注" in followed.text and code not in followed.text
    with rolled_back(cases_store) as session:
        followers = session.scalars(select(CaseFollower).where(CaseFollower.case_id == case_id)).all()
        assert ("phone", "13900002222", False) in {(f.kind, f.address, f.is_reporter) for f in followers}


def test_a_closed_case_is_rated_once_and_unsatisfied_asks_the_centre_to_review(client, cases_store):
    code = file_report(client)
    with rolled_back(cases_store) as session:
        case_id = session.scalar(select(Case.id).where(Case.tracking_code == code))
    planner = auth(client, "planner")
    before = client.get("/api/v1/stats", headers=planner).json()["totals"]
    work_to_closing(cases_store, client.app.state.cases, case_id)
    page = client.get(f"/track/{code}")
    assert "已结案" in page.text and "水利和湖泊局" in page.text and 'id="rate-form"' in page.text
    assert "处置后照片" in page.text  # the unit's after-photo, public copy
    assert "operator" not in page.text and "unit_handler" not in page.text  # no staff

    stats_before = client.get("/api/v1/stats", headers=planner).json()["totals"]
    rated = client.post(
        f"/track/{code}/rating",
        data={"csrf_token": token_of(client), "rating": "unsatisfied", "comment": "垃圾又回来了"},
        follow_redirects=False,
    )
    assert rated.status_code == 303
    page = client.get(f"/track/{code}")
    assert "不满意" in page.text and "垃圾又回来了" in page.text and "复核" in page.text
    with rolled_back(cases_store) as session:
        case = session.get(Case, case_id)
        assert case.review_requested_at is not None and case.state == "closed"
        assert session.get(CaseRating, case_id).source == "resident"
    again = client.post(f"/track/{code}/rating", data={"csrf_token": token_of(client), "rating": "satisfied"})
    refused(again, 409, "评价")
    # The duty chief's desk lists it for review (复核); the centre decides what follows.
    desk = TestClient(client.app)  # its own cookies; the app's lifespan is the shared client's
    form = desk.get("/desk/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    signed = desk.post(
        "/desk/sign-in", data={"username": "operator", "password": DEMO_PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 200, signed.text
    chief = desk.get("/desk/chief")
    assert "市民不满意、待复核的案件" in chief.text and code in chief.text
    operator = auth(client, "operator")
    assert client.get(f"/api/v1/cases/{case_id}", headers=operator).json()["review_requested_at"]

    # 回访率 and 满意率 join the indicators; the existing figures do not move with a rating.
    assert client.get("/api/v1/stats", headers=planner).json()["totals"] == stats_before
    assert before["closed"] + 1 == stats_before["closed"]
    answer = client.get("/api/v1/stats/satisfaction", params={"group_by": "unit"}, headers=planner)
    assert answer.status_code == 200, answer.text
    water = next(g for g in answer.json()["groups"] if g["unit"] == "WATER")
    assert water["name"] == "水利和湖泊局" and water["unsatisfied"] >= 1 and water["rated"] <= water["closed"]
    assert 0 <= water["callback_rate"] <= 1
    totals = answer.json()["totals"]
    assert totals["rated"] >= 1 and totals["satisfaction_rate"] is not None
    month = client.get("/api/v1/stats/satisfaction", params={"group_by": "month"}, headers=planner).json()
    assert [g["month"] for g in month["groups"]] and {d["name_zh"] for d in month["definitions"]} == {
        "回访率",
        "满意率",
    }
    assert client.get("/api/v1/stats/satisfaction", headers=auth(client, "resident")).status_code == 403
    refused_group = client.get("/api/v1/stats/satisfaction", params={"group_by": "grid"}, headers=planner)
    assert refused_group.status_code == 422 and refused_group.json()["detail"][0]["field"] == "group_by"


def test_a_case_that_is_not_closed_cannot_be_rated(client):
    code = file_report(client)
    refused(
        client.post(f"/track/{code}/rating", data={"csrf_token": token_of(client), "rating": "satisfied"}),
        409,
        "评价",
    )


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"category": ""}, "问题类别"),
        ({"category": "X9999"}, "问题类别"),
        ({"phone": "call me"}, "手机号"),
        ({"email": "not-an-address"}, "电子邮箱"),
        ({"lon": "", "lat": ""}, "问题位置"),
        ({"lon": "113.9", "lat": ""}, "问题位置"),
        ({"lon": "east"}, "经度"),
        ({"lon": "nan"}, "经度"),
        ({"csrf_token": "forged"}, "表单校验码"),
    ],
)
def test_every_refusal_of_the_report_form_is_a_page_naming_the_field(client, fields, words):
    form = {
        "csrf_token": token_of(client),
        "category": "E0106",
        "lon": str(CANAL[0]),
        "lat": str(CANAL[1]),
        **fields,
    }
    answer = client.post("/report", data=form)
    assert answer.status_code in (409, 422), answer.text
    refused(answer, answer.status_code, words)


def test_photos_beyond_the_limit_and_files_that_are_not_photos_are_refused_as_pages(client):
    photo = (PHOTOS / "no_gps.jpg").read_bytes()
    form = {"csrf_token": token_of(client), "category": "E0106", "lon": str(CANAL[0]), "lat": str(CANAL[1])}
    too_many = [("photos", (f"p{i}.jpg", photo, "image/jpeg")) for i in range(7)]
    refused(client.post("/report", data=form, files=too_many), 422, "照片")
    broken = [("photos", ("x.jpg", (PHOTOS / "not_an_image.jpg").read_bytes(), "image/jpeg"))]
    refused(client.post("/report", data=form, files=broken), 422, "照片")


def test_reports_are_rate_limited_per_address_and_per_phone_as_a_page(client):
    by_address, by_phone = client.app.state.public_limits
    for _ in range(by_phone.limit):
        by_phone.fail("13700000000")
    form = {
        "csrf_token": token_of(client),
        "category": "E0106",
        "lon": str(CANAL[0]),
        "lat": str(CANAL[1]),
        "phone": "13700000000",
    }
    answer = client.post("/report", data=form)
    refused(answer, 429, "手机号")
    assert int(answer.headers["Retry-After"]) > 0
    while by_address.count("testclient") < by_address.limit:
        by_address.fail("testclient")
    refused(client.post("/report", data={**form, "phone": ""}), 429, "网络地址")


def test_unknown_codes_and_paths_on_the_public_pages_are_pages(client, cases_store):
    with rolled_back(cases_store) as session:  # an open case to follow (case 1 may be closed by now)
        open_id = session.scalar(select(Case.id).where(Case.tracking_code == file_report(client)))
    refused(client.get("/track/GC000000NOSUCH"), 404, "查询码")
    refused(client.get("/track?code="), 422, "查询码")
    refused(client.get("/track?code=<script>"), 422, "查询码")
    refused(client.get("/report/nothing-here"), 404, "页面地址")
    refused(
        client.post("/report/follow", data={"csrf_token": token_of(client), "case": "abc"}),
        422,
        "要关注的问题",
    )
    refused(
        client.post(
            "/report/follow", data={"csrf_token": token_of(client), "case": str(open_id), "phone": ""}
        ),
        422,
        "手机号",
    )


def test_the_report_page_places_its_pin_from_a_photos_exif(client):
    with (PHOTOS / "canal_report.jpg").open("rb") as photo:
        at = client.post("/api/v1/public/photo-location", files={"photo": ("p.jpg", photo, "image/jpeg")})
    assert (
        at.status_code == 200
        and abs(at.json()["lon"] - 113.9) < 1e-4
        and abs(at.json()["lat"] - 29.7249) < 1e-4
    )
    with (PHOTOS / "no_gps.jpg").open("rb") as photo:
        none = client.post("/api/v1/public/photo-location", files={"photo": ("p.jpg", photo, "image/jpeg")})
    assert none.json() == {"lon": None, "lat": None}
    with (PHOTOS / "not_an_image.jpg").open("rb") as photo:
        bad = client.post("/api/v1/public/photo-location", files={"photo": ("p.jpg", photo, "image/jpeg")})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "photos"


def test_a_phone_number_can_be_required_by_the_settings():
    report = public.PublicReportIn(category="E0106", lon=CANAL[0], lat=CANAL[1])
    with pytest.raises(InvalidInput) as refusal:
        public.as_report(report, "required")
    assert refusal.value.field == "phone"
    intake, phone, email = public.as_report(report, "optional")
    assert intake.reporter_contact is None and phone is None and email is None


def test_a_case_action_through_the_api_sends_the_notice_at_once(settings, cases_store, tmp_path):
    """The worker's regular look is 10 minutes away: the action's own nudge sends the notice."""
    with mail_sink() as sink:
        app = create_app(
            settings.model_copy(
                update={
                    "state_dir": tmp_path,
                    "smtp_host": "127.0.0.1",
                    "smtp_port": sink.port,
                    "notice_seconds": 600,
                }
            ),
            store=cases_store,
        )
        with TestClient(app) as client:
            code = file_report(client, phone="", email="nudged@example.org")
            answer = client.post(f"/api/v1/cases/{code}/actions/verify", headers=auth(client, "operator"))
            assert answer.status_code == 200, answer.text
            (notice,) = sink.wait_for(1, to="nudged@example.org")
        assert "已受理" in notice.get_content()


def test_places_are_found_by_part_of_their_name_with_a_point_inside_each(client, cases_store):
    """地名查询: streets, communities, grids, compounds and the named layers, from the database."""
    answer = client.get("/api/v1/places", params={"q": "新风"})
    assert answer.status_code == 200
    found = answer.json()
    assert found[0]["name"] == "新风社区" and found[0]["kind"] == "community"
    assert {p["kind"] for p in found} >= {"community", "grid"}
    assert all("新风" in p["name"] for p in found)
    canal = client.get("/api/v1/places", params={"q": "北渠"}).json()
    assert canal[0]["name"] == "北渠" and canal[0]["kind"] == "river_lake"
    compound = client.get("/api/v1/places", params={"q": "幸福花园"}).json()[0]
    assert compound["kind"] == "compound" and compound["within"]
    w, s, e, n = compound["bbox"]
    assert w <= compound["lon"] <= e and s <= compound["lat"] <= n
    assert compound["outline"]["type"] in ("Polygon", "MultiPolygon")
    with rolled_back(cases_store) as session:
        inside = session.execute(
            text(
                "SELECT bool_or(ST_Covers(geom, ST_SetSRID(ST_Point(:lon, :lat), 4326))) FROM area "
                "WHERE level = 'compound' AND name = '幸福花园'"
            ),
            {"lon": compound["lon"], "lat": compound["lat"]},
        ).scalar()
    assert inside
    # Wildcards typed by a person are letters, not patterns; a name is asked for, at most 40 long.
    assert client.get("/api/v1/places", params={"q": "%"}).json() == []
    assert client.get("/api/v1/places", params={"q": "_"}).json() == []
    empty = client.get("/api/v1/places", params={"q": "  "})
    assert empty.status_code == 422 and "q" in empty.text
    assert client.get("/api/v1/places", params={"q": "长" * 41}).status_code == 422
