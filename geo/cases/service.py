"""Cases: intake (with photos and idempotency), workflow actions, duplicates, and queries."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import and_, any_, func, literal, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo.accounts import Actor, Role
from geo.cases.timelimits import (
    WorkCalendar,
    deadline,
    extend_deadline,
    resume_deadline,
)
from geo.cases.workflow import (
    ACTIONS,
    MAX_EXTENSIONS,
    OPEN,
    TERMINAL,
    CaseScope,
    CaseState,
    allowed_actions,
    can_see,
    scope_refusal,
)
from geo.coords import CoordinateSystem
from geo.errors import (
    ActionForbidden,
    ConcurrentUpdate,
    IdempotencyConflict,
    InvalidInput,
    InvalidTransition,
    NotFound,
    UnknownCategory,
)
from geo.photos import PhotoLimits, check_count, ingest_photo
from geo.routing import Router, RoutingStatus
from geo.storage import BlobStore
from geo.store.models import Case, CaseEvent, CaseLink, CasePhoto, Category, Unit

TRACKING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read over the phone


class Channel(StrEnum):
    """Where a report came from."""

    inspector = "inspector"
    resident = "resident"
    hotline_12345 = "hotline_12345"
    video_patrol = "video_patrol"
    referral = "referral"


REPORTING_ROLES = {Role.inspector, Role.resident, Role.operator, Role.dispatcher, Role.admin}


@dataclass
class CaseContext:
    """What case operations need besides the session."""

    router: Router
    blobs: BlobStore
    calendar: WorkCalendar = field(default_factory=WorkCalendar.china)
    photo_limits: PhotoLimits = field(default_factory=PhotoLimits)
    duplicate_radius_m: float = 50.0
    duplicate_window_h: float = 24.0


class ReportIn(BaseModel):
    """A new report. Location may be omitted when a photo carries GPS."""

    category: str = Field(min_length=1, max_length=16, description="category code, e.g. E0102")
    description: str = Field(default="", max_length=2000)
    lon: float | None = Field(default=None, description="longitude in `crs`")
    lat: float | None = Field(default=None, description="latitude in `crs`")
    crs: CoordinateSystem = CoordinateSystem.wgs84
    channel: Channel = Channel.inspector
    reporter_contact: str | None = Field(
        default=None, max_length=200, description="private: never shown publicly"
    )


class ActionIn(BaseModel):
    """Fields an action may carry; which are required depends on the action."""

    reason: str | None = Field(default=None, max_length=2000)
    note: str | None = Field(default=None, max_length=2000)
    unit: str | None = Field(default=None, description="dispatch/redispatch: the unit")
    units: list[str] = Field(default_factory=list, description="join: cooperating units")
    into: str | None = Field(default=None, description="merge: tracking code of the case kept")
    expected_version: int | None = Field(
        default=None, description="optimistic lock: the version you last saw; refused if it changed"
    )


def _tracking_code(now: datetime) -> str:
    tail = "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(8))
    return f"GC{now:%y%m%d}{tail}"


def _fingerprint(actor: Actor, report: ReportIn, photos: list[bytes]) -> str:
    body = json.dumps(
        {
            "by": actor.id,
            **report.model_dump(mode="json"),
            "photos": [hashlib.sha256(p).hexdigest() for p in photos],
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def scope_of(case: Case) -> CaseScope:
    """The access-relevant facts of a case."""
    return CaseScope(
        case.unit_code,
        tuple(case.cooperating_unit_codes or ()),
        case.grid_code,
        case.reporter_account_id,
        case.claimed_by_account_id,
    )


# -- intake -------------------------------------------------------------------------------------
def submit_report(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    report: ReportIn,
    photos: list[bytes] | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> tuple[Case, bool]:
    """File a report: store photos, locate (from EXIF GPS if needed), route, link duplicates.

    Returns the case and whether it was created; a retry with the same Idempotency-Key returns
    the first case and creates nothing.
    """
    if actor.role not in REPORTING_ROLES:
        raise ActionForbidden(f"role {actor.role.value} may not submit reports", field="role")
    photos = photos or []
    now = now or datetime.now(UTC)
    key = f"{actor.id}:{idempotency_key}" if idempotency_key else None
    fingerprint = _fingerprint(actor, report, photos)
    if key:
        if len(idempotency_key or "") > 100:
            raise InvalidInput("Idempotency-Key must be at most 100 characters", field="Idempotency-Key")
        existing = session.scalar(select(Case).where(Case.idempotency_key == key))
        if existing is not None:
            return _replay(existing, fingerprint), False

    check_count(len(photos), ctx.photo_limits)
    category = session.get(Category, report.category)
    if category is None:
        raise UnknownCategory(f"category {report.category!r} is not in the catalogue", field="category")
    ingested = [ingest_photo(data, ctx.blobs, ctx.photo_limits) for data in photos]
    lon, lat, crs = report.lon, report.lat, report.crs
    located_by = "report"
    if (lon is None) != (lat is None):
        raise InvalidInput(
            "give both lon and lat, or neither (then a photo must carry GPS)",
            field="lon" if lon is None else "lat",
        )
    if lon is None:
        with_gps = next((p for p in ingested if p.lon is not None and p.lat is not None), None)
        if with_gps is None:
            raise InvalidInput("no location: give lon/lat, or a photo with GPS in its EXIF", field="location")
        lon, lat, crs = with_gps.lon, with_gps.lat, CoordinateSystem.wgs84  # EXIF GPS is WGS-84
        located_by = "photo EXIF GPS"
    decision = ctx.router.route(lon, lat, category.code, crs, at=now)  # type: ignore[arg-type]

    routing = decision.model_dump(mode="json")
    routing["located_by"] = located_by
    case = Case(
        tracking_code=_tracking_code(now),
        category_code=category.code,
        description=report.description,
        channel=report.channel.value,
        reporter_contact=report.reporter_contact,
        reported_by=actor.username,
        reporter_account_id=actor.id,
        reported_at=now,
        reported_crs=crs.value,
        reported_lon=lon,
        reported_lat=lat,
        location=f"SRID=4326;POINT({decision.lon} {decision.lat})",
        state=CaseState.reported.value,
        grid_area_id=decision.grid.area_id if decision.grid else None,
        grid_code=decision.grid.code if decision.grid else None,
        community_code=decision.community.code if decision.community else None,
        street_code=decision.street.code if decision.street else None,
        district_code=decision.district.code if decision.district else None,
        unit_code=decision.primary_unit.code if decision.primary_unit else None,
        cooperating_unit_codes=[u.code for u in decision.cooperating_units],
        routing=routing,
        idempotency_key=key,
        idempotency_fingerprint=fingerprint,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same key won the race: answer with its case.
        if key is None:
            raise
        existing = session.scalar(select(Case).where(Case.idempotency_key == key))
        if existing is None:
            raise
        return _replay(existing, fingerprint), False
    note = (
        "unroutable: " + (decision.reason or "") + " → triage queue"
        if decision.status == RoutingStatus.unroutable
        else decision.explain()
    )
    event = _append(
        session,
        case,
        actor,
        "report",
        None,
        CaseState.reported,
        now,
        note=note,
        data={"routing_status": decision.status.value, "located_by": located_by},
    )
    for photo in ingested:
        _attach(session, case, event, photo, "report")
    _suggest_duplicates(session, ctx, case, category, now)
    return case, True


def _replay(existing: Case, fingerprint: str) -> Case:
    if existing.idempotency_fingerprint != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different report; use a new key for a new report",
            field="Idempotency-Key",
        )
    return existing


def _attach(session: Session, case: Case, event: CaseEvent, photo, purpose: str) -> None:  # noqa: ANN001
    exists = session.scalar(
        select(CasePhoto.id).where(CasePhoto.case_id == case.id, CasePhoto.original_key == photo.original_key)
    )
    if exists:
        return
    session.add(
        CasePhoto(
            case_id=case.id,
            event_id=event.id,
            purpose=purpose,
            original_key=photo.original_key,
            public_key=photo.public_key,
            content_type=photo.content_type,
            public_content_type=photo.public_content_type,
            width=photo.width,
            height=photo.height,
            lon=photo.lon,
            lat=photo.lat,
            taken_at=photo.taken_at,
        )
    )


def _suggest_duplicates(
    session: Session, ctx: CaseContext, case: Case, category: Category, now: datetime
) -> None:
    """Link open cases of the same category within the category's distance and time window."""
    import math  # here, not at the top: this function is the only part of the module issue 12 changes

    radius = category.duplicate_radius_m or ctx.duplicate_radius_m
    window = category.duplicate_window_h or ctx.duplicate_window_h
    lon, lat = case.routing["lon"], case.routing["lat"]
    point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    # Candidates first through the GiST index on the geometry: a box in degrees that holds the
    # whole radius (a degree of longitude, the shorter, is 111.32 km × cos(latitude); 10% to
    # spare). Then the exact test on the geography: metres on the spheroid, not degrees.
    degrees = radius * 1.1 / (111_320 * max(math.cos(math.radians(min(abs(lat) + 0.01, 89.9))), 1e-3))
    here = func.geography(point)
    distance = func.ST_Distance(func.geography(Case.location), here).label("m")
    rows = session.execute(
        select(Case.id, Case.reported_at, distance)
        .where(
            func.ST_DWithin(Case.location, point, degrees),
            Case.category_code == case.category_code,
            Case.id != case.id,
            Case.state.in_([s.value for s in OPEN]),
            Case.reported_at >= now - timedelta(hours=window),
            func.ST_DWithin(func.geography(Case.location), here, radius),
        )
        # The nearest few are the suggestion: at a hotspot with hundreds of open reports, linking
        # each new one to all of them would grow every report's work with the pile.
        .order_by(distance, Case.reported_at.desc(), Case.id)
        .limit(10)
    ).all()
    for other_id, reported_at, metres in rows:
        session.add(
            CaseLink(
                case_id=case.id,
                other_case_id=other_id,
                distance_m=float(metres),
                hours_apart=abs((now - reported_at).total_seconds()) / 3600,
            )
        )
    session.flush()


def _append(
    session: Session,
    case: Case,
    actor: Actor,
    action: str,
    from_state: CaseState | str | None,
    to_state: CaseState | str,
    now: datetime,
    note: str | None = None,
    data: dict | None = None,
) -> CaseEvent:
    event = CaseEvent(
        case_id=case.id,
        at=now,
        actor=actor.username,
        role=actor.role.value,
        action=action,
        from_state=from_state,
        to_state=str(to_state),
        unit_code=case.unit_code,
        note=note,
        data=data,
    )
    session.add(event)
    session.flush()
    return event


# -- actions ------------------------------------------------------------------------------------
def load_case(session: Session, ref: int | str) -> Case:
    """A case by id or tracking code."""
    case = (
        session.get(Case, ref)
        if isinstance(ref, int)
        else session.scalar(select(Case).where(Case.tracking_code == ref))
    )
    if case is None:
        raise NotFound(f"no case {ref}", field="case")
    return case


def act(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    ref: int | str,
    name: str,
    data: ActionIn | None = None,
    photos: list[bytes] | None = None,
    now: datetime | None = None,
) -> Case:
    """Apply a workflow action, append its event, and bump the case version (optimistic lock)."""
    data = data or ActionIn()
    photos = photos or []
    now = now or datetime.now(UTC)
    action = ACTIONS.get(name)
    if action is None:
        raise InvalidInput(f"unknown action {name!r}; actions are {sorted(ACTIONS)}", field="action")
    case = load_case(session, ref)
    scope = scope_of(case)
    if not can_see(actor, scope) and actor.role is not Role.admin and name != "claim":
        raise NotFound(f"no case {ref}", field="case")  # do not reveal others' cases
    state = CaseState(case.state)
    if actor.role not in action.roles:
        raise ActionForbidden(
            f"role {actor.role.value} may not {name}; in state {state.value} this role may "
            f"{allowed_actions(state, actor.role) or 'do nothing'}",
            field="action",
        )
    if state not in action.sources:
        raise InvalidTransition(
            f"case {case.tracking_code} is {state.value}: {name} is not allowed; allowed now: "
            f"{', '.join(allowed_actions(state)) or 'nothing (closed)'}",
            field="action",
        )
    if refusal := scope_refusal(actor, action, scope):
        raise ActionForbidden(refusal, field="case")
    if data.expected_version is not None and data.expected_version != case.version:
        raise ConcurrentUpdate(
            f"case {case.tracking_code} is at version {case.version}, you saw "
            f"{data.expected_version}: reload it",
            field="expected_version",
        )
    if action.needs_reason and not (data.reason or "").strip():
        raise InvalidInput(f"{name} needs a reason", field="reason")
    if action.needs_after_photo and not photos:
        raise InvalidInput(f"{name} needs at least one after-photo", field="photos")
    check_count(len(photos), ctx.photo_limits)
    ingested = [ingest_photo(p, ctx.blobs, ctx.photo_limits) for p in photos]

    target = action.target
    extra: dict = {}
    category = session.get(Category, case.category_code)
    if name in ("dispatch", "redispatch"):
        unit = data.unit or (case.unit_code if name == "dispatch" else None)
        if not unit:
            raise InvalidInput(
                f"{name} needs a unit"
                + (
                    " (this case could not be routed)"
                    if name == "dispatch"
                    else " different from the one that returned it"
                ),
                field="unit",
            )
        if session.get(Unit, unit) is None:
            raise InvalidInput(f"unit {unit!r} does not exist", field="unit")
        if name == "redispatch" and unit == case.unit_code:
            raise InvalidInput(f"redispatch to a different unit than {unit}, which returned it", field="unit")
        extra = {"from_unit": case.unit_code, "to_unit": unit}
        case.unit_code = unit
        case.dispatched_at = now
        case.time_limit = category.time_limit
        case.time_limit_unit = category.time_limit_unit
        case.deadline_at = deadline(now, float(category.time_limit), category.time_limit_unit, ctx.calendar)
        case.extensions = 0 if name == "dispatch" else case.extensions
        extra["deadline_at"] = case.deadline_at.isoformat()
    elif name == "request_extension":
        if case.extensions >= MAX_EXTENSIONS:
            raise InvalidTransition(
                f"case {case.tracking_code} already had {MAX_EXTENSIONS} extensions, the most allowed",
                field="action",
            )
        case.extension_requested = True
    elif name == "approve_extension":
        if not case.extension_requested:
            raise InvalidTransition("no extension was requested for this case", field="action")
        if case.extensions >= MAX_EXTENSIONS:
            raise InvalidTransition(f"at most {MAX_EXTENSIONS} extensions", field="action")
        case.deadline_at = extend_deadline(
            case.deadline_at, float(case.time_limit), case.time_limit_unit, ctx.calendar
        )
        case.extensions += 1
        case.extension_requested = False
        extra = {"deadline_at": case.deadline_at.isoformat(), "extensions": case.extensions}
    elif name == "park":
        case.parked_at = now
        case.parked_from_state = state.value
    elif name == "unpark":
        target = CaseState(case.parked_from_state or CaseState.dispatched)
        if case.deadline_at and case.parked_at:
            case.deadline_at = resume_deadline(
                case.deadline_at, case.parked_at, now, case.time_limit_unit, ctx.calendar
            )
        extra = {
            "parked_hours": round((now - case.parked_at).total_seconds() / 3600, 2)
            if case.parked_at
            else None,
            "deadline_at": case.deadline_at.isoformat() if case.deadline_at else None,
        }
        case.parked_at = None
        case.parked_from_state = None
    elif name == "supervise":
        case.supervised_at = now
    elif name == "join":
        units = [u for u in data.units if u != case.unit_code]
        if not units:
            raise InvalidInput("join needs one or more cooperating units", field="units")
        unknown = [u for u in units if session.get(Unit, u) is None]
        if unknown:
            raise InvalidInput(f"unknown units {unknown}", field="units")
        case.cooperating_unit_codes = sorted(set(case.cooperating_unit_codes or []) | set(units))
        extra = {"units": units}
    elif name == "claim":
        case.claimed_by_account_id = actor.id
        if actor.unit_code:
            case.unit_code = actor.unit_code
    elif name == "merge":
        if not data.into:
            raise InvalidInput("merge needs `into`: the tracking code of the case to keep", field="into")
        kept = load_case(session, data.into)
        if kept.id == case.id or CaseState(kept.state) in TERMINAL:
            raise InvalidInput("merge into another open case", field="into")
        case.merged_into_id = kept.id
        session.execute(
            CaseLink.__table__.update()
            .where(
                or_(
                    and_(CaseLink.case_id == case.id, CaseLink.other_case_id == kept.id),
                    and_(CaseLink.case_id == kept.id, CaseLink.other_case_id == case.id),
                )
            )
            .values(status="merged")
        )
        extra = {"into": kept.tracking_code}
    if target is not None:
        case.state = target.value
    if case.state in (CaseState.closed, CaseState.rejected, CaseState.voided):
        case.closed_at = now
    case.updated_at = now
    tracking_code = case.tracking_code
    try:
        session.flush()  # UPDATE ... WHERE version = :seen: a concurrent writer makes this fail
    except StaleDataError:
        raise ConcurrentUpdate(
            f"case {tracking_code} was changed by someone else at the same time; reload it", field="case"
        ) from None
    event = _append(
        session, case, actor, name, state, case.state, now, note=data.reason or data.note, data=extra or None
    )
    for photo in ingested:
        _attach(session, case, event, photo, "after" if action.needs_after_photo else "report")
    return case


# -- reading ------------------------------------------------------------------------------------
class CaseFilter(BaseModel):
    """Filters of the case list."""

    state: list[str] = Field(default_factory=list)
    unit: str | None = None
    area: str | None = Field(default=None, description="district/street/community/grid code")
    category: str | None = None
    overdue: bool | None = None
    triage: bool | None = Field(default=None, description="only cases routing could not place")
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=50, ge=1, le=500)


def overdue_clause(now: datetime):  # noqa: ANN201
    """SQL: past due, still open, not parked (the clock stops while parked)."""
    return and_(
        Case.deadline_at.is_not(None),
        Case.deadline_at < now,
        Case.state.in_([s.value for s in OPEN if s is not CaseState.parked]),
    )


def visible_clause(actor: Actor):  # noqa: ANN201
    """SQL: the cases a person may read."""
    if actor.role in (Role.operator, Role.dispatcher, Role.admin, Role.planner):
        return text("true")
    if actor.role is Role.unit_handler:
        return or_(
            Case.unit_code == actor.unit_code,
            literal(actor.unit_code) == any_(Case.cooperating_unit_codes),
            Case.claimed_by_account_id == actor.id,
        )
    if actor.role is Role.inspector:
        return or_(Case.grid_code.in_(actor.grid_codes or ("",)), Case.reporter_account_id == actor.id)
    return or_(Case.reporter_account_id == actor.id, Case.claimed_by_account_id == actor.id)


def list_cases(
    session: Session, actor: Actor, filters: CaseFilter, now: datetime | None = None
) -> tuple[list[Case], int]:
    """Cases this person may see, filtered and paginated (newest first)."""
    now = now or datetime.now(UTC)
    clauses = [visible_clause(actor)]
    if filters.state:
        clauses.append(Case.state.in_(filters.state))
    if filters.unit:
        clauses.append(Case.unit_code == filters.unit)
    if filters.area:
        # Area codes are prefixes of grid codes (6 county + 3 street + 3 community + 3 grid).
        clauses.append(Case.grid_code.startswith(filters.area))
    if filters.category:
        clauses.append(Case.category_code == filters.category)
    if filters.overdue is not None:
        clause = overdue_clause(now)
        clauses.append(clause if filters.overdue else ~clause)
    if filters.triage:
        clauses.append(and_(Case.unit_code.is_(None), Case.state.in_([s.value for s in OPEN])))
    if filters.reported_from:
        clauses.append(Case.reported_at >= filters.reported_from)
    if filters.reported_to:
        clauses.append(Case.reported_at < filters.reported_to)
    if filters.bbox:
        minx, miny, maxx, maxy = filters.bbox
        clauses.append(func.ST_Intersects(Case.location, func.ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)))
    where = and_(*clauses)
    total = session.scalar(select(func.count()).select_from(Case).where(where)) or 0
    rows = session.scalars(
        select(Case)
        .where(where)
        .order_by(Case.reported_at.desc(), Case.id.desc())
        .offset((filters.page - 1) * filters.page_size)
        .limit(filters.page_size)
    ).all()
    return list(rows), total


def readable_case(session: Session, actor: Actor, ref: int | str) -> Case:
    """A case this person may read (others look like they do not exist)."""
    case = load_case(session, ref)
    if not can_see(actor, scope_of(case)):
        raise NotFound(f"no case {ref}", field="case")
    return case
