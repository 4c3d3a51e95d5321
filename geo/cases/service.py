"""Cases: intake (with photos and idempotency) and workflow actions; reading is geo/cases/views.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo import access
from geo.accounts import Actor
from geo.cases.intake import (
    TRACKING_ALPHABET,
    Channel,
    ReportIn,
    file_reports,
    photo_row,
    prepare_report,
    replay,
    report_fingerprint,
    scoped_key,
)
from geo.cases.timelimits import WorkCalendar
from geo.cases.views import find_case
from geo.cases.work_calendar import stored_calendar
from geo.cases.workflow import (
    ENDED,
    Action,
    ActionIn,
    CaseState,
    Step,
    action_named,
    case_actions,
    check_inputs,
    check_transition,
)
from geo.errors import ActionForbidden, ConcurrentUpdate
from geo.photos import Photo, PhotoLimits, check_count, ingest_photo
from geo.routing import Router
from geo.storage import BlobStore
from geo.store.models import Case, CaseEvent, CasePhoto, ReferenceVersion

__all__ = ["TRACKING_ALPHABET", "ActionIn", "CaseContext", "Channel", "ReportIn", "act", "submit_report"]


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
    """File one report in the session's transaction (the API files through `IntakeWriter`).

    Returns the case and whether it was created; a retry with the same Idempotency-Key returns
    the first case and creates nothing (its photos are not stored again).
    """
    photos = photos or []
    now = now or datetime.now(UTC)
    access.require(actor, access.Sight.submit_report)
    key = scoped_key(actor, idempotency_key)
    if key and (existing := session.scalar(select(Case).where(Case.idempotency_key == key))):
        return replay(existing, report_fingerprint(actor, report, photos)).answer().case, False
    prepared = prepare_report(
        ctx.router, ctx.blobs, ctx.photo_limits, actor, report, photos, idempotency_key, now, session=session
    )
    try:
        with session.begin_nested():
            (filed,) = file_reports(session, [prepared], ctx.duplicate_radius_m, ctx.duplicate_window_h)
    except IntegrityError:
        # A concurrent retry with the same key won the race: answer with its case.
        winner = session.scalar(select(Case).where(Case.idempotency_key == key)) if key else None
        if winner is None:
            raise
        return replay(winner, prepared.fingerprint).answer().case, False
    filed.answer()
    # The rows were written by statement: the session's own copy of the case, for its caller.
    case = session.get(Case, filed.case.id) if filed.created else filed.case
    assert case is not None
    return case, filed.created


def _attach(session: Session, case: Case, event: CaseEvent, photo: Photo, purpose: str) -> None:
    exists = session.scalar(
        select(CasePhoto.id).where(CasePhoto.case_id == case.id, CasePhoto.original_key == photo.original_key)
    )
    if exists:
        return
    session.add(photo_row(case, event, photo, purpose))


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
    role_may_now = access.actions_for(actor, case_actions(case))
    access.authorise(actor, action.name, scope, ref=ref, state=state.value, role_may_now=role_may_now)
    check_transition(action, state, case.tracking_code, case_actions(case))
    if refusal := access.scope_refusal(actor, action.name, scope):
        raise ActionForbidden(refusal, field="case")


def _move(session: Session, case: Case, target: CaseState | None, now: datetime) -> None:
    """Set the new state and write the case; a concurrent writer makes the versioned UPDATE fail."""
    if target is not None:
        case.state = target.value
    if target is not None and case.state in ENDED:  # a decision on a closed case keeps its closing
        case.closed_at = now
    case.updated_at = now
    tracking_code = case.tracking_code
    try:
        session.flush()  # UPDATE ... WHERE version = :seen
    except StaleDataError:
        raise ConcurrentUpdate(
            f"case {tracking_code} was changed by someone else at the same time; reload it", field="case"
        ) from None
