"""What the command-centre screen (指挥中心大屏) shows: today's flow, disposal rate, live cases, units.

Everything here is aggregate or public-level data (no contacts, no names of people): the screen
runs unattended on the intranet without signing in. Days and months are counted in Asia/Shanghai.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from geo import stats
from geo.areas import current_generation
from geo.cases.views import overdue_clause
from geo.cases.workflow import OPEN
from geo.store.models import Area, Case, Category, ResponsibilityLayer, Unit

CHINA = ZoneInfo("Asia/Shanghai")
# The figures of "today": the reports' indicators of that one day (geo/stats.py), so the screen
# counts dispatched cases (a re-dispatch moves a case, it does not add one), never events.
TODAY_FIGURES: tuple[str, ...] = ("reported", "verified", "filed", "dispatched", "handled", "closed")
# The screen shows the indicator of the reports (geo/stats.py), never a definition of its own.
DISPOSAL_DEFINITION = f"disposal rate (处置率) = {stats.BY_NAME['disposal_rate'].formula}"
OPEN_STATES = sorted(s.value for s in OPEN)


class Window(BaseModel):
    """A half-open time range [start, end) and the local period it stands for."""

    start: datetime
    end: datetime
    label: str = Field(description="the local day or month, e.g. 2026-11-23 or 2026-11")


class DisposalRate(BaseModel):
    """Of the cases dispatched in a window, the share closed (处置率); `rate` is None when
    nothing was dispatched. `closed` counts those cases (closed whenever), not closes in it."""

    closed: int
    dispatched: int
    rate: float | None
    window: Window
    definition: str = DISPOSAL_DEFINITION


class Summary(BaseModel):
    """The screen's headline figures."""

    now: datetime
    today: Window
    counts: dict[str, int] = Field(description="today's indicators: " + ", ".join(TODAY_FIGURES))
    disposal: DisposalRate
    overdue: int
    unresolved: int


class UnitRank(BaseModel):
    """A unit's disposal rate for the month (单位处置率排名)."""

    rank: int
    unit_code: str
    name: str
    name_en: str | None
    dispatched: int
    closed: int
    rate: float


class LatestCase(BaseModel):
    """A recent case as the screen shows it: public fields and why it went where it went."""

    tracking_code: str
    reported_at: datetime
    state: str
    category_code: str
    category_name: str
    category_name_en: str | None
    description: str
    community: str | None
    unit_code: str | None
    unit_name: str | None
    overdue: bool
    routing_status: str | None
    explanation: list[str] = Field(description="the routing rules that fired, in words")


# -- windows ------------------------------------------------------------------------------------
def day_window(now: datetime) -> Window:
    """Today in Asia/Shanghai, as a UTC range."""
    local = now.astimezone(CHINA).date()
    start = datetime.combine(local, time(), CHINA)
    return Window(
        start=start.astimezone(UTC), end=(start + timedelta(days=1)).astimezone(UTC), label=local.isoformat()
    )


def month_window(now: datetime, month: str | None = None) -> Window:
    """A calendar month in Asia/Shanghai ("YYYY-MM"; default: the month of `now`)."""
    if month:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    else:
        first = now.astimezone(CHINA).date().replace(day=1)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return Window(
        start=datetime.combine(first, time(), CHINA).astimezone(UTC),
        end=datetime.combine(following, time(), CHINA).astimezone(UTC),
        label=f"{first:%Y-%m}",
    )


# -- figures ------------------------------------------------------------------------------------
def today_counts(session: Session, window: Window) -> dict[str, int]:
    """The window's flow and cohort counts (reported, verified, ..., dispatched cases, closed)."""
    first, last = _days(window)
    row = stats.totals(session, start=first, end=last)
    return {figure: int(row[figure]) for figure in TODAY_FIGURES}


def _days(window: Window) -> tuple[date, date]:
    """The window's first and last local day (a window covers whole Asia/Shanghai days)."""
    return (window.start.astimezone(CHINA).date(), (window.end.astimezone(CHINA) - timedelta(days=1)).date())


def disposal_rate(session: Session, window: Window) -> DisposalRate:
    """The disposal rate indicator (`stats`: dispatched cases closed ÷ dispatched) over the window."""
    first, last = _days(window)
    row = stats.totals(session, start=first, end=last)
    rate = row["disposal_rate"]
    return DisposalRate(
        closed=int(row["dispatched_closed"]),
        dispatched=int(row["dispatched"]),
        rate=None if rate is None else float(rate),
        window=window,
    )


def units_ranking(session: Session, window: Window, limit: int = 20) -> list[UnitRank]:
    """The first `limit` units of the reports' ranking by disposal rate over the window."""
    first, last = _days(window)
    ranked = stats.unit_ranking(session, start=first, end=last).head(limit)
    codes = [code for code in ranked["unit"] if code is not None]
    english = dict(session.execute(select(Unit.code, Unit.name_en).where(Unit.code.in_(codes))).all())
    return [
        UnitRank(
            rank=int(r["rank"]),
            unit_code=r["unit"],
            name=r["name"],
            name_en=english.get(r["unit"]),
            dispatched=int(r["dispatched"]),
            closed=int(r["dispatched_closed"]),
            rate=float(r["disposal_rate"]),
        )
        for r in ranked.to_dict(orient="records")
        if r["unit"] is not None
    ]


def summary(session: Session, now: datetime | None = None, month: str | None = None) -> Summary:
    """Today's counts, the month's disposal rate, overdue and unresolved cases."""
    now = now or datetime.now(UTC)
    today = day_window(now)
    overdue = session.scalar(select(func.count()).select_from(Case).where(overdue_clause(now))) or 0
    unresolved = (
        session.scalar(select(func.count()).select_from(Case).where(Case.state.in_(OPEN_STATES))) or 0
    )
    return Summary(
        now=now,
        today=today,
        counts=today_counts(session, today),
        disposal=disposal_rate(session, month_window(now, month)),
        overdue=overdue,
        unresolved=unresolved,
    )


# -- cases --------------------------------------------------------------------------------------
def _explanation(routing: dict | None) -> list[str]:
    """The rule texts of a stored routing decision (seeded history keeps one rule name)."""
    if not routing:
        return []
    texts = [str(step.get("text", "")) for step in routing.get("rules") or [] if step.get("text")]
    if not texts and routing.get("reason"):
        texts = [str(routing["reason"])]
    if not texts and routing.get("rule"):
        texts = [str(routing["rule"])]
    return texts


Explain = Callable[[dict | None], list[str]]


def latest_cases(
    session: Session, limit: int = 10, now: datetime | None = None, explain: Explain | None = None
) -> list[LatestCase]:
    """The newest reports with their routing explanation (public fields only).

    `explain` turns a stored routing decision into the sentences a person reads (the pages pass
    their language's; the default is the decision's own English texts).
    """
    now = now or datetime.now(UTC)
    explain = explain or _explanation
    generation = current_generation(session) or 0
    community = aliased(Area)
    rows = session.execute(
        select(
            Case,
            Category.name,
            Category.name_en,
            Unit.name,
            community.name,
            overdue_clause(now).label("overdue"),
        )
        .join(Category, Category.code == Case.category_code)
        .outerjoin(Unit, Unit.code == Case.unit_code)
        .outerjoin(
            community,
            and_(
                community.code == Case.community_code,
                community.level == "community",
                community.generation_low <= generation,
                community.generation_high >= generation,
            ),
        )
        .order_by(Case.reported_at.desc(), Case.id.desc())
        .limit(limit)
    ).all()
    return [
        LatestCase(
            tracking_code=case.tracking_code,
            reported_at=case.reported_at,
            state=case.state,
            category_code=case.category_code,
            category_name=cat_name,
            category_name_en=cat_en,
            description=(case.description or "")[:120],
            community=community_name,
            unit_code=case.unit_code,
            unit_name=unit_name,
            overdue=bool(overdue),
            routing_status=(case.routing or {}).get("status"),
            explanation=explain(case.routing),
        )
        for case, cat_name, cat_en, unit_name, community_name, overdue in rows
    ]


def live_cases(session: Session, limit: int = 2000, now: datetime | None = None) -> dict:
    """Unresolved cases as GeoJSON points (newest first, at most `limit`), with the total."""
    now = now or datetime.now(UTC)
    where = and_(Case.state.in_(OPEN_STATES), Case.location.is_not(None))
    total = session.scalar(select(func.count()).select_from(Case).where(where)) or 0
    rows = session.execute(
        select(
            Case.tracking_code,
            Case.state,
            Case.category_code,
            Case.grid_code,
            Case.reported_at,
            func.ST_X(Case.location),
            func.ST_Y(Case.location),
            overdue_clause(now).label("overdue"),
        )
        .where(where)
        .order_by(Case.reported_at.desc(), Case.id.desc())
        .limit(limit)
    ).all()
    features = [
        {
            "type": "Feature",
            # GeoJSON order: longitude, latitude (WGS-84).
            "geometry": {"type": "Point", "coordinates": [round(x, 7), round(y, 7)]},
            "properties": {
                "tracking_code": code,
                "state": state,
                "category_code": category,
                "grid_code": grid,
                "reported_at": reported_at.isoformat(),
                "overdue": bool(overdue),
            },
        }
        for code, state, category, grid, reported_at, x, y, overdue in rows
    ]
    return {
        "type": "FeatureCollection",
        # The server's clock, so the screen tells new cases by it, not by its own clock.
        "now": now.isoformat(),
        "total": total,
        "limit": limit,
        "truncated": total > len(features),
        "features": features,
    }


def grid_boundaries(session: Session, tolerance_deg: float = 0.00001) -> dict:
    """The current generation's grids as GeoJSON, lightly simplified for drawing.

    The tolerance is in degrees (1e-5° is about 1 m here); each polygon is simplified on its
    own, so shared edges may part by less than that: fine for a screen, not for analysis.
    """
    generation = current_generation(session) or 0
    rows = session.execute(
        select(
            Area.code,
            Area.name,
            Area.parent_code,
            func.ST_AsGeoJSON(func.ST_SimplifyPreserveTopology(Area.geom, tolerance_deg), 6),
            func.ST_X(func.ST_PointOnSurface(Area.geom)),
            func.ST_Y(func.ST_PointOnSurface(Area.geom)),
        )
        .where(Area.level == "grid", Area.generation_low <= generation, Area.generation_high >= generation)
        .order_by(Area.code)
    ).all()
    return {
        "type": "FeatureCollection",
        "generation": generation,
        "features": [
            {
                "type": "Feature",
                "geometry": json.loads(geometry),
                # `label`: a point inside the grid (lon, lat) where the screen writes its count.
                "properties": {
                    "code": code,
                    "name": name,
                    "community_code": parent,
                    "label": [round(x, 6), round(y, 6)],
                },
            }
            for code, name, parent, geometry, x, y in rows
        ],
    }


def orientation(session: Session, tolerance_deg: float = 0.00002) -> dict:
    """What helps a reader find a place on the screen's map: the thematic layers (canal, lake,
    roads, parks: `responsibility_layer` as drawn, not buffered) and each current community's
    name at a point inside it (a centroid can fall outside), both as GeoJSON in lon/lat."""
    generation = current_generation(session) or 0
    layers = session.execute(
        select(
            ResponsibilityLayer.code,
            ResponsibilityLayer.name,
            ResponsibilityLayer.name_en,
            ResponsibilityLayer.kind,
            func.ST_AsGeoJSON(func.ST_SimplifyPreserveTopology(ResponsibilityLayer.geom, tolerance_deg), 6),
        ).order_by(ResponsibilityLayer.priority, ResponsibilityLayer.code)
    ).all()
    communities = session.execute(
        select(Area.code, Area.name, Area.name_en, func.ST_AsGeoJSON(func.ST_PointOnSurface(Area.geom), 6))
        .where(
            Area.level == "community", Area.generation_low <= generation, Area.generation_high >= generation
        )
        .order_by(Area.code)
    ).all()

    def collection(rows: list, keys: tuple[str, ...]) -> dict:
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": json.loads(row[-1]),
                    "properties": dict(zip(keys, row[:-1], strict=True)),
                }
                for row in rows
            ],
        }

    return {
        "layers": collection(list(layers), ("code", "name", "name_en", "kind")),
        "communities": collection(list(communities), ("code", "name", "name_en")),
    }
