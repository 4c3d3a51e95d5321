"""The agenda gridcase proposes for a round table (圆桌会), from what is open where it meets.

A compound's monthly round table, in this order:

1. **carried**: the items its last meeting left open (no outcome), in their order there;
2. **repeated problems**: the compound's open cases (located in its polygon) of one category, two or
   more, most cases first (then the oldest report first, then the category code);
3. **single open cases**, oldest report first (cases a round table already decided on are left out:
   their item, or their case's workflow, carries them);
4. **open demands** (需求清单, not claimed), oldest first;
5. **unclaimed small wishes** (微心愿), oldest first;
6. **overdue claims**, most overdue first.

A community's big round table (大圆桌会): carried items, the items escalated to it (oldest first),
its grids' repeated problems (open cases of one category in one grid, two or more), and the overdue
claims of its co-building units. Nothing is proposed twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.cases.workflow import OPEN, CaseState
from geo.community.lists import check_day, overdue_clause
from geo.community.models import AgendaItem, GovernanceItem, RoundTable
from geo.store.models import Area, Case, Category

CHINA = ZoneInfo("Asia/Shanghai")
#: Open cases a round table talks about (a merged case lives on in the one it went into).
AGENDA_CASE_STATES = sorted(s.value for s in OPEN if s is not CaseState.merged)
#: At most this many items are proposed (the carried ones always come).
AGENDA_LIMIT = 30


@dataclass
class Proposal:
    """One proposed agenda item: where it comes from, what it is about."""

    source: str  # carried, repeated_cases, open_case, open_demand, unclaimed_wish, overdue_claim, escalated
    title: str
    item_id: int | None = None
    case_ids: list[int] = field(default_factory=list)
    category_code: str | None = None
    carried_from_id: int | None = None


def last_meeting(
    session: Session, level: str, area_code: str, before: date, exclude: int | None = None
) -> RoundTable | None:
    """The latest meeting of this body held before this date."""
    query = select(RoundTable).where(
        RoundTable.level == level, RoundTable.area_code == area_code, RoundTable.held_on < before
    )
    if exclude is not None:
        query = query.where(RoundTable.id != exclude)
    return session.scalar(query.order_by(RoundTable.held_on.desc(), RoundTable.id.desc()).limit(1))


def carried(
    session: Session, level: str, area_code: str, on: date, exclude: int | None = None
) -> list[Proposal]:
    """The items the body's last meeting left without an outcome."""
    last = last_meeting(session, level, area_code, on, exclude)
    if last is None:
        return []
    rows = session.scalars(
        select(AgendaItem)
        .where(AgendaItem.meeting_id == last.id, AgendaItem.outcome.is_(None))
        .order_by(AgendaItem.position)
    )
    return [
        Proposal("carried", a.title, a.item_id, list(a.case_ids or []), a.category_code, carried_from_id=a.id)
        for a in rows
    ]


def _not_decided() -> Any:
    """SQL: cases no round table has decided on yet (a claimed, escalated, referred or closed agenda
    item took them up; the case workflow goes on without the round table)."""
    decided = select(func.unnest(AgendaItem.case_ids)).where(AgendaItem.outcome.is_not(None))
    return Case.id.not_in(decided)


def _compound_cases(
    session: Session, compound_code: str, before: datetime
) -> list[tuple[str, list[int], datetime]]:
    """The compound's open cases by category: (category, ids in report order, first report)."""
    polygon = (
        select(Area.geom)
        .where(Area.level == "compound", Area.code == compound_code)
        .order_by(Area.generation_high.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Case.id, Case.category_code, Case.reported_at)
        .where(
            func.ST_Covers(polygon, Case.location),
            Case.state.in_(AGENDA_CASE_STATES),
            _not_decided(),
            Case.reported_at < before,
        )
        .order_by(Case.reported_at, Case.id)
    ).all()
    groups: dict[str, list[int]] = {}
    first: dict[str, datetime] = {}
    for case_id, category, at in rows:
        groups.setdefault(category, []).append(case_id)
        first.setdefault(category, at)
    return [(c, ids, first[c]) for c, ids in groups.items()]


def _category_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(
        session.execute(select(Category.code, Category.name).where(Category.code.in_(sorted(codes)))).all()
    )


def _case_proposals(
    groups: list[tuple[str, list[int], datetime]], names: dict[str, str], singles: bool
) -> list[Proposal]:
    repeated = sorted((g for g in groups if len(g[1]) >= 2), key=lambda g: (-len(g[1]), g[2], g[0]))
    out = [Proposal("repeated_cases", names.get(c, c), None, ids, c) for c, ids, _ in repeated]
    if singles:
        lone = sorted((g for g in groups if len(g[1]) == 1), key=lambda g: (g[2], g[0]))
        out += [Proposal("open_case", names.get(c, c), None, ids, c) for c, ids, _ in lone]
    return out


def _items(session: Session, source: str, before: datetime, *where: Any, order: tuple) -> list[Proposal]:
    """List items raised before the meeting's day."""
    rows = session.scalars(
        select(GovernanceItem).where(GovernanceItem.raised_at < before, *where).order_by(*order)
    )  # type: ignore[arg-type]
    return [Proposal(source, i.title, i.id) for i in rows]


def propose(
    session: Session, level: str, area_code: str, on: date, exclude_meeting: int | None = None
) -> list[Proposal]:
    """The proposed agenda of a round table of this compound (or community) meeting on this day."""
    check_day(on, "on")
    before = datetime.combine(on, time.min, CHINA)
    out = carried(session, level, area_code, on, exclude_meeting)
    if level == "compound":
        groups = _compound_cases(session, area_code, before)
        out += _case_proposals(groups, _category_names(session, {g[0] for g in groups}), singles=True)
        mine = (GovernanceItem.compound_code == area_code, GovernanceItem.level == "compound")
        out += _items(
            session,
            "open_demand",
            before,
            *mine,
            GovernanceItem.list == "demand",
            GovernanceItem.state == "open",
            order=(GovernanceItem.raised_at, GovernanceItem.id),
        )
        out += _items(
            session,
            "unclaimed_wish",
            before,
            *mine,
            GovernanceItem.list == "wish",
            GovernanceItem.state == "open",
            order=(GovernanceItem.raised_at, GovernanceItem.id),
        )
        out += _items(
            session,
            "overdue_claim",
            before,
            *mine,
            GovernanceItem.state == "claimed",
            overdue_clause(on),
            order=(GovernanceItem.due_on, GovernanceItem.id),
        )
    else:
        community = (GovernanceItem.community_code == area_code, GovernanceItem.level == "community")
        out += _items(
            session,
            "escalated",
            before,
            *community,
            GovernanceItem.list != "resource",
            GovernanceItem.state == "open",
            order=(GovernanceItem.raised_at, GovernanceItem.id),
        )
        groups = _grid_cases(session, area_code, before)
        out += _case_proposals(groups, _category_names(session, {g[0] for g in groups}), singles=False)
        out += _items(
            session,
            "overdue_claim",
            before,
            GovernanceItem.community_code == area_code,
            GovernanceItem.claimer_kind == "unit",
            GovernanceItem.state == "claimed",
            overdue_clause(on),
            order=(GovernanceItem.due_on, GovernanceItem.id),
        )
    return _dedupe(out)


def _grid_cases(
    session: Session, community_code: str, before: datetime
) -> list[tuple[str, list[int], datetime]]:
    """The community's open cases by (grid, category): repeated problems of one place."""
    rows = session.execute(
        select(Case.id, Case.category_code, Case.grid_code, Case.reported_at)
        .where(
            Case.community_code == community_code,
            Case.state.in_(AGENDA_CASE_STATES),
            _not_decided(),
            Case.reported_at < before,
        )
        .order_by(Case.reported_at, Case.id)
    ).all()
    groups: dict[tuple[str, str], list[int]] = {}
    first: dict[tuple[str, str], datetime] = {}
    for case_id, category, grid, at in rows:
        key = (category, grid or "")
        groups.setdefault(key, []).append(case_id)
        first.setdefault(key, at)
    return [(k[0], ids, first[k]) for k, ids in groups.items()]


def _dedupe(proposals: list[Proposal]) -> list[Proposal]:
    seen_items: set[int] = set()
    seen_cases: set[int] = set()
    out: list[Proposal] = []
    for p in proposals:
        if p.item_id is not None and p.item_id in seen_items:
            continue
        if p.case_ids and set(p.case_ids) <= seen_cases:
            continue
        if p.item_id is not None:
            seen_items.add(p.item_id)
        seen_cases.update(p.case_ids)
        if p.source != "carried" and len(out) >= AGENDA_LIMIT:
            break
        out.append(p)
    return out


__all__ = ["AGENDA_LIMIT", "Proposal", "carried", "last_meeting", "propose"]
