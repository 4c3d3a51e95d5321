"""The reception room (会客室): every walk-in request registered, followed and answered.

件件有下落、事事有答复: the member on duty (a community staff member) registers who came (their
contact is optional and never public), what they asked and where; the request gets a due date by
its kind, counted on the work calendar; it is followed with notes, a referral to a unit, or turned
into a case routed as usual (`geo.cases.service.submit_report`), until an answer is recorded.
A request unanswered past its due date is overdue: the duty chief's desk and the big screen list
it. Nothing is ever deleted (migration 0013: a trigger refuses it; every change is in the history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo import access
from geo.accounts import Actor
from geo.cases.service import CaseContext, Channel, ReportIn, submit_report
from geo.cases.timelimits import WorkCalendar
from geo.cases.work_calendar import stored_calendar
from geo.community.areas_named import Places
from geo.community.register_models import REQUEST_KINDS, ReceptionFollow, ReceptionRequest
from geo.errors import ConcurrentUpdate, InvalidInput, InvalidTransition, NotFound
from geo.store.models import Area, Case, Unit

CHINA = ZoneInfo("Asia/Shanghai")
W = access.CommunityWork
#: Working days to answer each kind of request (on the work calendar, from when it came in):
#: a question is answered by the next working day, help within three, a problem or a dispute
#: within five, a suggestion within ten.
DUE_WORKING_DAYS: dict[str, int] = {
    "consultation": 1,  # 政策咨询
    "help": 3,  # 求助
    "complaint": 5,  # 反映问题
    "dispute": 5,  # 矛盾纠纷
    "suggestion": 10,  # 意见建议
}
assert set(DUE_WORKING_DAYS) == set(REQUEST_KINDS)
MAX_TEXT = 2000
#: How late a visit may be written down (a register kept on paper for a busy morning, a week off).
MAX_LATE_DAYS = 31
#: Which list a desk asks for.
LISTS = ("open", "overdue", "answered", "all")


@dataclass(frozen=True)
class RequestIn:
    """A walk-in request as the member on duty writes it down."""

    community_code: str
    kind: str
    asked: str
    compound_code: str | None = None
    visitor: str = ""
    visitor_contact: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True)
class FollowView:
    """One step of a request's follow-up."""

    at: datetime
    by: str
    kind: str
    note: str


@dataclass
class RequestView:
    """What a reader sees of a request; `visitor` and `contact` only for the register's keepers."""

    id: int
    reference: str
    community_code: str
    community: str
    compound_code: str | None
    compound: str
    kind: str
    asked: str
    received_at: datetime
    due_at: datetime
    state: str
    overdue: bool
    answered_at: datetime | None
    answer: str
    answered_on_time: bool | None
    referred_unit: str | None
    case_tracking_code: str | None
    taken_by: str
    visitor: str | None = None
    visitor_contact: str | None = None
    follows: list[FollowView] = field(default_factory=list)


def due_at(kind: str, received_at: datetime, calendar: WorkCalendar) -> datetime:
    """When a request of this kind must be answered: its working days on the work calendar."""
    if kind not in DUE_WORKING_DAYS:
        raise InvalidInput(f"kind must be one of {', '.join(REQUEST_KINDS)}, not {kind!r}", field="kind")
    return calendar.add_working_days(received_at, DUE_WORKING_DAYS[kind])


def is_overdue(request: ReceptionRequest, now: datetime) -> bool:
    """Unanswered past its due date."""
    return request.answered_at is None and request.due_at < now


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """SQL: the requests unanswered past their due date (the same rule as `is_overdue`)."""
    return and_(ReceptionRequest.answered_at.is_(None), ReceptionRequest.due_at < now)


def _text(value: str | None, name: str, *, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"{name} is needed", field=name)
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{name} is {len(value)} characters, at most {MAX_TEXT}", field=name)
    return value


def _reference(session: Session, at: datetime) -> str:
    day = at.astimezone(CHINA).date()
    prefix = f"JD{day:%Y%m%d}-"
    taken = session.scalar(
        select(func.count())
        .select_from(ReceptionRequest)
        .where(ReceptionRequest.reference.like(prefix + "%"))
    )
    return f"{prefix}{(taken or 0) + 1:03d}"


def register(
    session: Session,
    actor: Actor,
    data: RequestIn,
    *,
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> ReceptionRequest:
    """Register a walk-in request (来访登记) with its due date; the member on duty takes it."""
    access.require_community_work(actor, W.register_request)
    now = now or datetime.now(UTC)
    received = data.received_at or now
    if received.tzinfo is None:
        raise InvalidInput("received_at needs a timezone", field="received_at")
    if received > now:
        raise InvalidInput("received_at is in the future", field="received_at")
    if received < now - timedelta(days=MAX_LATE_DAYS):
        raise InvalidInput(
            f"received_at is more than {MAX_LATE_DAYS} days ago: a visit is written down the same month",
            field="received_at",
        )
    Places.load(session).check(data.community_code, data.compound_code or None)
    contact = (data.visitor_contact or "").strip() or None
    if contact and len(contact) > 64:
        raise InvalidInput("visitor_contact is longer than 64 characters", field="visitor_contact")
    row = ReceptionRequest(
        reference=_reference(session, received),
        community_code=data.community_code,
        compound_code=data.compound_code or None,
        received_at=received,
        taken_by=actor.username,
        visitor=_text(data.visitor, "visitor", required=False),
        visitor_contact=contact,
        kind=data.kind,
        asked=_text(data.asked, "asked"),
        due_at=due_at(data.kind, received, calendar or stored_calendar(session)),
        state="open",
    )
    session.add(row)
    session.flush()
    return row


def _open_request(session: Session, request_id: int) -> ReceptionRequest:
    row = session.get(ReceptionRequest, request_id)
    if row is None:
        raise NotFound(f"no reception request {request_id}", field="request")
    if row.answered_at is not None:
        raise InvalidTransition(
            f"request {row.reference} was answered on {row.answered_at.astimezone(CHINA):%Y-%m-%d %H:%M}; "
            "an answered request is not changed (register a new one)",
            field="request",
        )
    return row


def _step(session: Session, row: ReceptionRequest, actor: Actor, kind: str, note: str, now: datetime) -> None:
    session.add(ReceptionFollow(request_id=row.id, at=now, by=actor.username, kind=kind, note=note))
    try:
        session.flush()
    except StaleDataError:
        raise ConcurrentUpdate(f"request {row.reference} was changed meanwhile; reload it") from None


def add_note(
    session: Session, actor: Actor, request_id: int, note: str, *, now: datetime | None = None
) -> None:
    """Write down how a request is being followed (跟进)."""
    access.require_community_work(actor, W.follow_request)
    row = _open_request(session, request_id)
    _step(session, row, actor, "note", _text(note, "note"), now or datetime.now(UTC))


def refer(
    session: Session,
    actor: Actor,
    request_id: int,
    unit_code: str,
    note: str = "",
    *,
    now: datetime | None = None,
) -> None:
    """Refer a request to a unit (转办); it still waits for its answer."""
    access.require_community_work(actor, W.follow_request)
    row = _open_request(session, request_id)
    unit = session.get(Unit, unit_code or "")
    if unit is None:
        raise InvalidInput(f"no unit {unit_code!r}", field="unit_code")
    row.referred_unit_code = unit.code
    row.state = "referred"
    text = _text(note, "note", required=False)
    _step(
        session, row, actor, "referral", f"{unit.name}{': ' + text if text else ''}", now or datetime.now(UTC)
    )


def to_case(
    session: Session,
    ctx: CaseContext,
    actor: Actor,
    request_id: int,
    category: str,
    *,
    now: datetime | None = None,
) -> Case:
    """Turn a request into a case at its compound (or community), routed as usual (转为案件)."""
    access.require_community_work(actor, W.follow_request)
    now = now or datetime.now(UTC)
    row = _open_request(session, request_id)
    if row.case_id is not None:
        raise InvalidTransition(f"request {row.reference} is already a case", field="request")
    lon, lat = _point_of(session, row.compound_code or row.community_code)
    report = ReportIn(
        category=category,
        description=f"会客室来访 {row.reference}: {row.asked}"[:2000],
        lon=lon,
        lat=lat,
        channel=Channel.referral,
    )
    case, _ = submit_report(session, ctx, actor, report, now=now)
    row.case_id = case.id
    row.state = "case"
    _step(session, row, actor, "case", case.tracking_code, now)
    return case


def _point_of(session: Session, code: str) -> tuple[float, float]:
    """A WGS-84 point surely inside an area (ST_PointOnSurface), lon first."""
    point = func.ST_PointOnSurface(Area.geom)
    found = session.execute(
        select(func.ST_X(point), func.ST_Y(point))
        .where(Area.code == code)
        .order_by(Area.generation_high.desc())
        .limit(1)
    ).one_or_none()
    if found is None:
        raise InvalidInput(f"no area {code!r} to place the case in", field="compound_code")
    return float(found[0]), float(found[1])


def answer(
    session: Session, actor: Actor, request_id: int, text: str, *, now: datetime | None = None
) -> None:
    """Record the answer given to the visitor (答复): the request is done."""
    access.require_community_work(actor, W.answer_request)
    now = now or datetime.now(UTC)
    row = _open_request(session, request_id)
    row.answer = _text(text, "answer")
    row.answered_at = now
    row.answered_by = actor.username
    row.state = "answered"
    _step(session, row, actor, "answer", row.answer, now)


# -- reading --------------------------------------------------------------------------------------
def _filter(which: str, now: datetime) -> ColumnElement[bool]:
    if which not in LISTS:
        raise InvalidInput(f"list must be one of {', '.join(LISTS)}, not {which!r}", field="list")
    return {
        "open": ReceptionRequest.answered_at.is_(None),
        "overdue": overdue_clause(now),
        "answered": ReceptionRequest.answered_at.is_not(None),
        "all": or_(ReceptionRequest.id.is_not(None)),
    }[which]


def list_requests(
    session: Session,
    actor: Actor,
    which: str = "open",
    *,
    community_code: str | None = None,
    now: datetime | None = None,
    limit: int = 200,
    lang: str = "zh",
) -> tuple[int, list[RequestView]]:
    """A list of the register (open: oldest due first; answered: newest first) and its size.

    The register's keepers see who came; the duty chief sees what is overdue, without them.
    """
    now = now or datetime.now(UTC)
    keeper = access.may_do_community(actor, W.read_register)
    if not keeper:
        access.require_community_work(actor, W.watch_overdue)
        which = "overdue"
    where = [_filter(which, now)]
    if community_code:
        where.append(ReceptionRequest.community_code == community_code)
    total = session.scalar(select(func.count()).select_from(ReceptionRequest).where(*where)) or 0
    order = (
        [ReceptionRequest.answered_at.desc()]
        if which == "answered"
        else [ReceptionRequest.due_at, ReceptionRequest.id]
    )
    rows = list(session.scalars(select(ReceptionRequest).where(*where).order_by(*order).limit(limit)))
    return total, _views(session, rows, now, keeper=keeper, lang=lang)


def get_request(
    session: Session, actor: Actor, request_id: int, *, now: datetime | None = None, lang: str = "zh"
) -> RequestView:
    """One request with its follow-up, for the register's keepers."""
    access.require_community_work(actor, W.read_register)
    row = session.get(ReceptionRequest, request_id)
    if row is None:
        raise NotFound(f"no reception request {request_id}", field="request")
    (view,) = _views(session, [row], now or datetime.now(UTC), keeper=True, lang=lang, follows=True)
    return view


def _views(
    session: Session,
    rows: list[ReceptionRequest],
    now: datetime,
    *,
    keeper: bool,
    lang: str,
    follows: bool = False,
) -> list[RequestView]:
    """Views of a page of requests in a fixed number of reads (names, units, cases, follows)."""
    places = Places.load(session)
    units = dict(session.execute(select(Unit.code, Unit.name)).all())
    case_ids = [r.case_id for r in rows if r.case_id]
    codes = (
        dict(session.execute(select(Case.id, Case.tracking_code).where(Case.id.in_(case_ids))).all())
        if case_ids
        else {}
    )
    steps: dict[int, list[FollowView]] = {}
    if follows and rows:
        for f in session.scalars(
            select(ReceptionFollow)
            .where(ReceptionFollow.request_id.in_([r.id for r in rows]))
            .order_by(ReceptionFollow.at, ReceptionFollow.id)
        ):
            steps.setdefault(f.request_id, []).append(FollowView(f.at, f.by, f.kind, f.note))
    return [
        RequestView(
            id=r.id,
            reference=r.reference,
            community_code=r.community_code,
            community=places.name(r.community_code, lang),
            compound_code=r.compound_code,
            compound=places.name(r.compound_code, lang),
            kind=r.kind,
            asked=r.asked,
            received_at=r.received_at,
            due_at=r.due_at,
            state=r.state,
            overdue=is_overdue(r, now),
            answered_at=r.answered_at,
            answer=r.answer,
            answered_on_time=None if r.answered_at is None else r.answered_at <= r.due_at,
            referred_unit=units.get(r.referred_unit_code or "") if r.referred_unit_code else None,
            case_tracking_code=codes.get(r.case_id) if r.case_id else None,
            taken_by=r.taken_by,
            visitor=r.visitor if keeper else None,
            visitor_contact=r.visitor_contact if keeper else None,
            follows=steps.get(r.id, []),
        )
        for r in rows
    ]


def overdue_summary(
    session: Session, now: datetime | None = None, limit: int = 5, lang: str = "zh"
) -> tuple[int, list[RequestView]]:
    """For the duty chief's desk and the big screen: how many are overdue, the longest first.

    No visitor names or contacts (the screen shows this to a room)."""
    now = now or datetime.now(UTC)
    where = overdue_clause(now)
    total = session.scalar(select(func.count()).select_from(ReceptionRequest).where(where)) or 0
    rows = list(
        session.scalars(select(ReceptionRequest).where(where).order_by(ReceptionRequest.due_at).limit(limit))
    )
    return total, _views(session, rows, now, keeper=False, lang=lang)
