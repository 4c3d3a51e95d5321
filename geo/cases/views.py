"""The read side of cases: what a reader sees of a case, built in a bounded number of queries.

A page of cases costs five queries whatever its size: the count, the page, and the photos, events
and duplicate links of all its cases at once (never one query per case). The overdue flag is the
same rule as `overdue_clause`, evaluated on the loaded row. What each reader may see (contacts,
original photos, the actions they may take) is the access policy's word (geo/access.py); routes and
pages only serialise these models.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

from geoalchemy2.shape import to_shape
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, any_, func, literal, select
from sqlalchemy.orm import Session

from geo import access
from geo.accounts import Actor
from geo.cases.intake import Suggested
from geo.cases.workflow import OPEN, CaseState, case_actions
from geo.errors import NotFound
from geo.store.models import Area, Case, CaseEvent, CaseLink, CasePhoto, ResponsibilityLayer, Unit

# Cases past due that count as overdue: open and not parked (the clock stops while parked).
OVERDUE_STATES = frozenset(s.value for s in OPEN if s is not CaseState.parked)
BIGINT_MAX = 2**63 - 1
PUBLIC_DECIMALS = 3  # 0.001° is 111 m of latitude and 97 m of longitude at Chibi's 29.7° N
# Pages past this are refused: the offset (page - 1) × page_size must stay a PostgreSQL bigint.
MAX_PAGE = 1_000_000


class PhotoView(BaseModel):
    """A photo's public copy (EXIF removed), and the original's address for those allowed."""

    id: int
    url: str
    purpose: str
    width: int
    height: int
    taken_at: datetime | None = None
    original_url: str | None = None


class EventView(BaseModel):
    """One step of the case's life."""

    at: datetime
    action: str
    from_state: str | None
    to_state: str
    actor: str | None = None
    role: str | None = None
    unit_code: str | None = None
    note: str | None = None
    data: dict | None = None


class DuplicateView(BaseModel):
    """A case suggested as a duplicate (same category, near in place and time)."""

    tracking_code: str
    distance_m: float
    hours_apart: float
    status: str


class CaseView(BaseModel):
    """The full case, for staff and the people it belongs to (redacted for the reader)."""

    id: int
    tracking_code: str
    version: int
    category_code: str
    description: str
    channel: str
    reporter_contact: str | None
    reported_by: str | None
    reported_at: datetime
    state: str
    lon: float | None
    lat: float | None
    grid_code: str | None
    community_code: str | None
    street_code: str | None
    district_code: str | None
    unit_code: str | None
    cooperating_unit_codes: list[str]
    routing: dict | None
    deadline_at: datetime | None
    deadline_provisional: bool = Field(
        default=False,
        description="the deadline falls past the loaded work calendar (counted without that year's "
        "holidays); it is recomputed when the year is loaded",
    )
    overdue: bool
    extensions: int
    extension_requested: bool
    parked_at: datetime | None
    supervised_at: datetime | None
    merged_into_id: int | None
    closed_at: datetime | None
    review_requested_at: datetime | None = Field(
        default=None, description="when the reporter's unsatisfied rating asked the centre to review it"
    )
    allowed_actions: list[str]
    photos: list[PhotoView] = []
    events: list[EventView] = []
    duplicates: list[DuplicateView] = []


class CasePage(BaseModel):
    """One page of cases."""

    total: int
    page: int
    page_size: int
    items: list[CaseView]


class PublicCaseView(BaseModel):
    """What anyone with the tracking code may see: no contacts, no people, no private photos.

    No free text either (a description can carry a name or a phone number) until moderation
    exists, and the location rounded to about 100 m.
    """

    tracking_code: str
    category_code: str
    description: str | None = Field(default=None, description="only once moderated for the public")
    state: str
    reported_at: datetime
    community_code: str | None
    lon: float | None
    lat: float | None
    photos: list[PhotoView]
    events: list[EventView]


class CheckTask(BaseModel):
    """A handled case to check on site (核查), as the inspector's phone shows it: the case with
    the names of its unit and grid, the unit's note, and the grid's outline for a small map."""

    case: CaseView
    unit_name: str | None
    grid_name: str | None
    handle_note: str | None = Field(description="what the unit wrote when it reported back (回告)")
    grid_outline: dict | None = Field(
        default=None, description="GeoJSON geometry of the grid as it was at report time (WGS-84 lon/lat)"
    )


class CaseFilter(BaseModel):
    """Filters of the case list."""

    state: list[str] = Field(default_factory=list)
    unit: str | None = None
    area: str | None = Field(default=None, description="district/street/community/grid code")
    category: str | None = None
    overdue: bool | None = None
    triage: bool | None = Field(default=None, description="only cases routing could not place")
    channel: str | None = None
    extension_requested: bool | None = Field(default=None, description="an extension request waits")
    supervised: bool | None = Field(default=None, description="under supervision (督办)")
    review_requested: bool | None = Field(
        default=None, description="the reporter rated it unsatisfied: the centre reviews it (复核)"
    )
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    page_size: int = Field(default=50, ge=1, le=500)
    sort: Literal["newest", "oldest", "deadline"] = Field(
        default="newest", description="newest or oldest report first, or nearest deadline first"
    )


# -- rules shared by SQL and Python -----------------------------------------------------------------
def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """SQL: past due, still open, not parked (the clock stops while parked)."""
    return and_(Case.deadline_at.is_not(None), Case.deadline_at < now, Case.state.in_(OVERDUE_STATES))


def is_overdue(case: Case, now: datetime) -> bool:
    """The same rule as `overdue_clause`, on a loaded case."""
    return case.deadline_at is not None and case.deadline_at < now and case.state in OVERDUE_STATES


def case_ref(ref: int | str) -> int | str:
    """A case reference from a path: an id (ASCII digits within bigint) or a tracking code."""
    if isinstance(ref, int):
        return ref
    if ref.isascii() and ref.isdigit() and int(ref) <= BIGINT_MAX:
        return int(ref)
    return ref


def location_of(case: Case) -> tuple[float | None, float | None]:
    """WGS-84 lon/lat of the case's stored point (EPSG:4326, x is the longitude)."""
    if case.location is None:
        return None, None
    point = to_shape(case.location)
    return point.x, point.y


# -- single cases ---------------------------------------------------------------------------------
def find_case(session: Session, ref: int | str) -> Case:
    """A case by id or tracking code, whoever asks."""
    ref = case_ref(ref)
    if isinstance(ref, int):
        case = session.get(Case, ref)
    else:
        case = session.scalar(select(Case).where(Case.tracking_code == ref))
    if case is None:
        raise NotFound(f"no case {ref}", field="case")
    return case


def readable_case(session: Session, actor: Actor, ref: int | str) -> Case:
    """A case this person may read (others look like they do not exist)."""
    case = find_case(session, ref)
    if not access.may_see_case(actor, access.scope_of(case)):
        raise NotFound(f"no case {ref}", field="case")
    return case


def case_detail(session: Session, actor: Actor, ref: int | str, now: datetime | None = None) -> CaseView:
    """One case with its photos, events and suggested duplicates, as this person may see it."""
    return case_views(session, actor, [readable_case(session, actor, ref)], now)[0]


def original_photo(session: Session, actor: Actor, ref: int | str, photo_id: int) -> CasePhoto:
    """A photo whose original (with EXIF) this person may have."""
    access.require(actor, access.Sight.original_photos)
    case = readable_case(session, actor, ref)
    photo = session.get(CasePhoto, photo_id)
    if photo is None or photo.case_id != case.id:
        raise NotFound(f"case {case.tracking_code} has no photo {photo_id}", field="photo")
    return photo


def public_photo(session: Session, key: str) -> CasePhoto:
    """A photo by the key of its public copy."""
    photo = session.scalar(select(CasePhoto).where(CasePhoto.public_key == key).limit(1))
    if photo is None:
        raise NotFound(f"no photo {key}", field="key")
    return photo


def public_case(session: Session, tracking_code: str) -> PublicCaseView:
    """Follow a case by its tracking code: public fields only (件件有下落)."""
    case = session.scalar(select(Case).where(Case.tracking_code == tracking_code))
    if case is None:
        raise NotFound(f"no case {tracking_code}", field="case")
    lon, lat = location_of(case)
    photos = _photos_of(session, [case.id], original=False)[case.id]
    events = [_event(e, public=True) for e in _events_of(session, [case.id])[case.id]]
    return PublicCaseView(
        tracking_code=case.tracking_code,
        category_code=case.category_code,
        state=case.state,
        reported_at=case.reported_at,
        community_code=case.community_code,
        lon=_public_degrees(lon),
        lat=_public_degrees(lat),
        photos=photos,
        events=events,
    )


def _public_degrees(value: float | None) -> float | None:
    """A coordinate for the public: 3 decimals of a degree, about 100 m here (never the doorstep)."""
    return None if value is None else round(value, PUBLIC_DECIMALS)


# -- lists ----------------------------------------------------------------------------------------
def filter_clauses(actor: Actor, filters: CaseFilter, now: datetime) -> list[ColumnElement[bool]]:
    """SQL conditions of a case list: what this person may see, narrowed by the filters."""
    clauses = [access.visible_cases(actor)]
    if filters.state:
        clauses.append(Case.state.in_(filters.state))
    if filters.unit:
        clauses.append(Case.unit_code == filters.unit)
    if filters.area:
        # Area codes are prefixes of grid codes (6 county + 3 street + 3 community + 3 grid).
        # autoescape: a '%' or '_' in the filter is a character, not a LIKE wildcard.
        clauses.append(Case.grid_code.startswith(filters.area, autoescape=True))
    if filters.category:
        clauses.append(Case.category_code == filters.category)
    if filters.overdue is not None:
        clause = overdue_clause(now)
        clauses.append(clause if filters.overdue else ~clause)
    if filters.triage:
        clauses.append(and_(Case.unit_code.is_(None), Case.state.in_([s.value for s in OPEN])))
    if filters.channel:
        clauses.append(Case.channel == filters.channel)
    if filters.extension_requested is not None:
        clauses.append(Case.extension_requested.is_(filters.extension_requested))
    if filters.supervised is not None:
        supervised = Case.supervised_at.is_not(None)
        clauses.append(supervised if filters.supervised else ~supervised)
    if filters.review_requested is not None:
        review = Case.review_requested_at.is_not(None)
        clauses.append(review if filters.review_requested else ~review)
    if filters.reported_from:
        clauses.append(Case.reported_at >= filters.reported_from)
    if filters.reported_to:
        clauses.append(Case.reported_at < filters.reported_to)
    if filters.bbox:
        minx, miny, maxx, maxy = filters.bbox
        clauses.append(func.ST_Intersects(Case.location, func.ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)))
    return clauses


#: The orders of a case list: queues work oldest first, a unit desk by nearest deadline.
ORDERS = {
    "newest": (Case.reported_at.desc(), Case.id.desc()),
    "oldest": (Case.reported_at.asc(), Case.id.asc()),
    "deadline": (Case.deadline_at.asc().nulls_last(), Case.reported_at.asc(), Case.id.asc()),
}


def list_cases(
    session: Session,
    actor: Actor,
    filters: CaseFilter,
    now: datetime | None = None,
    *,
    with_events: bool = True,
) -> CasePage:
    """Cases this person may see, filtered, ordered and paginated, in five queries (four
    `with_events=False`: for lists that show no timeline)."""
    now = now or datetime.now(UTC)
    where = and_(*filter_clauses(actor, filters, now))
    total = session.scalar(select(func.count()).select_from(Case).where(where)) or 0
    rows = session.scalars(
        select(Case)
        .where(where)
        .order_by(*ORDERS[filters.sort])
        .offset((filters.page - 1) * filters.page_size)
        .limit(filters.page_size)
    ).all()
    return CasePage(
        total=total,
        page=filters.page,
        page_size=filters.page_size,
        items=case_views(session, actor, rows, now, with_events=with_events),
    )


def latest_notes(session: Session, case_ids: Sequence[int], action: str) -> dict[int, str | None]:
    """The note of each case's latest event of this action (a return's reason), in one query."""
    if not case_ids:
        return {}
    latest = (
        select(func.max(CaseEvent.id))
        .where(CaseEvent.case_id.in_(case_ids), CaseEvent.action == action)
        .group_by(CaseEvent.case_id)
    )
    rows = session.execute(select(CaseEvent.case_id, CaseEvent.note).where(CaseEvent.id.in_(latest)))
    return {case_id: note for case_id, note in rows}


def count_cases(session: Session, actor: Actor, filters: CaseFilter, now: datetime | None = None) -> int:
    """How many of the cases this person may see match the filters (one query)."""
    where = and_(*filter_clauses(actor, filters, now or datetime.now(UTC)))
    return session.scalar(select(func.count()).select_from(Case).where(where)) or 0


def check_tasks(
    session: Session, actor: Actor, lang: str = "zh", limit: int = 50, now: datetime | None = None
) -> list[CheckTask]:
    """The handled cases this person may check now, oldest first, with names (unit, grid; English
    where `lang` is "en" and there is an English name) and each grid's outline: six queries."""
    now = now or datetime.now(UTC)
    where = and_(*filter_clauses(actor, CaseFilter(state=[CaseState.handled.value]), now))
    rows = session.scalars(select(Case).where(where).order_by(*ORDERS["oldest"]).limit(limit)).all()
    cases = [v for v in case_views(session, actor, rows, now) if "check_pass" in v.allowed_actions]
    area_ids = {c.id: c.grid_area_id for c in rows}
    english = lang == "en"
    units = {
        code: (name_en if english and name_en else name)
        for code, name, name_en in session.execute(
            select(Unit.code, Unit.name, Unit.name_en).where(Unit.code.in_({c.unit_code for c in cases}))
        )
    }
    grids = {
        area_id: (name_en if english and name_en else name, json.loads(outline))
        for area_id, name, name_en, outline in session.execute(
            select(Area.id, Area.name, Area.name_en, func.ST_AsGeoJSON(Area.geom, 6)).where(
                Area.id.in_({i for i in area_ids.values() if i is not None})
            )
        )
    }
    tasks = []
    for view in cases:
        grid = grids.get(area_ids[view.id] or -1)
        note = next((e.note for e in reversed(view.events) if e.action == "handle"), None)
        tasks.append(
            CheckTask(
                case=view,
                unit_name=units.get(view.unit_code or ""),
                grid_name=grid[0] if grid else None,
                handle_note=note,
                grid_outline=grid[1] if grid else None,
            )
        )
    return tasks


class OwnReports(CasePage):
    """A person's own reports, with the names of their units and grids (a phone shows names)."""

    unit_names: dict[str, str] = Field(default_factory=dict, description="unit code → name")
    grid_names: dict[str, str] = Field(default_factory=dict, description="grid code → name")


def own_reports(session: Session, actor: Actor, limit: int = 50, lang: str = "zh") -> OwnReports:
    """The cases a person reported, newest first (an inspector's 我的上报), with unit and grid
    names (English where `lang` is "en" and there is one): five queries."""
    rows = session.scalars(
        select(Case)
        .where(Case.reporter_account_id == actor.id)
        .order_by(Case.reported_at.desc(), Case.id.desc())
        .limit(limit)
    ).all()
    english = lang == "en"
    units = {
        code: (name_en if english and name_en else name)
        for code, name, name_en in session.execute(
            select(Unit.code, Unit.name, Unit.name_en).where(Unit.code.in_({c.unit_code for c in rows}))
        )
    }
    grids = {
        code: (name_en if english and name_en else name)
        for code, name, name_en in session.execute(
            select(Area.code, Area.name, Area.name_en).where(
                Area.id.in_({c.grid_area_id for c in rows if c.grid_area_id is not None})
            )
        )
    }
    return OwnReports(
        total=len(rows),
        page=1,
        page_size=limit,
        items=case_views(session, actor, rows),
        unit_names=units,
        grid_names=grids,
    )


def case_views(
    session: Session,
    actor: Actor,
    cases: Sequence[Case],
    now: datetime | None = None,
    *,
    with_events: bool = True,
) -> list[CaseView]:
    """Views of cases the person may read: three queries for the photos, events and links of all
    (two without the events: a queue's rows show none)."""
    now = now or datetime.now(UTC)
    ids = [c.id for c in cases]
    photos = _photos_of(session, ids, original=access.may(actor, access.Sight.original_photos))
    events = _events_of(session, ids) if with_events else defaultdict(list)
    links = _links_of(session, ids)
    return [
        _view(actor, case, now, photos[case.id], [_event(e) for e in events[case.id]], links[case.id])
        for case in cases
    ]


def new_case_view(
    actor: Actor,
    case: Case,
    event: CaseEvent,
    photos: Sequence[CasePhoto],
    links: Sequence[Suggested],
    now: datetime | None = None,
) -> CaseView:
    """The view of a case just filed, from the rows written with it (no second read): the same
    as `case_detail` would answer right after the commit."""
    original = access.may(actor, access.Sight.original_photos)
    return _view(
        actor,
        case,
        now or datetime.now(UTC),
        [_photo(p, original=original) for p in sorted(photos, key=lambda p: p.id)],
        [_event(event)],
        [_duplicate(link, link.tracking_code) for link in sorted(links, key=lambda link: link.other_case_id)],
    )


def _view(
    actor: Actor,
    case: Case,
    now: datetime,
    photos: list[PhotoView],
    events: list[EventView],
    duplicates: list[DuplicateView],
) -> CaseView:
    scope = access.scope_of(case)
    lon, lat = location_of(case)
    # Built from the database's own typed columns: no validation to pay for (a queue page makes
    # hundreds of these; validating them was a third of its server time at 10,000 open cases).
    return CaseView.model_construct(
        id=case.id,
        tracking_code=case.tracking_code,
        version=case.version,
        category_code=case.category_code,
        description=case.description,
        channel=case.channel,
        reporter_contact=case.reporter_contact
        if access.may(actor, access.Sight.reporter_contact, scope)
        else None,
        reported_by=case.reported_by if access.may(actor, access.Sight.reporter_identity, scope) else None,
        reported_at=case.reported_at,
        state=case.state,
        lon=lon,
        lat=lat,
        grid_code=case.grid_code,
        community_code=case.community_code,
        street_code=case.street_code,
        district_code=case.district_code,
        unit_code=case.unit_code,
        cooperating_unit_codes=list(case.cooperating_unit_codes or []),
        routing=case.routing,
        deadline_at=case.deadline_at,
        deadline_provisional=case.deadline_provisional,
        overdue=is_overdue(case, now),
        extensions=case.extensions,
        extension_requested=case.extension_requested,
        parked_at=case.parked_at,
        supervised_at=case.supervised_at,
        merged_into_id=case.merged_into_id,
        closed_at=case.closed_at,
        review_requested_at=case.review_requested_at,
        allowed_actions=access.actions_for(actor, case_actions(case), scope),
        photos=photos,
        events=events,
        duplicates=duplicates,
    )


def _photos_of(session: Session, ids: Iterable[int], *, original: bool) -> dict[int, list[PhotoView]]:
    found: dict[int, list[PhotoView]] = defaultdict(list)
    ids = list(ids)
    if not ids:
        return found
    for p in session.scalars(select(CasePhoto).where(CasePhoto.case_id.in_(ids)).order_by(CasePhoto.id)):
        found[p.case_id].append(_photo(p, original=original))
    return found


def _photo(p: CasePhoto, *, original: bool) -> PhotoView:
    return PhotoView.model_construct(
        id=p.id,
        url=f"/api/v1/photos/{p.public_key}",
        purpose=p.purpose,
        width=p.width,
        height=p.height,
        taken_at=p.taken_at,
        original_url=f"/api/v1/cases/{p.case_id}/photos/{p.id}/original" if original else None,
    )


def _events_of(session: Session, ids: Iterable[int]) -> dict[int, list[CaseEvent]]:
    found: dict[int, list[CaseEvent]] = defaultdict(list)
    ids = list(ids)
    if not ids:
        return found
    for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(ids)).order_by(CaseEvent.id)):
        found[e.case_id].append(e)
    return found


def _links_of(session: Session, ids: Iterable[int]) -> dict[int, list[DuplicateView]]:
    found: dict[int, list[DuplicateView]] = defaultdict(list)
    ids = list(ids)
    if not ids:
        return found
    rows = session.execute(
        select(CaseLink, Case.tracking_code)
        .join(Case, Case.id == CaseLink.other_case_id)
        .where(CaseLink.case_id.in_(ids))
        .order_by(CaseLink.case_id, CaseLink.other_case_id)
    ).all()
    for link, code in rows:
        found[link.case_id].append(_duplicate(link, code))
    return found


def _duplicate(link: CaseLink | Suggested, code: str) -> DuplicateView:
    return DuplicateView.model_construct(
        tracking_code=code,
        distance_m=round(link.distance_m, 1),
        hours_apart=round(link.hours_apart, 2),
        status=link.status,
    )


def _event(event: CaseEvent, public: bool = False) -> EventView:
    """An event; the public view hides who did it and internal notes."""
    if public:
        return EventView.model_construct(
            at=event.at, action=event.action, from_state=event.from_state, to_state=event.to_state
        )
    return EventView.model_construct(
        at=event.at,
        action=event.action,
        from_state=event.from_state,
        to_state=event.to_state,
        actor=event.actor,
        role=event.role,
        unit_code=event.unit_code,
        note=event.note,
        data=event.data,
    )


# -- the case page's map --------------------------------------------------------------------------
def case_map(session: Session, actor: Actor, ref: int | str) -> dict:
    """GeoJSON of what a case page draws: the point, its grid and community as they were when it
    was reported (the grid's boundary generation), and the responsibility zones at the point that
    cover its category (the layer that fired). WGS-84 lon/lat throughout."""
    case = readable_case(session, actor, ref)
    features: list[dict] = []
    generation = (case.routing or {}).get("generation")
    if not isinstance(generation, int):  # seeded demo cases keep no generation
        generation = None
    areas = []
    if case.grid_area_id is not None:
        areas.append(("grid", Area.id == case.grid_area_id))
    if case.community_code and generation is not None:
        areas.append(
            (
                "community",
                and_(
                    Area.level == "community",
                    Area.code == case.community_code,
                    Area.generation_low <= generation,
                    Area.generation_high >= generation,
                ),
            )
        )
    for kind, where in areas:
        row = session.execute(
            select(Area.code, Area.name, func.ST_AsGeoJSON(Area.geom, 6)).where(where)
        ).first()
        if row is not None:
            features.append(_feature(kind, row[0], row[1], json.loads(row[2])))
    if case.location is not None:
        layers = session.execute(
            select(
                ResponsibilityLayer.code,
                ResponsibilityLayer.name,
                func.ST_AsGeoJSON(ResponsibilityLayer.zone, 6),
            )
            .where(func.ST_Covers(ResponsibilityLayer.zone, case.location))
            .where(literal(case.category_code) == any_(ResponsibilityLayer.categories))
            .order_by(ResponsibilityLayer.priority.desc())
        ).all()
        features += [_feature("layer", code, name, json.loads(geom)) for code, name, geom in layers]
        lon, lat = location_of(case)
        features.append(
            _feature(
                "point", case.tracking_code, case.tracking_code, {"type": "Point", "coordinates": [lon, lat]}
            )
        )
    return {"type": "FeatureCollection", "features": features}


def _feature(kind: str, code: str, name: str, geometry: dict) -> dict:
    return {"type": "Feature", "properties": {"kind": kind, "code": code, "name": name}, "geometry": geometry}


def latest_event_id(session: Session) -> int:
    """The newest entry of the case event log (0 when empty): what the live lists watch."""
    return session.scalar(select(func.coalesce(func.max(CaseEvent.id), 0))) or 0
