"""What a reader sees of the lists and the round tables: items and agenda items with names, not codes,
built for a whole page in a fixed number of queries (routes and pages only serialise them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.community import lists, people
from geo.community.models import AgendaItem, CoBuildingUnit, GovernanceItem, PartyMember, RoundTable
from geo.store.models import Case

CHINA = ZoneInfo("Asia/Shanghai")


@dataclass
class ItemView:
    """An item of the lists as people read it."""

    id: int
    list: str
    kind: str
    title: str
    description: str
    raised_by: str
    raised_on: date
    compound_code: str | None
    compound: str
    community_code: str
    community: str
    level: str
    state: str
    claimer_kind: str | None
    claimer: str
    due_on: date | None
    overdue: bool
    closed_on: date | None
    close_note: str | None
    close_photo_key: str | None
    offered_by: str
    resource_id: int | None
    case_id: int | None


def describe(session: Session, items: list[GovernanceItem], today: date) -> list[ItemView]:
    """Views of a page of items: area, unit and member names in three queries."""
    codes = {i.community_code for i in items} | {i.compound_code for i in items if i.compound_code}
    codes |= {i.claimer_compound_code for i in items if i.claimer_compound_code}
    names = people.names_of(session, codes)
    unit_ids = {i.claimer_unit_id for i in items if i.claimer_unit_id} | {
        i.offered_by_id for i in items if i.offered_by_id
    }
    units = dict(
        session.execute(
            select(CoBuildingUnit.id, CoBuildingUnit.name).where(CoBuildingUnit.id.in_(unit_ids or {0}))
        ).all()
    )
    member_ids = {i.claimer_member_id for i in items if i.claimer_member_id}
    members = dict(
        session.execute(
            select(PartyMember.id, PartyMember.name).where(PartyMember.id.in_(member_ids or {0}))
        ).all()
    )

    def claimer(i: GovernanceItem) -> str:
        if i.claimer_kind == "unit":
            return units.get(i.claimer_unit_id or 0, "")
        if i.claimer_kind == "member":
            return members.get(i.claimer_member_id or 0, "")
        if i.claimer_kind == "branch" and i.claimer_compound_code:
            return names.get(i.claimer_compound_code, "") + "党支部"
        return ""

    return [
        ItemView(
            id=i.id,
            list=i.list,
            kind=i.kind,
            title=i.title,
            description=i.description,
            raised_by=i.raised_by,
            raised_on=i.raised_at.astimezone(CHINA).date(),
            compound_code=i.compound_code,
            compound=names.get(i.compound_code or "", ""),
            community_code=i.community_code,
            community=names.get(i.community_code, ""),
            level=i.level,
            state=i.state,
            claimer_kind=i.claimer_kind,
            claimer=claimer(i),
            due_on=i.due_on,
            overdue=lists.is_overdue(i, today),
            closed_on=i.closed_at.astimezone(CHINA).date() if i.closed_at else None,
            close_note=i.close_note,
            close_photo_key=i.close_photo_key,
            offered_by=units.get(i.offered_by_id, "") if i.offered_by_id else "",
            resource_id=i.resource_id,
            case_id=i.case_id,
        )
        for i in items
    ]


@dataclass
class AgendaView:
    """An agenda item as people read it: what, from where, how it ended."""

    id: int
    position: int
    source: str
    title: str
    item: ItemView | None
    case_count: int
    category_code: str | None
    outcome: str | None
    outcome_note: str
    due_on: date | None
    case_tracking_code: str | None
    open_cases: list[str] = field(default_factory=list)


@dataclass
class MeetingView:
    """A round table with its agenda."""

    id: int
    level: str
    area_code: str
    area: str
    community_code: str
    held_on: date
    chair: str
    attendees: dict[str, list[str]]
    minutes: str
    state: str
    agenda: list[AgendaView]


def meeting_view(session: Session, meeting: RoundTable, today: date) -> MeetingView:
    """A meeting and its agenda, in a fixed number of queries."""
    rows = list(
        session.scalars(
            select(AgendaItem).where(AgendaItem.meeting_id == meeting.id).order_by(AgendaItem.position)
        )
    )
    item_ids = [r.item_id for r in rows if r.item_id]
    items = list(session.scalars(select(GovernanceItem).where(GovernanceItem.id.in_(item_ids or [0]))))
    views = {v.id: v for v in describe(session, items, today)}
    case_ids = {c for r in rows for c in (r.case_ids or [])} | {r.case_id for r in rows if r.case_id}
    codes = dict(
        session.execute(select(Case.id, Case.tracking_code).where(Case.id.in_(case_ids or {0}))).all()
    )
    names = people.names_of(session, {meeting.area_code})
    return MeetingView(
        id=meeting.id,
        level=meeting.level,
        area_code=meeting.area_code,
        area=names.get(meeting.area_code, meeting.area_code),
        community_code=meeting.community_code,
        held_on=meeting.held_on,
        chair=meeting.chair,
        attendees=dict(meeting.attendees or {}),
        minutes=meeting.minutes,
        state=meeting.state,
        agenda=[
            AgendaView(
                id=r.id,
                position=r.position,
                source=r.source,
                title=r.title,
                item=views.get(r.item_id) if r.item_id else None,
                case_count=len(r.case_ids or []),
                category_code=r.category_code,
                outcome=r.outcome,
                outcome_note=r.outcome_note,
                due_on=r.due_on,
                case_tracking_code=codes.get(r.case_id) if r.case_id else None,
                open_cases=[codes[c] for c in r.case_ids or [] if c in codes],
            )
            for r in rows
        ],
    )
