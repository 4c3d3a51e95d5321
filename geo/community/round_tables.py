"""Round tables (圆桌会): a compound's monthly meeting of its three parties and residents' representatives,
and a community's big round table (大圆桌会) with the city leader in charge and the co-building units.

A meeting is prepared with the agenda gridcase proposes (geo/community/agenda.py); at the meeting each
item ends one of four ways: **claimed** by a unit, a member or the branch with a due date (the item
goes on the lists as claimed), **escalated** to the big round table (a compound's only), turned into
a **case** (a referral filed through `geo.cases.service.submit_report`, routed as usual), or
**closed** with a reason. An item left without an outcome is carried to the next meeting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from geoalchemy2.shape import to_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.access import CommunityAction, Seat, community_filter, may_community, require_community
from geo.accounts import Actor
from geo.cases.intake import Channel, ReportIn
from geo.cases.service import CaseContext, submit_report
from geo.community import agenda, lists, people
from geo.community.models import OUTCOMES, AgendaItem, GovernanceItem, RoundTable
from geo.errors import InvalidInput, InvalidTransition, NotFound
from geo.store.models import Area, Case

#: The parties a meeting's attendees are recorded by.
ATTENDEE_PARTIES = ("branch", "owners_committee", "property", "residents", "co_building", "leader")


def _action(level: str) -> CommunityAction:
    return CommunityAction.hold_big_meeting if level == "community" else CommunityAction.hold_meeting


def _require_meeting(
    actor: Actor, seat: Seat, meeting: RoundTable, action: CommunityAction | None = None
) -> None:
    action = action or _action(meeting.level)
    compound = meeting.area_code if meeting.level == "compound" else None
    require_community(actor, seat, action, meeting.community_code, compound)


def get_meeting(session: Session, actor: Actor, seat: Seat, meeting_id: int) -> RoundTable:
    """A meeting this person may read."""
    meeting = session.get(RoundTable, meeting_id)
    if meeting is None:
        raise NotFound(f"no round table {meeting_id}", field="meeting")
    compound = meeting.area_code if meeting.level == "compound" else None
    if not may_community(actor, seat, CommunityAction.read, meeting.community_code, compound):
        raise NotFound(f"no round table {meeting_id}", field="meeting")
    return meeting


def prepare(
    session: Session,
    actor: Actor,
    seat: Seat,
    area_code: str,
    held_on: date,
    chair: str = "",
    attendees: dict[str, list[str]] | None = None,
) -> RoundTable:
    """Call a round table for a compound (or a community's big round table) with the proposed agenda."""
    lists.check_day(held_on, "held_on")
    where = people.place(session, area_code)
    level = where.level
    meeting = RoundTable(
        level=level,
        area_code=where.code,
        community_code=where.community_code,
        street_code=where.street_code,
        held_on=held_on,
        chair=chair.strip(),
        attendees=_attendees(attendees or {}),
        minutes="",
        state="planned",
        created_by=actor.username,
    )
    _require_meeting(actor, seat, meeting)
    session.add(meeting)
    session.flush()
    for position, p in enumerate(agenda.propose(session, level, where.code, held_on, meeting.id), start=1):
        session.add(
            AgendaItem(
                meeting_id=meeting.id,
                position=position,
                source=p.source,
                title=p.title,
                item_id=p.item_id,
                case_ids=p.case_ids,
                category_code=p.category_code,
                carried_from_id=p.carried_from_id,
            )
        )
    session.flush()
    return meeting


def _attendees(given: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for party, names in given.items():
        if party not in ATTENDEE_PARTIES:
            raise InvalidInput(
                f"attendees: party {party!r} is not one of {', '.join(ATTENDEE_PARTIES)}", field="attendees"
            )
        cleaned = [n.strip() for n in names if n and n.strip()]
        if cleaned:
            out[party] = cleaned
    return out


def record(
    session: Session,
    actor: Actor,
    seat: Seat,
    meeting: RoundTable,
    *,
    chair: str | None = None,
    attendees: dict[str, list[str]] | None = None,
    minutes: str | None = None,
    held: bool | None = None,
) -> RoundTable:
    """Record who chaired and attended, the minutes, and that the meeting was held."""
    _require_meeting(actor, seat, meeting)
    if chair is not None:
        meeting.chair = chair.strip()
    if attendees is not None:
        meeting.attendees = _attendees(attendees)
    if minutes is not None:
        meeting.minutes = minutes.strip()
    if held:
        meeting.state = "held"
    session.flush()
    return meeting


def agenda_of(session: Session, meeting: RoundTable) -> list[AgendaItem]:
    """The meeting's agenda in order."""
    return list(
        session.scalars(
            select(AgendaItem).where(AgendaItem.meeting_id == meeting.id).order_by(AgendaItem.position)
        )
    )


def add_to_agenda(
    session: Session, actor: Actor, seat: Seat, meeting: RoundTable, item_id: int
) -> AgendaItem:
    """Put one more item of the lists on the agenda (raised at the meeting, or found by hand)."""
    _require_meeting(actor, seat, meeting)
    item = lists.get_item(session, actor, seat, item_id)
    if item.community_code != meeting.community_code:
        raise InvalidInput("the item belongs to another community", field="item")
    position = (
        session.scalar(select(func.max(AgendaItem.position)).where(AgendaItem.meeting_id == meeting.id)) or 0
    ) + 1
    row = AgendaItem(
        meeting_id=meeting.id,
        position=position,
        source="added",
        title=item.title,
        item_id=item.id,
        case_ids=[],
    )
    session.add(row)
    session.flush()
    return row


@dataclass
class Decision:
    """How an agenda item ends: claimed (who, by when), escalated, turned into a case, closed (why)."""

    outcome: str
    claimer: lists.Claimer | None = None
    due_on: date | None = None
    note: str = ""
    category: str | None = None  # a case's category (default: the agenda item's)
    resource_id: int | None = None


def _item_for(
    session: Session, actor: Actor, meeting: RoundTable, row: AgendaItem, now: datetime
) -> GovernanceItem:
    """The list item an agenda item is about: its own, or a new demand for a problem from the cases."""
    if row.item_id is not None:
        found = session.get(GovernanceItem, row.item_id)
        assert found is not None
        return found
    compound = meeting.area_code if meeting.level == "compound" else None
    item = GovernanceItem(
        list="demand",
        compound_code=compound,
        community_code=meeting.community_code,
        street_code=meeting.street_code,
        kind=lists.kind_of_category(row.category_code),
        title=row.title,
        description=f"圆桌会议题（{len(row.case_ids or [])} 件未办结案件）",
        raised_by="圆桌会",
        raised_at=now,
        recorded_by=actor.username,
        level=meeting.level,
        state="open",
    )
    session.add(item)
    session.flush()
    lists.note(session, item, actor.username, "圆桌会议题", "raise", now)
    row.item_id = item.id
    return item


def decide(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    seat: Seat,
    row: AgendaItem,
    decision: Decision,
    now: datetime | None = None,
) -> AgendaItem:
    """End an agenda item one of the four ways (its list item follows)."""
    meeting = session.get(RoundTable, row.meeting_id)
    assert meeting is not None
    _require_meeting(actor, seat, meeting)
    if decision.outcome not in OUTCOMES:
        raise InvalidInput(
            f"outcome {decision.outcome!r} is not one of {', '.join(OUTCOMES)}", field="outcome"
        )
    if row.outcome is not None:
        raise InvalidTransition(f"agenda item {row.id} was decided already ({row.outcome})", field="outcome")
    now = now or datetime.now(UTC)
    handler = _OUTCOMES[decision.outcome]
    handler(session, ctx, actor, seat, meeting, row, decision, now)
    row.outcome = decision.outcome
    row.outcome_note = decision.note.strip()
    row.decided_at = now
    session.flush()
    return row


def _claimed(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    seat: Seat,
    meeting: RoundTable,
    row: AgendaItem,
    d: Decision,
    now: datetime,
) -> None:
    if d.claimer is None:
        raise InvalidInput("say who claims it", field="claimer")
    if d.due_on is None:
        raise InvalidInput("a claim needs a due date", field="due_on")
    lists.check_day(d.due_on, "due_on")
    item = _item_for(session, actor, meeting, row, now)
    if item.state == "claimed" and item.due_on is not None and item.due_on < now.date():
        item.state = "open"  # an overdue claim is claimed again (by the same or someone else)
    lists.claim(session, actor, seat, item, d.claimer, d.due_on, d.resource_id, d.note, now)
    row.due_on = d.due_on


def _escalated(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    seat: Seat,
    meeting: RoundTable,
    row: AgendaItem,
    d: Decision,
    now: datetime,
) -> None:
    if meeting.level != "compound":
        raise InvalidInput("only a compound's round table escalates, to the big round table", field="outcome")
    item = _item_for(session, actor, meeting, row, now)
    lists.escalate(session, actor, seat, item, d.note, now)


def _case(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    seat: Seat,
    meeting: RoundTable,
    row: AgendaItem,
    d: Decision,
    now: datetime,
) -> None:
    category = d.category or row.category_code
    if not category:
        raise InvalidInput("choose the category of the case", field="category")
    lon, lat = _where(session, meeting, row)
    words = row.title + (f"：{d.note.strip()}" if d.note.strip() else "")
    report = ReportIn(
        category=category,
        description=f"圆桌会转办：{words}"[:2000],
        lon=lon,
        lat=lat,
        channel=Channel.referral,
    )
    case, _ = submit_report(session, ctx, actor, report, now=now)
    row.case_id = case.id
    if row.item_id is not None:
        item = _item_for(session, actor, meeting, row, now)
        if item.state != "closed":
            item.case_id = case.id
            lists.close_off(
                session,
                ctx.blobs,
                actor,
                seat,
                item,
                f"转为案件 {case.tracking_code}",
                now=now,
                reason="case",
            )


def _where(session: Session, meeting: RoundTable, row: AgendaItem) -> tuple[float, float]:
    """Where the case is: its first case's point, else a point inside the compound (or community)."""
    if row.case_ids:
        location = session.scalar(select(Case.location).where(Case.id == row.case_ids[0]))
        if location is not None:
            point = to_shape(location)
            return point.x, point.y
    geom = session.scalar(
        select(func.ST_PointOnSurface(Area.geom))
        .where(Area.code == meeting.area_code)
        .order_by(Area.generation_high.desc())
        .limit(1)
    )
    if geom is None:
        raise NotFound(f"no compound or community {meeting.area_code}", field="meeting")
    point = to_shape(geom)
    return point.x, point.y


def _closed(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    seat: Seat,
    meeting: RoundTable,
    row: AgendaItem,
    d: Decision,
    now: datetime,
) -> None:
    if not d.note.strip():
        raise InvalidInput("closing an agenda item needs the reason", field="note")
    if row.item_id is not None:
        item = _item_for(session, actor, meeting, row, now)
        if item.state != "closed":
            lists.close_off(session, ctx.blobs, actor, seat, item, d.note, now=now, reason="close")


_OUTCOMES = {"claimed": _claimed, "escalated": _escalated, "case": _case, "closed": _closed}


def agenda_row(session: Session, actor: Actor, seat: Seat, agenda_item_id: int) -> AgendaItem:
    """An agenda item of a meeting this person may read."""
    row = session.get(AgendaItem, agenda_item_id)
    if row is None:
        raise NotFound(f"no agenda item {agenda_item_id}", field="agenda_item")
    get_meeting(session, actor, seat, row.meeting_id)
    return row


def meetings(
    session: Session, actor: Actor, seat: Seat, area_code: str | None = None, limit: int = 50
) -> list[RoundTable]:
    """The meetings this person reads, newest first (of one compound or community if asked)."""
    compound = func.nullif(RoundTable.area_code, RoundTable.community_code)  # a community's meeting: none
    query = select(RoundTable).where(community_filter(actor, seat, RoundTable.community_code, compound))
    if area_code:
        query = query.where(RoundTable.area_code == area_code)
    return list(session.scalars(query.order_by(RoundTable.held_on.desc(), RoundTable.id.desc()).limit(limit)))
