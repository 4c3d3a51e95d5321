"""Claims, progress, close-off with a photo, the overdue flag, escalation, and an agenda item turned
into a case, on the cases database (reference data, no seeded quarter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from geo.community import lists, people, round_tables
from geo.community.round_tables import Decision
from geo.errors import ActionForbidden, InvalidInput, InvalidTransition, NotFound
from geo.store.models import Case
from tests.conftest import AFTER_PHOTO, rolled_back
from tests.geo.community_helpers import (
    COMMUNITY,
    COMPOUND,
    OTHER_COMPOUND,
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


def test_claim_progress_close_off_with_a_photo(tx, ctx):
    now = datetime.now(UTC)
    secretary, where = seat(tx, "branch_secretary")
    wish = raise_(tx, "wish", "孩子想要一套课外书", now - timedelta(days=2), kind="children")
    member = people.register_member(
        tx, *seat(tx, "community_staff"), COMPOUND, "王伟", "市税务局", posts=["youth"]
    )
    lists.claim(
        tx,
        secretary,
        where,
        wish,
        lists.Claimer("member", member_id=member.id),
        now.date() + timedelta(days=7),
    )
    assert (wish.state, lists.claimer_name(tx, wish)) == ("claimed", "王伟")
    with pytest.raises(InvalidTransition):
        lists.claim(tx, secretary, where, wish, lists.Claimer("branch", compound_code=COMPOUND), now.date())
    lists.add_progress(tx, secretary, where, wish, "已联系家长")
    with pytest.raises(InvalidInput) as refused:
        lists.close_off(tx, ctx.blobs, secretary, where, wish)
    assert refused.value.field == "photo"
    lists.close_off(tx, ctx.blobs, secretary, where, wish, "书已送到", AFTER_PHOTO.read_bytes())
    assert wish.state == "closed" and wish.close_photo_key and ctx.blobs.exists(wish.close_photo_key)
    assert [n.kind for n in lists.history(tx, wish)] == ["raise", "claim", "progress", "close"]
    assert not lists.is_overdue(wish, now.date() + timedelta(days=30))  # closed off: never overdue


def test_overdue_is_the_same_in_python_and_sql(tx):
    now = datetime.now(UTC)
    staff, where = seat(tx, "community_staff")
    late = raise_(tx, "demand", "屋顶漏水维修", now, kind="facilities")
    lists.claim(tx, staff, where, late, lists.Claimer("branch", compound_code=COMPOUND), now.date())
    force_due(tx, late, now.date() - timedelta(days=1))
    on_time = raise_(tx, "demand", "楼道灯不亮", now, kind="facilities")
    lists.claim(
        tx,
        staff,
        where,
        on_time,
        lists.Claimer("branch", compound_code=COMPOUND),
        now.date() + timedelta(days=3),
    )
    _, found = lists.search(tx, staff, where, lists.ItemFilter(compound=COMPOUND, overdue=True))
    assert [i.id for i in found] == [late.id]
    assert lists.is_overdue(late, now.date()) and not lists.is_overdue(on_time, now.date())


def test_a_secretary_works_only_their_compound(tx):
    now = datetime.now(UTC)
    secretary, where = seat(tx, "branch_secretary")
    theirs = raise_(tx, "demand", "隔壁小区的需求", now, area=OTHER_COMPOUND)
    with pytest.raises(NotFound):
        lists.get_item(tx, secretary, where, theirs.id)
    with pytest.raises(ActionForbidden) as refused:
        lists.raise_item(tx, secretary, where, "wish", OTHER_COMPOUND, "elderly", "不是我的小区")
    assert refused.value.field == "compound"
    with pytest.raises(ActionForbidden):  # the big round table is the community staff's
        round_tables.prepare(tx, secretary, where, COMMUNITY, now.date())


def test_matching_offers_the_same_kind_in_the_community(tx):
    now = datetime.now(UTC)
    staff, where = seat(tx, "community_staff")
    unit = people.add_co_unit(tx, staff, where, COMMUNITY, "市人民医院", "hospital", now.date())
    clinic = lists.raise_item(
        tx, staff, where, "resource", COMMUNITY, "health", "每月义诊", offered_by_id=unit.id
    )
    lists.raise_item(tx, staff, where, "resource", COMMUNITY, "legal", "法律咨询", offered_by_id=unit.id)
    demand = raise_(tx, "demand", "老人需要量血压", now, kind="health")
    assert [r.id for r in lists.matches(tx, demand)] == [clinic.id]
    lists.claim(
        tx, staff, where, demand, lists.Claimer("unit", unit_id=unit.id), now.date(), resource_id=clinic.id
    )
    assert demand.resource_id == clinic.id and lists.claimer_name(tx, demand) == "市人民医院"


def test_escalated_then_claimed_at_the_big_round_table(tx, ctx):
    now = datetime.now(UTC)
    secretary, s_seat = seat(tx, "branch_secretary")
    staff, c_seat = seat(tx, "community_staff")
    demand = raise_(tx, "demand", "小区绿地补种", now - timedelta(days=1), kind="greening")
    meeting = round_tables.prepare(tx, secretary, s_seat, COMPOUND, now.date())
    (row,) = round_tables.agenda_of(tx, meeting)
    round_tables.decide(tx, ctx, secretary, s_seat, row, Decision("escalated"))
    with pytest.raises(InvalidTransition):
        round_tables.decide(tx, ctx, secretary, s_seat, row, Decision("closed", note="again"))
    with pytest.raises(ActionForbidden):  # the community's item now: the secretary no longer claims it
        lists.claim(
            tx, secretary, s_seat, demand, lists.Claimer("branch", compound_code=COMPOUND), now.date()
        )
    unit = people.add_co_unit(tx, staff, c_seat, COMMUNITY, "市林业局", "bureau", now.date())
    big = round_tables.prepare(tx, staff, c_seat, COMMUNITY, now.date() + timedelta(days=1), chair="市领导")
    (big_row,) = round_tables.agenda_of(tx, big)
    assert (big_row.source, big_row.item_id) == ("escalated", demand.id)
    with pytest.raises(InvalidInput) as refused:
        round_tables.decide(
            tx, ctx, staff, c_seat, big_row, Decision("claimed", lists.Claimer("unit", unit_id=unit.id))
        )
    assert refused.value.field == "due_on"
    due = now.date() + timedelta(days=30)
    round_tables.decide(
        tx, ctx, staff, c_seat, big_row, Decision("claimed", lists.Claimer("unit", unit_id=unit.id), due)
    )
    assert (demand.state, demand.claimer_unit_id, demand.due_on, big_row.due_on) == (
        "claimed",
        unit.id,
        due,
        due,
    )


def test_repeated_cases_turned_into_a_case_and_an_item_closed_with_a_reason(tx, ctx):
    now = datetime.now(UTC)
    secretary, where = seat(tx, "branch_secretary")
    p = points_in(tx, COMPOUND, 2)
    first = report(tx, ctx, "E0102", p[0], now)
    report(tx, ctx, "E0102", p[1], now + timedelta(milliseconds=5))
    wish = raise_(tx, "wish", "希望有人帮忙修理轮椅", now - timedelta(days=1))
    meeting = round_tables.prepare(tx, secretary, where, COMPOUND, now.date() + timedelta(days=1))
    cases_row, wish_row = round_tables.agenda_of(tx, meeting)
    round_tables.decide(tx, ctx, secretary, where, cases_row, Decision("case", note="反复出现，请城管处理"))
    case = tx.get(Case, cases_row.case_id)
    assert case is not None and case.channel == "referral" and case.category_code == "E0102"
    assert case.grid_code == tx.scalar(select(Case.grid_code).where(Case.id == first.id))  # routed as usual
    assert case.unit_code and case.description.startswith("圆桌会转办：暴露垃圾")
    with pytest.raises(InvalidInput) as refused:
        round_tables.decide(tx, ctx, secretary, where, wish_row, Decision("closed"))
    assert refused.value.field == "note"
    round_tables.decide(tx, ctx, secretary, where, wish_row, Decision("closed", note="居民已自行解决"))
    assert wish.state == "closed" and wish.close_note == "居民已自行解决"
    # The next round table has nothing carried: every item ended.
    following = round_tables.prepare(tx, secretary, where, COMPOUND, now.date() + timedelta(days=31))
    later = round_tables.agenda_of(tx, following)
    assert not [a for a in later if a.source == "carried"]
    assert not {c for a in later for c in a.case_ids} & set(cases_row.case_ids)  # decided once
