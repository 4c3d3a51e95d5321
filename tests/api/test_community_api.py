"""The community-governance API (/api/v1/community) and its pages (/desk/community), in-process on
the cases database (reference data and demo accounts, no seeded quarter)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient

from api.community_schemas import Headline, ItemDetail, ItemList, ItemOut, MeetingOut
from tests.api.test_admin_desk import signed_in
from tests.conftest import AFTER_PHOTO, auth

COMPOUND, OTHER, COMMUNITY = "421281001001C001", "421281001001C002", "421281001001"
SOON = (date.today() + timedelta(days=20)).isoformat()


def _raise(
    client: TestClient,
    who: str,
    title: str,
    list_name: str = "demand",
    area: str = COMPOUND,
    kind: str = "facilities",
) -> ItemOut:
    answer = client.post(
        "/api/v1/community/items",
        headers=auth(client, who),
        json={"list": list_name, "area": area, "kind": kind, "title": title, "raised_by": "居民代表"},
    )
    assert answer.status_code == 201, answer.text
    return ItemOut.model_validate(answer.json())


def test_raise_find_claim_note_close_off_with_a_photo(case_client):
    c = case_client
    item = _raise(c, "branch_secretary", "API测试：单元门禁损坏")
    assert (item.compound, item.community, item.state) == ("教师家园", "金鸡山社区", "open")
    found = ItemList.model_validate(
        c.get(
            "/api/v1/community/items",
            params={"q": "API测试：单元门禁", "area": COMPOUND},
            headers=auth(c, "community_staff"),
        ).json()
    )
    assert [i.id for i in found.items] == [item.id]
    claimed = c.post(
        f"/api/v1/community/items/{item.id}/claim",
        headers=auth(c, "branch_secretary"),
        json={"claimer": "branch", "compound": COMPOUND, "due_on": SOON},
    )
    assert claimed.status_code == 200 and claimed.json()["claimer"] == "教师家园党支部"
    again = c.post(
        f"/api/v1/community/items/{item.id}/claim",
        headers=auth(c, "branch_secretary"),
        json={"claimer": "branch", "compound": COMPOUND, "due_on": SOON},
    )
    assert again.status_code == 409 and again.json()["detail"][0]["field"] == "item"
    noted = c.post(
        f"/api/v1/community/items/{item.id}/notes",
        headers=auth(c, "branch_secretary"),
        json={"text": "已报物业"},
    )
    assert [n["kind"] for n in noted.json()["history"]] == ["raise", "claim", "progress"]
    empty = c.post(
        f"/api/v1/community/items/{item.id}/close-off", headers=auth(c, "branch_secretary"), data={"note": ""}
    )
    assert empty.status_code == 422 and empty.json()["detail"][0]["field"] == "photo"
    closed = c.post(
        f"/api/v1/community/items/{item.id}/close-off",
        headers=auth(c, "branch_secretary"),
        data={"note": "门禁已更换"},
        files={"photo": ("after.jpg", AFTER_PHOTO.read_bytes(), "image/jpeg")},
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed" and closed.json()["close_photo_key"]
    detail = ItemDetail.model_validate(
        c.get(f"/api/v1/community/items/{item.id}", headers=auth(c, "planner")).json()
    )
    assert (
        detail.history[-1].kind == "close"
        and detail.history[-1].photo_key == closed.json()["close_photo_key"]
    )


def test_who_may_see_and_do_what(case_client):
    c = case_client
    theirs = _raise(c, "community_staff", "API测试：隔壁小区", area=OTHER)
    assert (
        c.get(f"/api/v1/community/items/{theirs.id}", headers=auth(c, "branch_secretary")).status_code == 404
    )
    refused = c.post(
        "/api/v1/community/items",
        headers=auth(c, "branch_secretary"),
        json={"list": "wish", "area": OTHER, "kind": "elderly", "title": "x"},
    )
    assert refused.status_code == 403 and refused.json()["detail"][0]["field"] == "compound"
    resident = c.get("/api/v1/community/items", headers=auth(c, "resident"))
    assert resident.status_code == 403 and resident.json()["detail"][0]["field"] == "role"
    assert (
        c.post(
            f"/api/v1/community/items/{theirs.id}/notes", headers=auth(c, "planner"), json={"text": "x"}
        ).status_code
        == 403
    )
    assert c.get("/api/v1/community/figures", headers=auth(c, "unit_handler")).status_code == 403
    bad = c.post(
        "/api/v1/community/items",
        headers=auth(c, "community_staff"),
        json={"list": "wish", "area": COMPOUND, "kind": "nothing", "title": "x"},
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"].endswith("kind")
    assert c.get("/api/v1/community/items").status_code == 401


def test_a_round_table_through_the_api(case_client):
    c = case_client
    staff = auth(c, "community_staff")
    demand = _raise(c, "community_staff", "API测试：增设监控探头", kind="safety")
    wish = _raise(c, "community_staff", "API测试：想学用智能手机", list_name="wish", kind="culture")
    proposal = c.get(
        "/api/v1/community/round-tables/proposal", params={"area": COMPOUND, "on": SOON}, headers=staff
    )
    assert {demand.id, wish.id} <= {p["item_id"] for p in proposal.json()}
    made = c.post(
        "/api/v1/community/round-tables",
        headers=staff,
        json={
            "area": COMPOUND,
            "held_on": SOON,
            "chair": "书记",
            "attendees": {"branch": ["书记"], "property": ["经理"]},
        },
    )
    assert made.status_code == 201, made.text
    meeting = MeetingOut.model_validate(made.json())
    rows = {a.item.id: a for a in meeting.agenda if a.item}
    member = c.post(
        "/api/v1/community/members",
        headers=staff,
        json={"compound": COMPOUND, "name": "张敏", "workplace": "市税务局", "posts": ["volunteer"]},
    )
    assert member.status_code == 201
    decided = c.post(
        f"/api/v1/community/agenda-items/{rows[wish.id].id}/decision",
        headers=staff,
        json={"outcome": "claimed", "claimer": "member", "member": member.json()["id"], "due_on": SOON},
    )
    assert decided.status_code == 200, decided.text
    up = c.post(
        f"/api/v1/community/agenda-items/{rows[demand.id].id}/decision",
        headers=staff,
        json={"outcome": "escalated"},
    )
    after = MeetingOut.model_validate(up.json())
    outcomes = {a.item.id: a.outcome for a in after.agenda if a.item}
    assert outcomes[wish.id] == "claimed" and outcomes[demand.id] == "escalated"
    wrong = c.post(
        f"/api/v1/community/agenda-items/{rows[demand.id].id}/decision",
        headers=staff,
        json={"outcome": "maybe"},
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"].endswith("outcome")
    big = c.post("/api/v1/community/round-tables", headers=staff, json={"area": COMMUNITY, "held_on": SOON})
    assert demand.id in {a["item"]["id"] for a in big.json()["agenda"] if a["item"]}
    unit = c.post(
        "/api/v1/community/co-units",
        headers=staff,
        json={"community": COMMUNITY, "name": "市公安局交警大队", "signed_on": "2026-06-01"},
    )
    assert unit.status_code == 201 and unit.json()["id"] in {
        u["id"]
        for u in c.get("/api/v1/community/co-units", params={"community": COMMUNITY}, headers=staff).json()
    }
    recorded = c.post(
        f"/api/v1/community/round-tables/{meeting.id}/record",
        headers=staff,
        json={"minutes": "议定两项", "held": True},
    )
    assert recorded.json()["state"] == "held"
    compound = c.get(f"/api/v1/community/compounds/{COMPOUND}", headers=staff).json()
    assert "张敏" in {m["name"] for m in compound["members"]}


def test_figures_and_the_headline(case_client):
    c = case_client
    _raise(c, "community_staff", "API测试：数据")
    rows = c.get("/api/v1/community/figures", params={"group_by": "city"}, headers=auth(c, "planner")).json()
    assert len(rows) == 1 and rows[0]["raised"] >= 1 and rows[0]["area"] == "赤壁市"
    headline = Headline.model_validate(
        c.get("/api/v1/community/figures/headline", headers=auth(c, "community_staff")).json()
    )
    assert (
        headline.counts["demands"] >= 1 and headline.published["demands"] == f"{headline.counts['demands']:,}"
    )
    assert (
        c.get(
            "/api/v1/community/figures", params={"group_by": "planet"}, headers=auth(c, "planner")
        ).status_code
        == 422
    )


def test_the_pages_are_the_secretarys_desk(case_client):
    client, csrf = signed_in(case_client.app, "branch_secretary")
    home = client.get("/desk/community")
    assert home.status_code == 200 and "教师家园" in home.text and "筹备圆桌会" in home.text
    assert client.get("/desk", follow_redirects=False).headers["location"].startswith("/desk/community")
    made = client.post(
        "/desk/community/items",
        data={
            "csrf_token": csrf,
            "list": "wish",
            "area": COMPOUND,
            "kind": "elderly",
            "title": "页面测试：老人助餐",
        },
    )
    assert made.status_code == 303
    item_page = client.get(made.headers["location"])
    assert "页面测试：老人助餐" in item_page.text and "确认认领" in item_page.text
    no_title = client.post(
        "/desk/community/items",
        data={"csrf_token": csrf, "list": "wish", "area": COMPOUND, "kind": "elderly", "title": ""},
    )
    assert no_title.status_code == 422 and "text/html" in no_title.headers["content-type"]
    english = client.get("/desk/community/items?list=wish&lang=en")
    assert "Small wishes" in english.text
    resident, _ = signed_in(case_client.app, "resident")
    assert resident.get("/desk/community").status_code == 403
