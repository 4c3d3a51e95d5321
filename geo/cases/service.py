"""Cases: intake (with photos and idempotency) and workflow actions; reading is geo/cases/views.py."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from geoalchemy2.shape import to_shape
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo import access
from geo.accounts import Actor
from geo.cases.timelimits import WorkCalendar
from geo.cases.views import find_case
from geo.cases.work_calendar import stored_calendar
from geo.cases.workflow import (
    ENDED,
    OPEN,
    Action,
    ActionIn,
    CaseState,
    Step,
    action_named,
    apply_routing,
    check_inputs,
    check_transition,
    possible_actions,
)
from geo.coords import CoordinateSystem
from geo.errors import (
    ActionForbidden,
    ConcurrentUpdate,
    IdempotencyConflict,
    InvalidInput,
    UnknownCategory,
)
from geo.photos import Photo, PhotoLimits, check_count, ingest_photo
from geo.routing import Router, RoutingDecision, RoutingStatus
from geo.storage import BlobStore
from geo.store.models import Case, CaseEvent, CaseLink, CasePhoto, Category, ReferenceVersion

__all__ = ["ActionIn", "CaseContext", "Channel", "ReportIn", "act", "submit_report"]

TRACKING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read over the phone


class Channel(StrEnum):
    """Where a report came from."""

    inspector = "inspector"
    resident = "resident"
    hotline_12345 = "hotline_12345"
    video_patrol = "video_patrol"
    referral = "referral"


@dataclass
class CaseContext:
    """What case operations need besides the session."""

    router: Router
    blobs: BlobStore
    #: A fixed calendar, or None for the stored one (reloaded when `gridcase calendar import` changed it).
    calendar: WorkCalendar | None = None
    photo_limits: PhotoLimits = field(default_factory=PhotoLimits)
    duplicate_radius_m: float = 50.0
    duplicate_window_h: float = 24.0
    _stored: tuple[tuple, WorkCalendar] | None = field(default=None, init=False, repr=False)

    def calendar_for(self, session: Session) -> WorkCalendar:
        """The work calendar deadlines are counted on: the fixed one, or the stored one as it is now."""
        if self.calendar is not None:
            return self.calendar
        # The counter and when it moved: a counter alone could repeat after a rolled-back import.
        version = tuple(
            session.execute(
                select(ReferenceVersion.version, ReferenceVersion.changed_at).where(
                    ReferenceVersion.name == "calendar"
                )
            ).one_or_none()
            or (0, None)
        )
        stored = self._stored
        if stored is None or stored[0] != version:
            stored = (version, stored_calendar(session))
            self._stored = stored  # one assignment: threads see the old or the new pair, never half
        return stored[1]


class ReportIn(BaseModel):
    """A new report. Location may be omitted when a photo carries GPS."""

    category: str = Field(min_length=1, max_length=16, description="category code, e.g. E0102")
    description: str = Field(default="", max_length=2000)
    lon: float | None = Field(default=None, description="longitude in `crs`")
    lat: float | None = Field(default=None, description="latitude in `crs`")
    crs: CoordinateSystem = CoordinateSystem.wgs84
    channel: Channel | None = Field(default=None, description="default: the reporting role's own channel")
    reporter_contact: str | None = Field(
        default=None, max_length=200, description="private: never shown publicly"
    )


@dataclass(frozen=True)
class Located:
    """Where a report is, in its own coordinate system, and how that was found."""

    lon: float
    lat: float
    crs: CoordinateSystem
    by: str  # "report" or "photo EXIF GPS"


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
    access.require(actor, access.Sight.submit_report)
    channel = access.channel_for(actor, report.channel.value if report.channel else None)
    photos = photos or []
    now = now or datetime.now(UTC)
    key = _scoped_key(actor, idempotency_key)
    fingerprint = _fingerprint(actor, report, photos)
    if key and (existing := session.scalar(select(Case).where(Case.idempotency_key == key))):
        return _replay(existing, fingerprint), False
    check_count(len(photos), ctx.photo_limits)
    category = session.get(Category, report.category)
    if category is None:
        raise UnknownCategory(f"category {report.category!r} is not in the catalogue", field="category")
    ingested = [ingest_photo(data, ctx.blobs, ctx.photo_limits) for data in photos]
    where = _locate(report, ingested)
    # On the request's own connection: one request never needs two pooled connections.
    decision = ctx.router.route(where.lon, where.lat, category.code, where.crs, at=now, session=session)
    case = _new_case(actor, report, channel, where, decision, now, key, fingerprint)
    try:
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same key won the race: answer with its case.
        winner = session.scalar(select(Case).where(Case.idempotency_key == key)) if key else None
        if winner is None:
            raise
        return _replay(winner, fingerprint), False
    _record_intake(session, ctx, actor, case, category, decision, where, ingested, now)
    return case, True


def _scoped_key(actor: Actor, idempotency_key: str | None) -> str | None:
    """Keys are scoped per account: two people's key "1" are different reports."""
    if not idempotency_key:
        return None
    if len(idempotency_key) > 100:
        raise InvalidInput("Idempotency-Key must be at most 100 characters", field="Idempotency-Key")
    return f"{actor.id}:{idempotency_key}"


def _locate(report: ReportIn, photos: list[Photo]) -> Located:
    """The report's own lon/lat, or else the first photo's EXIF GPS (always WGS-84)."""
    if (report.lon is None) != (report.lat is None):
        raise InvalidInput(
            "give both lon and lat, or neither (then a photo must carry GPS)",
            field="lon" if report.lon is None else "lat",
        )
    if report.lon is not None and report.lat is not None:
        return Located(report.lon, report.lat, report.crs, "report")
    for photo in photos:
        if photo.lon is not None and photo.lat is not None:
            return Located(photo.lon, photo.lat, CoordinateSystem.wgs84, "photo EXIF GPS")
    raise InvalidInput("no location: give lon/lat, or a photo with GPS in its EXIF", field="location")


def _new_case(
    actor: Actor,
    report: ReportIn,
    channel: str,
    where: Located,
    decision: RoutingDecision,
    now: datetime,
    key: str | None,
    fingerprint: str,
) -> Case:
    """The case row of a routed report (not yet added to the session)."""
    case = Case(
        tracking_code=_tracking_code(now),
        category_code=report.category,
        description=report.description,
        channel=channel,
        reporter_contact=report.reporter_contact,
        reported_by=actor.username,
        reporter_account_id=actor.id,
        reported_at=now,
        reported_crs=where.crs.value,
        reported_lon=where.lon,
        reported_lat=where.lat,
        state=CaseState.reported.value,
        idempotency_key=key,
        idempotency_fingerprint=fingerprint,
        created_at=now,
        updated_at=now,
    )
    # Stored in WGS-84 (EPSG:4326, lon/lat order): the routing's normalised point.
    apply_routing(case, decision, where.by)
    return case


def _record_intake(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    case: Case,
    category: Category,
    decision: RoutingDecision,
    where: Located,
    photos: list[Photo],
    now: datetime,
) -> None:
    """The report event with the routing explanation, its photos, and suggested duplicates."""
    note = (
        "unroutable: " + (decision.reason or "") + " → triage queue"
        if decision.status == RoutingStatus.unroutable
        else decision.explain()
    )
    data = {"routing_status": decision.status.value, "located_by": where.by}
    event = _append(session, case, actor, "report", None, CaseState.reported, now, note=note, data=data)
    for photo in photos:
        _attach(session, case, event, photo, "report")
    _suggest_duplicates(session, ctx, case, category, now)


def _replay(existing: Case, fingerprint: str) -> Case:
    if existing.idempotency_fingerprint != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different report; use a new key for a new report",
            field="Idempotency-Key",
        )
    return existing


def _attach(session: Session, case: Case, event: CaseEvent, photo: Photo, purpose: str) -> None:
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
    radius = category.duplicate_radius_m or ctx.duplicate_radius_m
    window = category.duplicate_window_h or ctx.duplicate_window_h
    stored = to_shape(case.location)  # WGS-84: x is the longitude
    lon, lat = stored.x, stored.y
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
    """Apply a workflow action: load, authorise, validate, apply its effect, append the event.

    The case's version is bumped and checked on update (optimistic lock): of two concurrent
    actions on one version, one wins and the other is a ConcurrentUpdate.
    """
    data = data or ActionIn()
    photos = photos or []
    now = now or datetime.now(UTC)
    action = action_named(name)
    case = find_case(session, ref)
    state = CaseState(case.state)
    _authorise(actor, action, case, state, ref)
    if data.expected_version is not None and data.expected_version != case.version:
        raise ConcurrentUpdate(
            f"case {case.tracking_code} is at version {case.version}, "
            f"you saw {data.expected_version}: reload it",
            field="expected_version",
        )
    check_inputs(action, data, len(photos))
    check_count(len(photos), ctx.photo_limits)
    ingested = [ingest_photo(p, ctx.blobs, ctx.photo_limits) for p in photos]
    step = Step(session, ctx.calendar_for(session), actor, case, state, data, now, action.target, ctx.router)
    extra = action.effect(step)
    _move(session, case, step.target, now)
    event = _append(
        session, case, actor, name, state, case.state, now, note=data.reason or data.note, data=extra or None
    )
    for photo in ingested:
        _attach(session, case, event, photo, photo_purpose(action))
    return case


#: The photos a check on site (核查) brings are check photos: neither the report's nor the unit's.
CHECK_ACTIONS = frozenset({"check_pass", "check_fail"})


def photo_purpose(action: Action) -> str:
    """What the photos sent with an action are: after-photos (the unit's), check photos, or more of
    the report's."""
    if action.needs_after_photo:
        return "after"
    return "check" if action.name in CHECK_ACTIONS else "report"


def _authorise(actor: Actor, action: Action, case: Case, state: CaseState, ref: object) -> None:
    """The policy's word on this person, action and case; then whether the state allows it."""
    scope = access.scope_of(case)
    role_may_now = access.actions_for(actor, possible_actions(state))
    access.authorise(actor, action.name, scope, ref=ref, state=state.value, role_may_now=role_may_now)
    check_transition(action, state, case.tracking_code)
    if refusal := access.scope_refusal(actor, action.name, scope):
        raise ActionForbidden(refusal, field="case")


def _move(session: Session, case: Case, target: CaseState | None, now: datetime) -> None:
    """Set the new state and write the case; a concurrent writer makes the versioned UPDATE fail."""
    if target is not None:
        case.state = target.value
    if case.state in ENDED:
        case.closed_at = now
    case.updated_at = now
    tracking_code = case.tracking_code
    try:
        session.flush()  # UPDATE ... WHERE version = :seen
    except StaleDataError:
        raise ConcurrentUpdate(
            f"case {tracking_code} was changed by someone else at the same time; reload it", field="case"
        ) from None
