"""The agenda gridcase proposes for a compound's round table, on a compound built by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from geo.community import agenda, lists, people, round_tables
from geo.community.round_tables import Decision
from geo.store.models import Case
from tests.conftest import rolled_back
from tests.geo.community_helpers import (
    COMMUNITY,
    COMPOUND,
    OTHER_COMPOUND,
    china_tomorrow,
    force_due,
    points_in,
    raise_,
    report,
    seat,
)


@pytest.fixture
def tx(cases_store):
    with rolled_back(cases_store) as session:
        yield session


@pytest.fixture
def ctx(case_client):
    return case_client.app.state.cases


def test_the_proposed_agenda_order(tx, ctx):
    now = datetime.now(UTC)
    meeting_day = china_tomorrow()
    last_month = now - timedelta(days=30)
    staff, staff_seat = seat(tx, "community_staff")
    # Last month's round table: one demand and one wish were on it; the wish was claimed.
    d0 = raise_(tx, "demand", "楼道灯不亮", last_month - timedelta(days=5), kind="facilities")
    w0 = raise_(tx, "wish", "想要一副老花镜", last_month - timedelta(days=4))
    first = round_tables.prepare(tx, staff, staff_seat, COMPOUND, last_month.date(), chair="书记")
    assert [(a.source, a.item_id) for a in round_tables.agenda_of(tx, first)] == [
        ("open_demand", d0.id),
        ("unclaimed_wish", w0.id),
    ]
    member = people.register_member(tx, staff, staff_seat, COMPOUND, "李芳", posts=["elderly"])
    wish_row = round_tables.agenda_of(tx, first)[1]
    round_tables.decide(
        tx,
        ctx,
        staff,
        staff_seat,
        wish_row,
        Decision(
            "claimed", lists.Claimer("member", member_id=member.id), last_month.date() + timedelta(days=20)
        ),
        now=last_month,
    )
    # Since then: cases in the compound (and one next door, and one rejected), items, an overdue claim.
    p = points_in(tx, COMPOUND, 10)
    base = now  # boundaries are in force from when the test database was loaded
    cases = {}
    for k, (category, point) in enumerate(
        [
            ("E0105", 0),  # the oldest of a pair
            ("C0302", 1),  # a single one, older than the other single
            ("E0102", 2),
            ("C0110", 3),
            ("E0102", 4),
            ("E0105", 5),
            ("E0106", 6),  # the newer single
            ("C0110", 7),
            ("E0102", 8),
            ("E0104", 9),  # rejected below: not open
        ]
    ):
        cases[k] = report(tx, ctx, category, p[point], base + timedelta(milliseconds=10 * k))
    tx.execute(update(Case).where(Case.id == cases[9].id).values(state="rejected"))
    report(tx, ctx, "E0102", points_in(tx, OTHER_COMPOUND, 1)[0], base)  # another compound's
    d1 = raise_(tx, "demand", "单元门禁损坏", now - timedelta(days=9), kind="facilities")
    d2 = raise_(tx, "demand", "增设监控探头", now - timedelta(days=3), kind="safety")
    w1 = raise_(tx, "wish", "希望有人陪伴聊天", now - timedelta(days=7))
    raise_(
        tx, "resource", "义诊", now - timedelta(days=7), kind="health", area=COMMUNITY
    )  # never on an agenda
    d3 = raise_(tx, "demand", "修剪树枝", now - timedelta(days=20), kind="greening")
    lists.claim(tx, staff, staff_seat, d3, lists.Claimer("branch", compound_code=COMPOUND), meeting_day)
    force_due(tx, d3, now.date() - timedelta(days=2))
    later = raise_(
        tx,
        "demand",
        "明天才提的需求",
        datetime.combine(meeting_day, datetime.min.time(), UTC) + timedelta(hours=20),
    )

    proposed = agenda.propose(tx, "compound", COMPOUND, meeting_day)

    ids = {c.id: k for k, c in cases.items()}
    assert [(p.source, p.item_id, [ids[i] for i in p.case_ids], p.category_code) for p in proposed] == [
        ("carried", d0.id, [], None),
        ("repeated_cases", None, [2, 4, 8], "E0102"),  # three: most first
        ("repeated_cases", None, [0, 5], "E0105"),  # two, the older first report
        ("repeated_cases", None, [3, 7], "C0110"),
        ("open_case", None, [1], "C0302"),
        ("open_case", None, [6], "E0106"),
        ("open_demand", d1.id, [], None),
        ("open_demand", d2.id, [], None),
        ("unclaimed_wish", w1.id, [], None),
        ("overdue_claim", w0.id, [], None),  # claimed last month for 20 days: due 10 days ago
        ("overdue_claim", d3.id, [], None),  # due 2 days ago
    ]
    assert proposed[1].title == "暴露垃圾" and proposed[0].carried_from_id is not None
    assert later.id not in {p.item_id for p in proposed}


def test_a_big_round_table_starts_with_what_the_compounds_escalated(tx, ctx):
    now = datetime.now(UTC)
    staff, staff_seat = seat(tx, "community_staff")
    secretary, secretary_seat = seat(tx, "branch_secretary")
    demand = raise_(tx, "demand", "化粪池清掏", now - timedelta(days=3), kind="environment")
    meeting = round_tables.prepare(tx, secretary, secretary_seat, COMPOUND, now.date(), chair="书记")
    (row,) = round_tables.agenda_of(tx, meeting)
    round_tables.decide(tx, ctx, secretary, secretary_seat, row, Decision("escalated", note="需要共建单位"))
    big = agenda.propose(tx, "community", COMMUNITY, china_tomorrow())
    assert [(p.source, p.item_id) for p in big] == [("escalated", demand.id)]
    # The compound's next round table no longer lists it: it is the community's now.
    assert demand.id not in {p.item_id for p in agenda.propose(tx, "compound", COMPOUND, china_tomorrow())}
