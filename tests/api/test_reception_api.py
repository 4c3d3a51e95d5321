"""The reception room and the public commitments over HTTP: the API, the pages' forms, the board."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from api.routes.commitments import BoardOut
from api.routes.reception import OverdueOut, RequestList, RequestOut
from geo.demo import DEMO_PASSWORD
from tests.conftest import AFTER_PHOTO, auth

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COMMUNITY = "421281003005"


def desk_as(app, username: str) -> TestClient:
    client = TestClient(app)
    token = CSRF.search(client.get("/desk/sign-in").text).group(1)  # type: ignore[union-attr]
    signed = client.post(
        "/desk/sign-in", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 200, signed.text
    return client


def test_register_follow_and_answer_through_the_api(case_client):
    staff = auth(case_client, "community_staff")
    late = (datetime.now(UTC) - timedelta(days=9)).isoformat()
    made = case_client.post(
        "/api/v1/reception/requests",
        json={
            "community_code": COMMUNITY,
            "kind": "help",
            "asked": "独居老人求助",
            "visitor": "李先生",
            "visitor_contact": "13900000000",
            "received_at": late,
        },
        headers=staff,
    )
    assert made.status_code == 201, made.text
    request = RequestOut.model_validate(made.json())
    assert request.overdue and request.state == "open" and request.visitor == "李先生"
    # The duty chief reads the overdue list, without who came; may not register.
    chief = auth(case_client, "operator")
    listed = RequestList.model_validate(
        case_client.get(
            "/api/v1/reception/requests", params={"list": "all", "community": COMMUNITY}, headers=chief
        ).json()
    )
    assert request.reference in {r.reference for r in listed.items}
    assert all(r.visitor is None and r.visitor_contact is None for r in listed.items)
    refused = case_client.post(
        "/api/v1/reception/requests",
        json={"community_code": COMMUNITY, "kind": "help", "asked": "x"},
        headers=chief,
    )
    assert refused.status_code == 403 and refused.json()["detail"][0]["field"] == "role"
    # The screen's feed has no names.
    screen = case_client.get("/api/v1/reception/overdue", params={"limit": 20}, headers=chief)
    feed = OverdueOut.model_validate(screen.json())
    assert feed.overdue >= 1 and "李先生" not in screen.text and "13900000000" not in screen.text
    assert case_client.get("/api/v1/reception/overdue").status_code == 401
    # Turned into a case (routed as usual), then answered.
    case = case_client.post(
        f"/api/v1/reception/requests/{request.id}/case", json={"category": "E0102"}, headers=staff
    )
    assert case.status_code == 200, case.text
    code = RequestOut.model_validate(case.json()).case_tracking_code
    assert code and case_client.get(f"/api/v1/track/{code}").status_code == 200
    done = case_client.post(
        f"/api/v1/reception/requests/{request.id}/answer", json={"answer": "已派人上门"}, headers=staff
    )
    answered = RequestOut.model_validate(done.json())
    assert answered.state == "answered" and answered.answered_on_time is False
    assert [f.kind for f in answered.follows] == ["case", "answer"]
    again = case_client.post(
        f"/api/v1/reception/requests/{request.id}/answer", json={"answer": "x"}, headers=staff
    )
    assert again.status_code == 409 and again.json()["detail"][0]["field"] == "request"


def test_bad_input_names_the_field(case_client):
    staff = auth(case_client, "community_staff")
    for body, field in [
        ({"community_code": "nope", "kind": "help", "asked": "x"}, "community_code"),
        ({"community_code": COMMUNITY, "kind": "gossip", "asked": "x"}, "kind"),
        ({"community_code": COMMUNITY, "kind": "help", "asked": "   "}, "asked"),
    ]:
        answer = case_client.post("/api/v1/reception/requests", json=body, headers=staff)
        assert answer.status_code == 422, answer.text
        assert field in str(answer.json()["detail"][0]["field"])
    assert case_client.get("/api/v1/reception/requests/999999999", headers=staff).status_code == 404
    stats = case_client.get("/api/v1/stats/reception", params={"level": "planet"}, headers=staff)
    assert stats.status_code == 422
    assert (
        case_client.get("/api/v1/stats/reception", headers=auth(case_client, "unit_handler")).status_code
        == 403
    )


def test_commitments_through_the_api_and_the_public_board(case_client):
    staff = auth(case_client, "community_staff")
    quarter = "2026Q4"
    ids = []
    for text in ("路灯不亮", "楼道杂物"):
        made = case_client.post(
            "/api/v1/commitments/problems",
            json={"community_code": COMMUNITY, "quarter": quarter, "source": "meeting", "description": text},
            headers=staff,
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    item = case_client.post(
        "/api/v1/commitments",
        json={
            "community_code": COMMUNITY,
            "quarter": quarter,
            "party_kind": "owners_committee",
            "party_name": "某小区业主委员会",
            "promise": "修好路灯",
            "due_on": "2026-12-20",
            "problem_ids": ids[:1],
        },
        headers=staff,
    )
    assert item.status_code == 201, item.text
    cid = item.json()["id"]
    assert (
        case_client.post(
            f"/api/v1/commitments/{cid}/solved", json={"note": "已更换"}, headers=staff
        ).status_code
        == 200
    )
    rated = case_client.post(
        f"/api/v1/commitments/{cid}/evaluations",
        json={"verdict": "basically_satisfied", "representative": "代表赵某"},
        headers=staff,
    )
    assert rated.json()["verdicts"] == {"basically_satisfied": 1}
    board = case_client.get(f"/api/v1/commitments/board/{COMMUNITY}", params={"quarter": quarter})
    parsed = BoardOut.model_validate(board.json())
    assert (parsed.collected, parsed.committed, parsed.solved, parsed.evaluated) == (2, 1, 1, 1)
    assert "赵某" not in board.text and "community_staff" not in board.text
    page = case_client.get(f"/community/{COMMUNITY}/board", params={"quarter": quarter})
    assert page.status_code == 200 and "修好路灯" in page.text and "赵某" not in page.text
    assert "已解决" in page.text and "基本满意 1" in page.text
    assert case_client.get("/community/nope/board").status_code == 404
    assert "text/html" in case_client.get("/community/nope/board").headers["content-type"]
    assert case_client.get(f"/community/{COMMUNITY}/board", params={"quarter": "2026Q9"}).status_code == 422
    assert case_client.get("/community").status_code == 200
    figures = case_client.get(
        "/api/v1/stats/commitments",
        params={"quarter": quarter, "level": "city"},
        headers=auth(case_client, "planner"),
    )
    assert figures.status_code == 200 and figures.json()[0]["solved"] >= 1


def test_the_pages_register_answer_and_solve_with_a_photo(case_client):
    desk = desk_as(case_client.app, "community_staff")
    home = desk.get("/desk")
    assert 'id="community-desks"' in home.text and "/desk/reception" in home.text
    page = desk.get("/desk/reception")
    assert page.status_code == 200 and "会客室" in page.text and 'id="nav-commitments"' in page.text
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    options = desk.get("/desk/reception/compounds", params={"community_code": COMMUNITY})
    compound = re.search(r'option value="(\d+C\d+)"', options.text).group(1)  # type: ignore[union-attr]
    made = desk.post(
        "/desk/reception",
        data={
            "csrf_token": token,
            "community_code": COMMUNITY,
            "compound_code": compound,
            "kind": "consultation",
            "asked": "咨询医保缴费",
        },
    )
    assert made.status_code == 200 and "答复期限" in made.text, made.text
    request_path = made.url.path
    answered = desk.post(f"{request_path}/answer", data={"csrf_token": token, "answer": "已讲解"})
    assert answered.status_code == 200 and answered.url.path == "/desk/reception"
    empty = desk.post(f"{request_path}/answer", data={"csrf_token": token, "answer": "x"})
    assert empty.status_code == 409 and 'data-kind="err_409"' in empty.text and "was answered" in empty.text
    missing = desk.post(
        "/desk/reception", data={"csrf_token": token, "community_code": COMMUNITY, "kind": "help"}
    )
    assert missing.status_code == 422 and "来访诉求：请写下" in missing.text
    assert (
        desk.post("/desk/reception", data={"community_code": COMMUNITY}).status_code == 403
    )  # no CSRF token
    # Commitments: collect, publish, solve with a photo.
    q = "2026Q4"
    desk.post(
        "/desk/commitments/problems",
        data={
            "csrf_token": token,
            "community_code": COMMUNITY,
            "quarter": q,
            "source": "resident",
            "description": "健身器材坏了",
        },
    )
    form = desk.get("/desk/commitments", params={"community": COMMUNITY, "quarter": q})
    pid = re.search(r'name="problem_ids" value="(\d+)"> 健身器材坏了', form.text).group(1)  # type: ignore[union-attr]
    published = desk.post(
        "/desk/commitments/publish",
        data={
            "csrf_token": token,
            "community_code": COMMUNITY,
            "quarter": q,
            "party_kind": "property_company",
            "party_name": "某物业服务中心",
            "promise": "更换健身器材",
            "due_on": "2026-12-25",
            "problem_ids": pid,
        },
    )
    assert published.status_code == 200 and "更换健身器材" in published.text
    cid = re.findall(r'data-commitment="(\d+)"', published.text)[-1]
    solved = desk.post(
        f"/desk/commitments/{cid}/solve",
        data={"csrf_token": token},
        files={"photo": ("after.jpg", AFTER_PHOTO.read_bytes(), "image/jpeg")},
    )
    assert solved.status_code == 200, solved.text
    board = case_client.get(f"/community/{COMMUNITY}/board", params={"quarter": q})
    photo = re.search(r'src="(/community/photos/[0-9a-f]{64})"', board.text).group(1)  # type: ignore[union-attr]
    served = case_client.get(photo)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert case_client.get("/community/photos/" + "0" * 64).status_code == 404
    # The duty chief's card lists overdue requests; a unit handler may not open the register.
    chief = desk_as(case_client.app, "operator")
    assert chief.get("/desk/reception/overdue-card").status_code == 200
    assert chief.get("/desk/reception").status_code == 403
