"""The public channel (市民): reports from people not signed in, following, rating, what they see.

Everything a resident reads is built here, without names, contacts or exact locations: open
reports near a point (so they can follow one instead of filing it again, as FixMyStreet suggests),
problems fixed nearby, and a case's page by its tracking code (the state in words is the page's,
the unit that has it, the timeline without staff, public photos, the expected date). Who may do
what is the access policy's (geo/access.py: `public_contact_refusal`, `may_follow`,
`rating_refusal`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geo import access
from geo.accounts import Actor, actor_of
from geo.cases.intake import Channel, ReportIn
from geo.cases.service import CaseContext, submit_report
from geo.cases.views import PUBLIC_DECIMALS, PhotoView, _photos_of, location_of
from geo.cases.workflow import OPEN
from geo.coords import CoordinateSystem
from geo.errors import ActionForbidden, InvalidInput, InvalidTransition, NotFound
from geo.store.models import (
    Account,
    Area,
    Case,
    CaseCallback,
    CaseEvent,
    CaseFollower,
    CaseLink,
    CaseRating,
    Category,
    Unit,
)

PHONE = re.compile(r"^\+?[0-9]{5,20}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
NEARBY_RADIUS_M = 250.0  # FixMyStreet's distance for suggesting open reports nearby
FIXED_DAYS = 90
#: The states in which a unit has the case (the routed unit is only a suggestion until dispatch;
#: a returned case waits for the centre to send it again).
WITH_A_UNIT = frozenset({"dispatched", "signed", "handled", "rework", "checked", "closed"})


class PublicReportIn(BaseModel):
    """A report from someone not signed in: where, what, and how to reach them (if at all)."""

    category: str = Field(min_length=1, max_length=16)
    description: str = Field(default="", max_length=2000)
    lon: float | None = Field(default=None, description="WGS-84 longitude (the pin)")
    lat: float | None = Field(default=None, description="WGS-84 latitude (the pin)")
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)


def clean_phone(value: str | None) -> str | None:
    """A phone number without spaces or dashes, or None; a 422 naming `phone` if it is not one."""
    value = re.sub(r"[\s\-()]", "", value or "")
    if not value:
        return None
    if not PHONE.match(value):
        raise InvalidInput("a phone number is 5 to 20 digits (a + first is allowed)", field="phone")
    return value


def clean_email(value: str | None) -> str | None:
    """An e-mail address, or None; a 422 naming `email` if it does not look like one."""
    value = (value or "").strip()
    if not value:
        return None
    if not EMAIL.match(value):
        raise InvalidInput("an e-mail address looks like name@example.org", field="email")
    return value


def public_reporter(session: Session) -> Actor:
    """The account that files reports of people not signed in (inactive; migration 0009)."""
    account = session.scalar(select(Account).where(Account.username == access.PUBLIC_ACCOUNT))
    if account is None:
        raise NotFound("the public reporter account is missing: migrate the database", field="account")
    return actor_of(account)


def as_report(report: PublicReportIn, contact_rule: str) -> tuple[ReportIn, str | None, str | None]:
    """The intake report of a public one, and its cleaned phone and e-mail (the followers)."""
    phone, email = clean_phone(report.phone), clean_email(report.email)
    if refusal := access.public_contact_refusal(contact_rule, phone):
        raise InvalidInput(refusal, field="phone")
    if (report.lon is None) != (report.lat is None):
        raise InvalidInput("place the pin on the map", field="location")
    contact = " / ".join(c for c in (phone, email) if c) or None
    intake = ReportIn(
        category=report.category,
        description=report.description,
        lon=report.lon,
        lat=report.lat,
        crs=CoordinateSystem.wgs84,
        reporter_contact=contact,
    )
    return intake, phone, email


def follow(
    session: Session, case_id: int, phone: str | None, email: str | None, *, reporter: bool = False
) -> int:
    """Follow a case by phone and/or e-mail (关注); how many new followers (a repeat adds none)."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}", field="case")
    if not reporter and not access.may_follow(case.state):
        raise InvalidTransition("this case has ended: there is nothing more to hear", field="case")
    if not phone and not email:
        raise InvalidInput("give a phone number or an e-mail address to hear about it", field="phone")
    added = 0
    for kind, address in (("phone", phone), ("email", email)):
        if address:
            statement = (
                insert(CaseFollower)
                .values(case_id=case_id, kind=kind, address=address, is_reporter=reporter)
                .on_conflict_do_nothing(constraint="uq_case_follower_case_id")
                .returning(CaseFollower.id)
            )
            added += len(session.execute(statement).all())
    return added


# -- what the public reads ------------------------------------------------------------------------
class NearbyCase(BaseModel):
    """An open report near a point: no code, no text, no people; the place rounded."""

    id: int = Field(description="what a resident follows it by (it opens nothing)")
    category_code: str
    state: str
    distance_m: float
    reported_at: datetime
    lon: float
    lat: float


class FixedCase(BaseModel):
    """A problem fixed recently: its category, community, when, and the place rounded."""

    category_code: str
    community: str | None
    closed_at: datetime
    lon: float
    lat: float


def community_name():  # noqa: ANN201 - a scalar subquery
    """SQL: the name of the case's community (its newest boundary generation's row)."""
    return (
        select(Area.name)
        .where(Area.code == Case.community_code, Area.level == "community")
        .order_by(Area.generation_high.desc())
        .limit(1)
        .scalar_subquery()
    )


def _rounded(value: float) -> float:
    return round(value, PUBLIC_DECIMALS)


def _near(lon: float, lat: float, radius_m: float):  # noqa: ANN202 - two SQL expressions
    """The point, and a test for cases within `radius_m` metres of it: a box in degrees through
    the GiST index first (a degree of longitude is 111.32 km × cos(latitude); 10% to spare),
    then the exact distance on the spheroid."""
    point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    degrees = radius_m * 1.1 / (111_320 * max(math.cos(math.radians(min(abs(lat) + 0.01, 89.9))), 1e-3))
    within = func.ST_DWithin(Case.location, point, degrees) & func.ST_DWithin(
        func.geography(Case.location), func.geography(point), radius_m
    )
    return point, within


def _check_point(lon: float, lat: float) -> None:
    if not (-180 <= lon <= 180):
        raise InvalidInput("lon must be a longitude between -180 and 180", field="lon")
    if not (-90 <= lat <= 90):
        raise InvalidInput("lat must be a latitude between -90 and 90", field="lat")


def nearby_open(
    session: Session, lon: float, lat: float, category: str, radius_m: float = NEARBY_RADIUS_M, limit: int = 5
) -> list[NearbyCase]:
    """Open reports of the same category within `radius_m` of a WGS-84 point, nearest first."""
    _check_point(lon, lat)
    point, within = _near(lon, lat, radius_m)
    distance = func.ST_Distance(func.geography(Case.location), func.geography(point))
    rows = session.execute(
        select(Case, distance)
        .where(Case.category_code == category, Case.state.in_([s.value for s in OPEN]), within)
        .order_by(distance, Case.reported_at.desc())
        .limit(limit)
    ).all()
    found = []
    for case, metres in rows:
        x, y = location_of(case)
        assert x is not None and y is not None
        found.append(
            NearbyCase(
                id=case.id,
                category_code=case.category_code,
                state=case.state,
                distance_m=round(metres, -1),  # tens of metres: no more is needed to recognise it
                reported_at=case.reported_at,
                lon=_rounded(x),
                lat=_rounded(y),
            )
        )
    return found


def recently_fixed(
    session: Session,
    lon: float | None = None,
    lat: float | None = None,
    *,
    limit: int = 10,
    days: int = FIXED_DAYS,
    now: datetime | None = None,
) -> list[FixedCase]:
    """Cases closed in the last `days` (near the point, nearest first; else the newest)."""
    now = now or datetime.now(UTC)
    query = select(Case, community_name()).where(
        Case.state == "closed", Case.closed_at >= now - timedelta(days=days)
    )
    if lon is not None and lat is not None:
        _check_point(lon, lat)
        point, within = _near(lon, lat, 2_000)
        rows = session.execute(
            query.where(within).order_by(Case.closed_at.desc(), Case.id.desc()).limit(limit)
        ).all()
    else:
        rows = session.execute(query.order_by(Case.closed_at.desc(), Case.id.desc()).limit(limit)).all()
    fixed = []
    for case, community in rows:
        x, y = location_of(case)
        if x is None or y is None or case.closed_at is None:
            continue
        fixed.append(
            FixedCase(
                category_code=case.category_code,
                community=community,
                closed_at=case.closed_at,
                lon=_rounded(x),
                lat=_rounded(y),
            )
        )
    return fixed


class PublicStep(BaseModel):
    """One step of the case's life as the public sees it: no staff, no notes."""

    at: datetime
    action: str
    to_state: str
    unit: str | None = Field(default=None, description="the unit it went to, for a dispatch")


class RatingView(BaseModel):
    """The verdict on a closed case."""

    rating: str
    comment: str
    rated_at: datetime


class CasePage(BaseModel):
    """A case's public page (/track/{code}): what the reporter may know of it."""

    tracking_code: str
    category_code: str
    category: str
    state: str
    reported_at: datetime
    community: str | None
    unit: str | None = Field(description="the unit that has it now")
    expected_at: datetime | None = Field(description="the deadline in force, once dispatched")
    closed_at: datetime | None
    lon: float | None
    lat: float | None
    before: list[PhotoView]
    after: list[PhotoView]
    steps: list[PublicStep]
    rating: RatingView | None
    may_rate: bool
    review_requested: bool
    review: str | None = Field(
        default=None,
        description="the centre's decision on an unsatisfied rating: reopened (复核重办) or "
        "dismissed (复核维持); None while it waits or when there was none",
    )
    review_reason: str | None = Field(default=None, description="the reason the centre gave the reporter")


#: The centre's decisions on an unsatisfied rating (geo/cases/workflow.py), as the public page says.
REVIEW_DECISIONS = {"reopen": "reopened", "dismiss_review": "dismissed"}


def case_page(session: Session, tracking_code: str) -> CasePage:
    """The public page of a case by its tracking code (a 404 for an unknown code)."""
    row = session.execute(
        select(Case, Category.name, Unit.name, community_name())
        .join(Category, Category.code == Case.category_code)
        .outerjoin(Unit, Unit.code == Case.unit_code)
        .where(Case.tracking_code == tracking_code)
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"no case {tracking_code}", field="tracking_code")
    case, category, unit, community = row
    events = session.execute(
        select(CaseEvent, Unit.name)
        .outerjoin(Unit, Unit.code == CaseEvent.unit_code)
        .where(CaseEvent.case_id == case.id)
        .order_by(CaseEvent.id)
    ).all()
    steps = [
        PublicStep(
            at=e.at,
            action=e.action,
            to_state=e.to_state,
            unit=name if e.action in ("dispatch", "redispatch") else None,
        )
        for e, name in events
    ]
    photos = _photos_of(session, [case.id], original=False)[case.id]
    rating = session.get(CaseRating, case.id)
    decided = next((e for e, _ in reversed(events) if e.action in REVIEW_DECISIONS), None)
    lon, lat = location_of(case)
    return CasePage(
        tracking_code=case.tracking_code,
        category_code=case.category_code,
        category=category,
        state=case.state,
        reported_at=case.reported_at,
        community=community,
        unit=unit if case.state in WITH_A_UNIT else None,
        expected_at=case.deadline_at,
        closed_at=case.closed_at,
        lon=None if lon is None else _rounded(lon),
        lat=None if lat is None else _rounded(lat),
        before=[p for p in photos if p.purpose == "report"],
        after=[p for p in photos if p.purpose != "report"],
        steps=steps,
        rating=RatingView(rating=rating.rating, comment=rating.comment, rated_at=rating.rated_at)
        if rating
        else None,
        may_rate=access.rating_refusal(case.state, rating is not None) is None,
        review_requested=case.review_requested_at is not None,
        review=REVIEW_DECISIONS[decided.action] if decided else None,
        review_reason=decided.note if decided else None,
    )


def rate(
    session: Session,
    tracking_code: str,
    rating: str,
    comment: str = "",
    *,
    source: str = "resident",
    now: datetime | None = None,
) -> CaseRating:
    """Rate a closed case once (满意/基本满意/不满意); an unsatisfied one asks the centre to review."""
    now = now or datetime.now(UTC)
    if rating not in access.RATINGS:
        raise InvalidInput(f"rating must be one of {', '.join(access.RATINGS)}", field="rating")
    if len(comment) > 1000:
        raise InvalidInput("a comment is at most 1,000 characters", field="comment")
    case = session.scalar(select(Case).where(Case.tracking_code == tracking_code).with_for_update())
    if case is None:
        raise NotFound(f"no case {tracking_code}", field="tracking_code")
    if refusal := access.rating_refusal(case.state, session.get(CaseRating, case.id) is not None):
        raise InvalidTransition(refusal, field="rating")
    row = CaseRating(case_id=case.id, rating=rating, comment=comment.strip(), source=source, rated_at=now)
    session.add(row)
    if rating in access.REVIEW_RATINGS:
        # The case's version is bumped with it: a desk acting on what it saw before is told.
        case.review_requested_at = now
    session.flush()
    return row


# -- the 12345 hotline: the call-taker files for the caller; the callback after closing -----------
class CallIn(BaseModel):
    """A call to 12345: the caller's number and words, where and what (the call-taker's choice)."""

    phone: str = Field(max_length=32)
    words: str = Field(default="", max_length=2000, description="what the caller said")
    category: str = Field(min_length=1, max_length=16)
    lon: float | None = None
    lat: float | None = None


class Filed(BaseModel):
    """A hotline case as the call-taker reads it back: its code, and the open reports it may repeat."""

    tracking_code: str
    duplicates: list[str]


def file_call(
    session: Session, context: CaseContext, actor: Actor, call: CallIn, now: datetime | None = None
) -> Filed:
    """File a caller's report on the hotline channel; the caller's phone follows the case."""

    phone = clean_phone(call.phone)
    if phone is None:
        raise InvalidInput("the caller's phone number is needed for the callback", field="phone")
    if call.lon is None or call.lat is None:
        raise InvalidInput("click the place on the map (or type its WGS-84 coordinates)", field="location")
    report = ReportIn(
        category=call.category,
        description=call.words,
        lon=call.lon,
        lat=call.lat,
        crs=CoordinateSystem.wgs84,
        channel=Channel.hotline_12345,
        reporter_contact=phone,
    )
    case, _ = submit_report(session, context, actor, report, now=now)
    follow(session, case.id, phone, None, reporter=True)
    duplicates = session.scalars(
        select(Case.tracking_code)
        .join(CaseLink, CaseLink.other_case_id == Case.id)
        .where(CaseLink.case_id == case.id)
        .order_by(CaseLink.distance_m)
    ).all()
    return Filed(tracking_code=case.tracking_code, duplicates=list(duplicates))


class CallbackDue(BaseModel):
    """A closed case whose reporter has not answered yet: whom to call, about what."""

    tracking_code: str
    category: str
    channel: str
    closed_at: datetime
    contact: str
    attempts: int = Field(description="calls so far that reached nobody")


CALLBACK_DAYS = 30  # a call back about a case closed longer ago than this is no longer useful


def callbacks_due(
    session: Session, actor: Actor, limit: int = 50, now: datetime | None = None
) -> list[CallbackDue]:
    """Cases closed in the last 30 days with a reporter's contact and no rating yet, closed
    longest ago first (回访)."""
    access.require(actor, access.Sight.reporter_contact)
    since = (now or datetime.now(UTC)) - timedelta(days=CALLBACK_DAYS)
    attempts = select(func.count(CaseCallback.id)).where(CaseCallback.case_id == Case.id).scalar_subquery()
    rows = session.execute(
        select(Case, Category.name, attempts)
        .join(Category, Category.code == Case.category_code)
        .outerjoin(CaseRating, CaseRating.case_id == Case.id)
        .where(
            Case.state == "closed",
            Case.closed_at >= since,
            Case.reporter_contact.is_not(None),
            CaseRating.case_id.is_(None),
        )
        .order_by(Case.closed_at, Case.id)
        .limit(limit)
    ).all()
    return [
        CallbackDue(
            tracking_code=case.tracking_code,
            category=name,
            channel=case.channel,
            closed_at=case.closed_at,
            contact=case.reporter_contact or "",
            attempts=tried,
        )
        for case, name, tried in rows
        if case.closed_at is not None
    ]


def record_callback(
    session: Session,
    actor: Actor,
    tracking_code: str,
    *,
    reached: bool,
    rating: str | None = None,
    comment: str = "",
    now: datetime | None = None,
) -> CaseCallback:
    """Record one call back (回访): reached or not; a reached caller's verdict is the case's rating."""
    if not access.may_use_desk(actor, access.Desk.callback):
        raise ActionForbidden(f"role {actor.role.value} may not call reporters back", field="role")
    now = now or datetime.now(UTC)
    case = session.scalar(select(Case).where(Case.tracking_code == tracking_code))
    if case is None:
        raise NotFound(f"no case {tracking_code}", field="case")
    if reached:
        if not rating:
            raise InvalidInput("the caller was reached: record whether they are satisfied", field="rating")
        rate(session, tracking_code, rating, comment, source="callback", now=now)
    elif case.state != "closed":
        raise InvalidTransition(
            f"a case is called back once it is closed; this one is {case.state}", field="case"
        )
    row = CaseCallback(case_id=case.id, at=now, by=actor.username, reached=reached, note=comment.strip())
    session.add(row)
    session.flush()
    return row
