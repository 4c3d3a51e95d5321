"""The figures of community governance: per compound, community, street and city, as of a day.

- **raised**: items of the lists raised by then (demands, wishes; resources are counted apart);
- **claimed**: of them, claimed by then (认领/领办), whoever claimed;
- **closed off**: closed off by then (销号);
- **overdue**: not closed off by then and past their due date;
- **share answered**: (claimed or closed off) ÷ raised: the items somebody took on or settled.

Also the round tables held per compound per month, and the published headline (DOMAIN.md): items
claimed and closed off at compound level (by a party member or a compound's branch), demand-list
items claimed and closed off by co-building units, demands and small wishes collected, co-building
agreements, resource-list items, demands claimed through a resource, cadres registered (双报到) and
service posts claimed, compound party branches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from geo.community.lists import check_day
from geo.community.models import (
    CoBuildingAgreement,
    CompoundParty,
    GovernanceItem,
    PartyMember,
    RoundTable,
    ServicePost,
)

CHINA = ZoneInfo("Asia/Shanghai")
GROUPS = ("compound", "community", "street", "city")
CITY = "421281"


@dataclass(frozen=True)
class ItemFigures:
    """One area's figures."""

    area_code: str
    raised: int
    claimed: int
    closed: int
    overdue: int
    answered: int

    @property
    def share_answered(self) -> float | None:
        """(claimed or closed off) ÷ raised; None where nothing was raised."""
        return self.answered / self.raised if self.raised else None


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, CHINA)


def item_figures(
    session: Session,
    group_by: str = "community",
    as_of: date | None = None,
    raised_from: date | None = None,
    area_prefix: str | None = None,
) -> list[ItemFigures]:
    """The figures per area, as of the end of `as_of` (China time), of items raised from `raised_from`."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by {group_by!r} is not one of {GROUPS}")
    as_of = as_of or datetime.now(CHINA).date()
    check_day(as_of, "as_of")
    check_day(raised_from, "from")
    end = _end_of(as_of)
    g = GovernanceItem
    area = {
        "compound": func.coalesce(g.compound_code, g.community_code),
        "community": g.community_code,
        "street": g.street_code,
        "city": literal(CITY),
    }[group_by]
    claimed = and_(g.claimed_at.is_not(None), g.claimed_at < end)
    closed = and_(g.closed_at.is_not(None), g.closed_at < end)
    overdue = and_(~closed, g.due_on.is_not(None), g.due_on < as_of)
    query: Any = (
        select(
            area.label("area"),
            func.count(),
            func.sum(case((claimed, 1), else_=0)),
            func.sum(case((closed, 1), else_=0)),
            func.sum(case((overdue, 1), else_=0)),
            func.sum(case((or_(claimed, closed), 1), else_=0)),
        )
        .where(g.list != "resource", g.raised_at < end)
        .group_by(area)
        .order_by(area)
    )
    if raised_from is not None:
        query = query.where(g.raised_at >= datetime.combine(raised_from, time.min, CHINA))
    if area_prefix:
        query = query.where(g.community_code.startswith(area_prefix[:12]))
    return [
        ItemFigures(a, n, int(c or 0), int(d or 0), int(o or 0), int(s or 0))
        for a, n, c, d, o, s in session.execute(query)
    ]


@dataclass(frozen=True)
class MeetingMonth:
    """Round tables of one month: compounds that held one, compound meetings, big round tables."""

    month: str  # YYYY-MM
    compounds_meeting: int
    compound_meetings: int
    big_meetings: int


def meetings_by_month(session: Session, start: date, end: date) -> list[MeetingMonth]:
    """Round tables held per month between two days (inclusive)."""
    month = func.to_char(RoundTable.held_on, "YYYY-MM")
    rows = session.execute(
        select(
            month,
            func.count(func.distinct(case((RoundTable.level == "compound", RoundTable.area_code)))),
            func.sum(case((RoundTable.level == "compound", 1), else_=0)),
            func.sum(case((RoundTable.level == "community", 1), else_=0)),
        )
        .where(RoundTable.held_on >= start, RoundTable.held_on <= end, RoundTable.state == "held")
        .group_by(month)
        .order_by(month)
    )
    return [MeetingMonth(m, int(c), int(n or 0), int(b or 0)) for m, c, n, b in rows]


def meetings_per_compound(session: Session, start: date, end: date) -> dict[tuple[str, str], int]:
    """(compound, YYYY-MM) → compound round tables held."""
    month = func.to_char(RoundTable.held_on, "YYYY-MM")
    rows = session.execute(
        select(RoundTable.area_code, month, func.count())
        .where(
            RoundTable.level == "compound",
            RoundTable.state == "held",
            RoundTable.held_on >= start,
            RoundTable.held_on <= end,
        )
        .group_by(RoundTable.area_code, month)
    )
    return {(a, m): int(n) for a, m, n in rows}


@dataclass(frozen=True)
class Headline:
    """The published figures (DOMAIN.md), as the demo and a real city report them."""

    branches: int
    compound_claimed: int
    compound_closed: int
    unit_claimed: int
    unit_closed: int
    demands: int
    wishes: int
    agreements: int
    resources: int
    resource_claims: int
    cadres: int
    posts: int

    #: Figures published as "at least" (1,500+); the others are exact counts.
    AT_LEAST = ("compound_claimed", "compound_closed", "unit_claimed", "unit_closed", "cadres", "posts")

    def published(self) -> dict[str, str]:
        """Each figure in the published form: 1,500+, 870+ for the "at least" ones, else exact."""
        out = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = published_form(value) if name in self.AT_LEAST else f"{value:,}"
        return out


def published_form(n: int) -> str:
    """A count as published: down to the hundred from 1,000 (else the ten), with + if rounded."""
    step = 100 if n >= 1000 else 10
    floor = n // step * step
    return f"{floor:,}+" if floor != n else f"{n:,}"


def headline(session: Session, as_of: date | None = None) -> Headline:
    """The published headline as of the end of a day (default: now)."""
    check_day(as_of, "as_of")
    end = _end_of(as_of or datetime.now(CHINA).date())
    g = GovernanceItem
    claimed = and_(g.claimed_at.is_not(None), g.claimed_at < end)
    closed = and_(g.closed_at.is_not(None), g.closed_at < end)
    at_compound = g.claimer_kind.in_(("member", "branch"))
    by_unit = and_(g.claimer_kind == "unit", g.list == "demand")

    def count(*where: Any) -> Any:
        return func.sum(case((and_(*where), 1), else_=0)).cast(Integer)

    row = session.execute(
        select(
            count(claimed, at_compound),
            count(closed, claimed, at_compound),
            count(claimed, by_unit),
            count(closed, claimed, by_unit),
            count(g.list == "demand"),
            count(g.list == "wish"),
            count(g.list == "resource"),
            count(claimed, g.list == "demand", g.resource_id.is_not(None)),
        ).where(g.raised_at < end)
    ).one()
    values = [int(v or 0) for v in row]
    return Headline(
        branches=session.scalar(
            select(func.count()).select_from(CompoundParty).where(CompoundParty.party == "branch")
        )
        or 0,
        compound_claimed=values[0],
        compound_closed=values[1],
        unit_claimed=values[2],
        unit_closed=values[3],
        demands=values[4],
        wishes=values[5],
        agreements=session.scalar(
            select(func.count())
            .select_from(CoBuildingAgreement)
            .where(CoBuildingAgreement.signed_on < end.date())
        )
        or 0,
        resources=values[6],
        resource_claims=values[7],
        cadres=session.scalar(
            select(func.count()).select_from(PartyMember).where(PartyMember.registered_on < end.date())
        )
        or 0,
        posts=session.scalar(
            select(func.count()).select_from(ServicePost).where(ServicePost.claimed_on < end.date())
        )
        or 0,
    )


# -- the monthly report and the big screen ----------------------------------------------------------
#: The report's headers for these tables (Chinese first; English gives the codes).
REPORT_COLUMNS_ZH = {
    "area": "区域",
    "raised": "收集",
    "claimed": "认领",
    "closed_off": "销号",
    "overdue_items": "超期",
    "share_answered": "响应率",
    "compounds": "小区数",
    "compounds_meeting": "召开圆桌会的小区",
    "compound_meetings": "小区圆桌会",
    "big_meetings": "大圆桌会",
}
REPORT_TABLES_ZH = {"community governance": "社区治理", "round tables": "圆桌会"}


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def report_tables(session: Session, first: date) -> dict[str, Any]:
    """The monthly report's community-governance tables: the month's demands and wishes per street
    and for the city (claimed, closed off, overdue as of the month's end, share answered), and the
    round tables held per street."""
    import pandas as pd

    from geo.community.people import names_of
    from geo.store.models import Area

    end = _month_end(first)
    rows = item_figures(session, "street", end, raised_from=first) + item_figures(
        session, "city", end, raised_from=first
    )
    names = names_of(session, {r.area_code for r in rows}) | {CITY: "赤壁市"}
    items = pd.DataFrame(
        [
            {
                "area": names.get(r.area_code, r.area_code),
                "raised": r.raised,
                "claimed": r.claimed,
                "closed_off": r.closed,
                "overdue_items": r.overdue,
                "share_answered": _share(r.share_answered),
            }
            for r in rows
        ],
        columns=["area", "raised", "claimed", "closed_off", "overdue_items", "share_answered"],
    )
    latest = select(func.max(Area.generation_high)).scalar_subquery()
    street = func.substr(Area.code, 1, 9)
    compounds: dict[str, int] = dict(
        session.execute(
            select(street, func.count(func.distinct(Area.code)))
            .where(Area.level == "compound", Area.generation_high == latest)
            .group_by(street)
        ).all()
    )
    held = session.execute(
        select(
            RoundTable.street_code,
            func.count(func.distinct(case((RoundTable.level == "compound", RoundTable.area_code)))),
            func.sum(case((RoundTable.level == "compound", 1), else_=0)),
            func.sum(case((RoundTable.level == "community", 1), else_=0)),
        )
        .where(RoundTable.held_on >= first, RoundTable.held_on <= end, RoundTable.state == "held")
        .group_by(RoundTable.street_code)
    ).all()
    by_street = {s: (int(c), int(n or 0), int(b or 0)) for s, c, n, b in held}
    street_names = names_of(session, set(compounds))
    meeting_rows = [
        {
            "area": street_names.get(code, code),
            "compounds": int(n),
            "compounds_meeting": by_street.get(code, (0, 0, 0))[0],
            "compound_meetings": by_street.get(code, (0, 0, 0))[1],
            "big_meetings": by_street.get(code, (0, 0, 0))[2],
        }
        for code, n in sorted(compounds.items())
    ]
    meetings = pd.DataFrame(
        meeting_rows, columns=["area", "compounds", "compounds_meeting", "compound_meetings", "big_meetings"]
    )
    return {"community governance": items, "round tables": meetings}


@dataclass(frozen=True)
class ScreenFigures:
    """The big screen's community-governance block: the city's items as of a day, the month's meetings."""

    month: str
    raised: int
    claimed: int
    closed: int
    overdue: int
    share_answered: float | None
    compounds: int
    compounds_meeting: int
    big_meetings: int


def screen_figures(session: Session, first: date, as_of: date) -> ScreenFigures:
    """The city's figures as of a day and the round tables of the month that starts on `first`."""
    from geo.store.models import Area

    city = item_figures(session, "city", as_of)
    total = city[0] if city else ItemFigures(CITY, 0, 0, 0, 0, 0)
    month = next(iter(meetings_by_month(session, first, min(_month_end(first), as_of))), None)
    latest = select(func.max(Area.generation_high)).scalar_subquery()
    compounds = session.scalar(
        select(func.count(func.distinct(Area.code))).where(
            Area.level == "compound", Area.generation_high == latest
        )
    )
    return ScreenFigures(
        month=f"{first:%Y-%m}",
        raised=total.raised,
        claimed=total.claimed,
        closed=total.closed,
        overdue=total.overdue,
        share_answered=total.share_answered,
        compounds=int(compounds or 0),
        compounds_meeting=month.compounds_meeting if month else 0,
        big_meetings=month.big_meetings if month else 0,
    )


def add_to_report(report: Any, session: Session, first: date) -> Any:
    """Add the community-governance tables to a monthly report (geo.stats.Report), with their
    Chinese headers in the reports' label tables (the codes stay the English headers)."""
    from geo import stats

    stats.COLUMN_LABELS_ZH.update(
        {k: v for k, v in REPORT_COLUMNS_ZH.items() if k not in stats.COLUMN_LABELS_ZH}
    )
    stats.TABLE_LABELS_ZH.update(REPORT_TABLES_ZH)
    report.tables.update(report_tables(session, first))
    return report
