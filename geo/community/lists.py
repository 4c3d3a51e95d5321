"""The demand list (需求清单), the resource list (资源清单) and small wishes (微心愿): raise, match, claim
(认领/领办), progress notes and close off (销号) with a photo or a note; due dates and the overdue flag.

An item is open until someone claims it (a co-building unit, a registered party member, or the
compound's party branch), claimed until it is closed off; it is overdue while not closed off after
its due date. A compound's item escalated to the big round table is worked at community level.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from geo.access import CommunityAction, Seat, community_filter, may_community, require_community
from geo.accounts import Actor
from geo.community import people
from geo.community.models import CLAIMER_KINDS, LISTS, GovernanceItem, ItemNote
from geo.errors import InvalidInput, InvalidTransition, NotFound
from geo.photos import PhotoLimits, ingest_photo
from geo.storage import BlobStore

#: The kinds of need and offer, shared by the three lists (a demand matches resources of its kind).
KINDS = (
    "elderly",  # 养老助老
    "children",  # 儿童关爱
    "environment",  # 环境卫生
    "facilities",  # 设施维修
    "safety",  # 平安建设
    "health",  # 医疗健康
    "culture",  # 文体活动
    "employment",  # 就业帮扶
    "legal",  # 法律服务
    "greening",  # 绿化美化
)
#: A case category's class → the kind of item an agenda item about it becomes (部件/事件 classes).
CATEGORY_KINDS = {"C01": "facilities", "C02": "facilities", "C03": "environment", "C04": "greening"}


#: The days a meeting, a due date or a figure may be on (a typo of a year is refused, not stored).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


def check_day(day: date | None, field: str) -> None:
    """Refuse a day outside FIRST_DAY..LAST_DAY, naming the field."""
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInput(f"{field} must be between {FIRST_DAY} and {LAST_DAY}", field=field)


def kind_of_category(category_code: str | None) -> str:
    """The item kind of a case category (facilities by default: most components are something broken)."""
    if not category_code:
        return "facilities"
    if category_code.startswith("E01"):
        return "environment"
    if category_code.startswith("E05"):
        return "safety"
    return CATEGORY_KINDS.get(category_code[:3], "facilities")


def overdue_clause(today: date) -> ColumnElement[bool]:
    """SQL: not closed off after its due date."""
    return and_(GovernanceItem.state != "closed", GovernanceItem.due_on < today)


def is_overdue(item: GovernanceItem, today: date) -> bool:
    """Whether the item is past its due date and not closed off (the same rule as `overdue_clause`)."""
    return item.state != "closed" and item.due_on is not None and item.due_on < today


def get_item(session: Session, actor: Actor, seat: Seat, item_id: int) -> GovernanceItem:
    """An item this person may read (one they may not looks as if it did not exist)."""
    item = session.get(GovernanceItem, item_id)
    if item is None or not may_community(
        actor, seat, CommunityAction.read, item.community_code, item.compound_code
    ):
        raise NotFound(f"no item {item_id}", field="item")
    return item


def _require(actor: Actor, seat: Seat, action: CommunityAction, item: GovernanceItem) -> None:
    # An escalated item is the community's: its staff work it (the secretary still reads it).
    compound = item.compound_code if item.level == "compound" else None
    require_community(actor, seat, action, item.community_code, compound)


def note(
    session: Session,
    item: GovernanceItem,
    by: str,
    text: str,
    kind: str = "progress",
    now: datetime | None = None,
    photo_key: str | None = None,
) -> ItemNote:
    """Append a note to the item's history (raise, claim, progress, escalate, close)."""
    row = ItemNote(
        item_id=item.id, at=now or datetime.now(UTC), by=by, kind=kind, text=text, photo_key=photo_key
    )
    session.add(row)
    return row


def raise_item(
    session: Session,
    actor: Actor,
    seat: Seat,
    list_name: str,
    area_code: str,
    kind: str,
    title: str,
    description: str = "",
    raised_by: str = "",
    due_on: date | None = None,
    offered_by_id: int | None = None,
    now: datetime | None = None,
) -> GovernanceItem:
    """Enter a demand, a resource or a small wish for a compound (or, a resource, a community)."""
    if list_name not in LISTS:
        raise InvalidInput(f"list {list_name!r} is not one of {', '.join(LISTS)}", field="list")
    if kind not in KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(KINDS)}", field="kind")
    if not title.strip():
        raise InvalidInput("an item needs a title: what is needed or offered", field="title")
    check_day(due_on, "due_on")
    where = people.place(session, area_code)
    compound = where.code if where.level == "compound" else None
    if compound is None and list_name != "resource":
        raise InvalidInput("a demand or a wish belongs to a compound", field="compound")
    require_community(actor, seat, CommunityAction.raise_item, where.community_code, compound)
    if offered_by_id is not None:
        people.co_unit(session, offered_by_id)
    now = now or datetime.now(UTC)
    item = GovernanceItem(
        list=list_name,
        compound_code=compound,
        community_code=where.community_code,
        street_code=where.street_code,
        kind=kind,
        title=title.strip(),
        description=description.strip(),
        raised_by=raised_by.strip(),
        raised_at=now,
        recorded_by=actor.username,
        level="compound" if compound else "community",
        offered_by_id=offered_by_id,
        due_on=due_on,
        state="open",
    )
    session.add(item)
    session.flush()
    note(session, item, actor.username, raised_by.strip(), "raise", now)
    return item


@dataclass(frozen=True)
class Claimer:
    """Who claims an item: a co-building unit, a registered party member or a compound's branch."""

    kind: str  # unit, member, branch
    unit_id: int | None = None
    member_id: int | None = None
    compound_code: str | None = None


def claimer_name(session: Session, item: GovernanceItem) -> str:
    """Who claimed the item, as people say it (a unit's name, a member's name, the branch)."""
    if item.claimer_kind == "unit" and item.claimer_unit_id:
        return people.co_unit(session, item.claimer_unit_id).name
    if item.claimer_kind == "member" and item.claimer_member_id:
        return people.member(session, item.claimer_member_id).name
    if item.claimer_kind == "branch" and item.claimer_compound_code:
        names = people.names_of(session, {item.claimer_compound_code})
        return names.get(item.claimer_compound_code, item.claimer_compound_code) + "党支部"
    return ""


def _check_claimer(session: Session, item: GovernanceItem, claimer: Claimer) -> None:
    if claimer.kind not in CLAIMER_KINDS:
        raise InvalidInput(
            f"claimer {claimer.kind!r} is not one of {', '.join(CLAIMER_KINDS)}", field="claimer"
        )
    if claimer.kind == "unit":
        if claimer.unit_id is None:
            raise InvalidInput("choose the co-building unit that claims it", field="unit")
        people.co_unit(session, claimer.unit_id)
    elif claimer.kind == "member":
        if claimer.member_id is None:
            raise InvalidInput("choose the registered member who claims it", field="member")
        member = people.member(session, claimer.member_id)
        if member.compound_code[:12] != item.community_code:
            raise InvalidInput("the member is registered in another community", field="member")
    elif not claimer.compound_code:
        raise InvalidInput("a branch claims for its compound", field="compound")


def claim(
    session: Session,
    actor: Actor,
    seat: Seat,
    item: GovernanceItem,
    claimer: Claimer,
    due_on: date,
    resource_id: int | None = None,
    text: str = "",
    now: datetime | None = None,
) -> GovernanceItem:
    """Record that a unit, a member or a branch claims (认领/领办) the item, to be done by `due_on`."""
    _require(actor, seat, CommunityAction.claim, item)
    if item.state != "open":
        raise InvalidTransition(
            f"item {item.id} is {item.state}; only an open item can be claimed", field="item"
        )
    if item.list == "resource":
        raise InvalidInput("a resource is offered, not claimed: match it to a demand", field="item")
    now = now or datetime.now(UTC)
    check_day(due_on, "due_on")
    if due_on < now.date():
        raise InvalidInput("the due date is in the past", field="due_on")
    _check_claimer(session, item, claimer)
    if resource_id is not None:
        resource = session.get(GovernanceItem, resource_id)
        if resource is None or resource.list != "resource" or resource.community_code != item.community_code:
            raise InvalidInput("that resource is not offered to this community", field="resource")
        if claimer.kind == "unit" and resource.offered_by_id is not None:
            claimer = Claimer("unit", unit_id=resource.offered_by_id)
    item.state = "claimed"
    item.claimer_kind = claimer.kind
    item.claimer_unit_id = claimer.unit_id if claimer.kind == "unit" else None
    item.claimer_member_id = claimer.member_id if claimer.kind == "member" else None
    item.claimer_compound_code = claimer.compound_code if claimer.kind == "branch" else None
    item.resource_id = resource_id
    item.claimed_at = now
    item.due_on = due_on
    session.flush()
    note(session, item, actor.username, text or claimer_name(session, item), "claim", now)
    return item


def add_progress(
    session: Session, actor: Actor, seat: Seat, item: GovernanceItem, text: str, now: datetime | None = None
) -> ItemNote:
    """A progress note (进展) on an item."""
    _require(actor, seat, CommunityAction.note, item)
    if not text.strip():
        raise InvalidInput("a progress note needs words", field="text")
    row = note(session, item, actor.username, text.strip(), "progress", now)
    session.flush()
    return row


def close_off(
    session: Session,
    blobs: BlobStore,
    actor: Actor,
    seat: Seat,
    item: GovernanceItem,
    text: str = "",
    photo: bytes | None = None,
    now: datetime | None = None,
    limits: PhotoLimits | None = None,
    reason: str = "close",
) -> GovernanceItem:
    """Close the item off (销号) with its evidence: a photo (stored like a case's), a note, or both."""
    _require(actor, seat, CommunityAction.close_off, item)
    if item.state == "closed":
        raise InvalidTransition(f"item {item.id} is closed off already", field="item")
    if not photo and not text.strip():
        raise InvalidInput("closing off needs evidence: a photo or a note", field="photo")
    key = ingest_photo(photo, blobs, limits or PhotoLimits()).public_key if photo else None
    now = now or datetime.now(UTC)
    item.state = "closed"
    item.closed_at = now
    item.close_note = text.strip() or None
    item.close_photo_key = key
    item.closed_by = actor.username
    session.flush()
    note(session, item, actor.username, text.strip(), reason, now, photo_key=key)
    return item


def escalate(
    session: Session,
    actor: Actor,
    seat: Seat,
    item: GovernanceItem,
    text: str = "",
    now: datetime | None = None,
) -> GovernanceItem:
    """Send a compound's item to the community's big round table (大圆桌会)."""
    _require(actor, seat, CommunityAction.hold_meeting, item)
    if item.level == "community" or item.state == "closed":
        raise InvalidTransition(f"item {item.id} is not a compound's open item", field="item")
    item.level = "community"
    if item.state == "claimed":  # an overdue claim the compound could not settle starts again
        item.state = "open"
    session.flush()
    note(session, item, actor.username, text, "escalate", now)
    return item


def matches(session: Session, item: GovernanceItem) -> list[GovernanceItem]:
    """Resource items of the same kind offered to the item's community, not used up (open)."""
    return list(
        session.scalars(
            select(GovernanceItem)
            .where(
                GovernanceItem.list == "resource",
                GovernanceItem.kind == item.kind,
                GovernanceItem.community_code == item.community_code,
                GovernanceItem.state == "open",
            )
            .order_by(GovernanceItem.raised_at, GovernanceItem.id)
        )
    )


@dataclass
class ItemFilter:
    """What a list page or the API asks for."""

    list: str | None = None
    community: str | None = None
    compound: str | None = None
    kind: str | None = None
    state: str | None = None
    overdue: bool | None = None
    level: str | None = None
    q: str | None = None
    page: int = 1
    page_size: int = 50


def _filtered(actor: Actor, seat: Seat, f: ItemFilter, today: date) -> Select:
    query = select(GovernanceItem).where(
        community_filter(actor, seat, GovernanceItem.community_code, GovernanceItem.compound_code)
    )
    for column, value in (
        (GovernanceItem.list, f.list),
        (GovernanceItem.community_code, f.community),
        (GovernanceItem.compound_code, f.compound),
        (GovernanceItem.kind, f.kind),
        (GovernanceItem.state, f.state),
        (GovernanceItem.level, f.level),
    ):
        if value:
            query = query.where(column == value)
    if f.overdue is not None:
        query = query.where(overdue_clause(today) if f.overdue else ~overdue_clause(today))
    if f.q:
        like = f"%{f.q.strip()}%"
        query = query.where(or_(GovernanceItem.title.ilike(like), GovernanceItem.description.ilike(like)))
    return query


def search(
    session: Session, actor: Actor, seat: Seat, f: ItemFilter, today: date | None = None
) -> tuple[int, list[GovernanceItem]]:
    """The items this person reads that match, newest first, one page; and how many match in all."""
    today = today or date.today()
    query = _filtered(actor, seat, f, today)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(GovernanceItem.raised_at.desc(), GovernanceItem.id.desc())
        .offset((max(f.page, 1) - 1) * f.page_size)
        .limit(f.page_size)
    )
    return total, list(rows)


def history(session: Session, item: GovernanceItem) -> list[ItemNote]:
    """The item's notes, oldest first."""
    return list(
        session.scalars(
            select(ItemNote).where(ItemNote.item_id == item.id).order_by(ItemNote.at, ItemNote.id)
        )
    )
