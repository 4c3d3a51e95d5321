"""The reception room (会客室): due dates by kind, overdue, nothing deleted, figures on known data."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from geo.accounts import Actor, Role, actor_of
from geo.cases.work_calendar import stored_calendar
from geo.community import reception
from geo.community import register_figures as figures
from geo.community.reception import RequestIn
from geo.community.register_models import CommunityHistory, ReceptionFollow, ReceptionRequest
from geo.errors import ActionForbidden, InvalidInput, InvalidTransition
from geo.store.models import Account
from tests.conftest import rolled_back

CHINA = ZoneInfo("Asia/Shanghai")
COMMUNITY = "421281002003"  # a demo community with compounds, away from the seeded register's checks
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=CHINA)
THEN = datetime(2026, 10, 21, 8, 0, tzinfo=CHINA)  # when the October visits were written down


@pytest.fixture
def db(cases_store):
    with rolled_back(cases_store) as session:
        # The register starts empty here (the cases database has no seeded register).
        yield session


def staff(session) -> Actor:
    return actor_of(session.scalar(select(Account).where(Account.username == "community_staff")))


def operator(session) -> Actor:
    return actor_of(session.scalar(select(Account).where(Account.username == "operator")))


def a_compound(session) -> str:
    return session.scalar(
        text("SELECT code FROM area WHERE level = 'compound' AND parent_code = :c ORDER BY code LIMIT 1"),
        {"c": COMMUNITY},
    )


def test_due_dates_by_kind_on_the_work_calendar(db):
    calendar = stored_calendar(db)
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=CHINA)
    # A question is answered by the next working day: Friday 10:00 → Monday 10:00.
    assert reception.due_at("consultation", friday, calendar) == datetime(2026, 11, 30, 10, 0, tzinfo=CHINA)
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=CHINA)
    assert reception.due_at("complaint", monday, calendar) == datetime(2026, 12, 7, 10, 0, tzinfo=CHINA)
    assert reception.due_at("help", monday, calendar) == datetime(2026, 12, 3, 10, 0, tzinfo=CHINA)
    assert reception.due_at("suggestion", monday, calendar) == datetime(2026, 12, 14, 10, 0, tzinfo=CHINA)
    # Across the National Day holiday (1–7 October 2026 off; the calendar file knows it).
    before = datetime(2026, 9, 30, 10, 0, tzinfo=CHINA)
    due = reception.due_at("consultation", before, calendar)
    assert due.astimezone(CHINA).date() > datetime(2026, 10, 7).date()
    with pytest.raises(InvalidInput) as refused:
        reception.due_at("gossip", monday, calendar)
    assert refused.value.field == "kind"


def test_register_follow_answer_and_overdue(db):
    who = staff(db)
    late = reception.register(
        db,
        who,
        RequestIn(
            COMMUNITY,
            "consultation",
            "咨询高龄津贴",
            visitor="王女士",
            visitor_contact="13800000000",
            received_at=datetime(2026, 11, 27, 9, 0, tzinfo=CHINA),
        ),
        now=NOW,
    )
    fresh = reception.register(
        db, who, RequestIn(COMMUNITY, "complaint", "楼道灯坏了", compound_code=a_compound(db)), now=NOW
    )
    assert late.reference.startswith("JD20261127-") and late.state == "open"
    assert reception.is_overdue(late, NOW) and not reception.is_overdue(fresh, NOW)
    total, rows = reception.overdue_summary(db, NOW, limit=500)
    mine = [r for r in rows if r.reference == late.reference]
    assert mine and fresh.reference not in {r.reference for r in rows}
    assert mine[0].visitor is None and mine[0].visitor_contact is None  # never on the screen
    # The duty chief reads only the overdue list, without who came.
    n, seen = reception.list_requests(db, operator(db), "all", community_code=COMMUNITY, now=NOW)
    assert n == 1 and seen[0].reference == late.reference and seen[0].visitor is None
    # The member on duty follows it: a note, a referral to a unit, then the answer.
    reception.add_note(db, who, late.id, "已联系民政办", now=NOW)
    reception.refer(db, who, late.id, "CGJ", "请协助", now=NOW + timedelta(minutes=5))
    reception.answer(db, who, late.id, "已告知申领材料", now=NOW + timedelta(minutes=10))
    view = reception.get_request(db, who, late.id, now=NOW)
    assert view.state == "answered" and view.answered_on_time is False and not view.overdue
    assert [f.kind for f in view.follows] == ["note", "referral", "answer"]
    assert view.visitor == "王女士" and view.visitor_contact == "13800000000"
    after, rows = reception.overdue_summary(db, NOW + timedelta(minutes=11), limit=500)
    assert after == total - 1 and late.reference not in {r.reference for r in rows}
    with pytest.raises(InvalidTransition):
        reception.answer(db, who, late.id, "again", now=NOW)


def test_who_may_register(db):
    with pytest.raises(ActionForbidden) as refused:
        reception.register(db, operator(db), RequestIn(COMMUNITY, "help", "x"), now=NOW)
    assert "community_staff" in refused.value.message
    planner = Actor(99, "p", Role.planner)
    with pytest.raises(ActionForbidden):
        reception.get_request(db, planner, 1)
    for bad, field in [
        (RequestIn("999", "help", "x"), "community_code"),
        (RequestIn(COMMUNITY, "help", "x", compound_code="421281001001C001"), "compound_code"),
        (RequestIn(COMMUNITY, "help", "  "), "asked"),
        (RequestIn(COMMUNITY, "nothing", "x"), "kind"),
        (RequestIn(COMMUNITY, "help", "x", received_at=NOW - timedelta(days=40)), "received_at"),
        (RequestIn(COMMUNITY, "help", "x", received_at=NOW + timedelta(hours=1)), "received_at"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            reception.register(db, staff(db), bad, now=NOW)
        assert refused.value.field == field


def test_nothing_is_deleted_and_every_change_is_kept(db):
    row = reception.register(db, staff(db), RequestIn(COMMUNITY, "help", "水管爆裂"), now=NOW)
    reception.answer(db, staff(db), row.id, "已上门维修", now=NOW + timedelta(hours=1))
    history = db.scalars(
        select(CommunityHistory.op)
        .where(CommunityHistory.table_name == "reception_request", CommunityHistory.row_id == row.id)
        .order_by(CommunityHistory.id)
    ).all()
    assert history[0] == "INSERT" and "UPDATE" in history
    kept = db.scalars(select(CommunityHistory.row).where(CommunityHistory.row_id == row.id)).all()
    assert kept[-1]["answer"] == "已上门维修" and kept[0]["answer"] == ""
    for statement in (
        delete(ReceptionRequest).where(ReceptionRequest.id == row.id),
        delete(ReceptionFollow),
        text("TRUNCATE reception_request CASCADE"),
        delete(CommunityHistory),
        update(CommunityHistory).values(op="X"),
    ):
        with pytest.raises(DBAPIError) as refused, db.begin_nested():
            db.execute(statement)
        assert "refused" in str(refused.value)
    assert db.get(ReceptionRequest, row.id) is not None


def test_figures_on_known_data(db):
    who = staff(db)
    compound = a_compound(db)
    on_time = reception.register(
        db,
        who,
        RequestIn(
            COMMUNITY,
            "consultation",
            "a",
            compound_code=compound,
            received_at=datetime(2026, 10, 19, 9, 0, tzinfo=CHINA),
        ),
        now=THEN,
    )
    late = reception.register(
        db,
        who,
        RequestIn(COMMUNITY, "consultation", "b", received_at=datetime(2026, 10, 19, 9, 30, tzinfo=CHINA)),
        now=THEN,
    )
    reception.register(
        db,
        who,
        RequestIn(COMMUNITY, "consultation", "c", received_at=datetime(2026, 10, 20, 9, 0, tzinfo=CHINA)),
        now=THEN,
    )
    reception.answer(db, who, on_time.id, "ok", now=datetime(2026, 10, 19, 15, 0, tzinfo=CHINA))
    reception.answer(db, who, late.id, "ok", now=datetime(2026, 10, 22, 15, 0, tzinfo=CHINA))
    start, end = datetime(2026, 10, 1).date(), datetime(2026, 10, 31).date()
    (community,) = figures.reception_figures(db, start, end, "community", now=NOW)
    assert (community.code, community.registered, community.answered) == (COMMUNITY, 3, 2)
    assert (community.answered_on_time, community.overdue) == (1, 1)
    assert community.share_answered == round(2 / 3, 4) and community.share_answered_on_time == round(1 / 3, 4)
    (city,) = figures.reception_figures(db, start, end, "city", now=NOW)
    assert (city.registered, city.name) == (3, "全市")
    (street,) = figures.reception_figures(db, start, end, "street", now=NOW)
    assert street.code == "421281002"
    compounds = {r.code: r.registered for r in figures.reception_figures(db, start, end, "compound", now=NOW)}
    assert compounds == {compound: 1, None: 2}
    assert figures.reception_figures(db, end + timedelta(days=1), end + timedelta(days=9), now=NOW) == []
