"""The case workflow (数字城管 standard): states, actions, what each needs, and its effect.

report → verify (受理/核实) or reject (不予立案) → file (立案) → dispatch (派遣) → sign (签收) or
return (回退) → redispatch (改派) → handle + report back with after-photos (处置, 回告) → check on
site (核查): pass → close (结案), fail → rework (返工). Also extension (延期: requested by the unit,
approved by an operator, at most 2, each adds one original limit), park (挂账: the clock stops),
void (作废), supervise (督办), join (联办: cooperating units), and the claim path for small tasks:
publish to the claim board → claim (认领) → close off (销号).

Each action is one row of `ACTIONS`: the states it starts from, the state it leads to, what it needs,
and its effect on the case as a small function defined just above the table. Who may do it is the
access policy's (geo/access.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from geoalchemy2.shape import from_shape
from pydantic import BaseModel, Field
from shapely.geometry import Point
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from geo.accounts import Actor
from geo.cases.timelimits import WorkCalendar, deadline, extend_deadline, resume_deadline
from geo.errors import InvalidInput, InvalidTransition, NotFound
from geo.routing.decision import RoutingDecision
from geo.store.models import Case, CaseLink, Category, Unit

if TYPE_CHECKING:
    from geo.routing import Router


class CaseState(StrEnum):
    """Where a case stands."""

    reported = "reported"
    verified = "verified"
    rejected = "rejected"
    filed = "filed"
    published = "published"  # on the claim board
    claimed = "claimed"
    dispatched = "dispatched"
    signed = "signed"
    returned = "returned"
    handled = "handled"
    rework = "rework"
    checked = "checked"
    closed = "closed"
    parked = "parked"
    voided = "voided"
    merged = "merged"


#: Each state in the words a command centre uses (shown on pages, maps and reports).
STATE_LABELS_ZH: dict[str, str] = {
    "reported": "待受理",
    "verified": "已受理",
    "rejected": "不予立案",
    "filed": "已立案",
    "published": "待认领",
    "claimed": "已认领",
    "dispatched": "已派遣",
    "signed": "已签收",
    "returned": "已回退",
    "handled": "已处置",
    "rework": "返工",
    "checked": "已核查",
    "closed": "已结案",
    "parked": "挂账",
    "voided": "已作废",
    "merged": "已合并",
}

TERMINAL = frozenset({CaseState.rejected, CaseState.closed, CaseState.voided, CaseState.merged})
OPEN = frozenset(CaseState) - TERMINAL
# States in which a unit is working against a deadline.
ON_THE_CLOCK = frozenset({CaseState.dispatched, CaseState.signed, CaseState.rework})
# States that end a case's life: they set `closed_at`.
ENDED = frozenset({CaseState.closed, CaseState.rejected, CaseState.voided})
MAX_EXTENSIONS = 2

S = CaseState


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
    lon: float | None = Field(default=None, description="place: WGS-84 longitude chosen on the map")
    lat: float | None = Field(default=None, description="place: WGS-84 latitude chosen on the map")


@dataclass
class Step:
    """One action being applied: what its effect reads, and the state it leads to."""

    session: Session
    calendar: WorkCalendar
    actor: Actor
    case: Case
    state: CaseState  # before the action
    data: ActionIn
    now: datetime
    target: CaseState | None  # an effect may decide it (unpark returns to where it was)
    router: Router | None = None  # for the effects that route again (place)


# An effect changes the case and returns what the event records about it (or None).
Effect = Callable[[Step], dict[str, Any] | None]


def no_effect(step: Step) -> None:
    """The action only moves the state (or records an event)."""
    return None


@dataclass(frozen=True)
class Action:
    """One workflow action: from which states, to which state, needing what, doing what."""

    name: str
    label_zh: str
    sources: frozenset[CaseState]
    target: CaseState | None  # None: the state does not change
    needs_reason: bool = False
    needs_after_photo: bool = False
    effect: Effect = no_effect
    #: A condition on the case beyond its state (None: the state is enough); the action is offered
    #: only where it holds, and its effect refuses it elsewhere.
    applies: Callable[[Case], bool] | None = None


# -- the effects ----------------------------------------------------------------------------------
def _existing_unit(session: Session, code: str, field: str) -> str:
    if session.get(Unit, code) is None:
        raise InvalidInput(f"unit {code!r} does not exist", field=field)
    return code


def _start_clock(step: Step, unit: str) -> dict[str, Any]:
    """Give the case to a unit and start its time limit from the category (派遣)."""
    case = step.case
    category = step.session.get(Category, case.category_code)
    if category is None:  # the foreign key makes this impossible; say so if it ever happens
        raise NotFound(
            f"category {case.category_code} of case {case.tracking_code} is gone", field="category"
        )
    extra: dict[str, Any] = {"from_unit": case.unit_code, "to_unit": unit}
    case.unit_code = unit
    case.dispatched_at = step.now
    case.time_limit = category.time_limit
    case.time_limit_unit = category.time_limit_unit
    due = deadline(step.now, float(category.time_limit), category.time_limit_unit, step.calendar)
    extra |= _set_deadline(step, due)
    return extra


def _set_deadline(step: Step, due: datetime) -> dict[str, Any]:
    """Set the case's deadline; past the loaded calendar it is provisional (暂定), what the event says."""
    case = step.case
    case.deadline_at = due
    case.deadline_provisional = step.calendar.is_provisional(due, case.time_limit_unit or "natural_days")
    extra: dict[str, Any] = {"deadline_at": due.isoformat()}
    if case.deadline_provisional:
        extra["deadline_provisional"] = True
    return extra


def dispatch(step: Step) -> dict[str, Any]:
    """Send a filed case to the routed unit, or to the one the dispatcher names."""
    unit = step.data.unit or step.case.unit_code
    if not unit:
        raise InvalidInput("dispatch needs a unit (this case could not be routed)", field="unit")
    extra = _start_clock(step, _existing_unit(step.session, unit, "unit"))
    step.case.extensions = 0
    return extra


def redispatch(step: Step) -> dict[str, Any]:
    """Send a returned case to another unit (改派); its extensions so far still count."""
    unit = step.data.unit
    if not unit:
        raise InvalidInput("redispatch needs a unit different from the one that returned it", field="unit")
    _existing_unit(step.session, unit, "unit")
    if unit == step.case.unit_code:
        raise InvalidInput(f"redispatch to a different unit than {unit}, which returned it", field="unit")
    return _start_clock(step, unit)


def request_extension(step: Step) -> None:
    """The unit asks for more time (申请延期); one request waits for approval at a time."""
    if step.case.extension_requested:
        raise InvalidTransition(
            f"case {step.case.tracking_code} already has an extension request waiting for approval",
            field="action",
        )
    if step.case.extensions >= MAX_EXTENSIONS:
        raise InvalidTransition(
            f"case {step.case.tracking_code} already had {MAX_EXTENSIONS} extensions, the most allowed",
            field="action",
        )
    step.case.extension_requested = True


def approve_extension(step: Step) -> dict[str, Any]:
    """Add one original time limit to the deadline (批准延期)."""
    case = step.case
    if not case.extension_requested:
        raise InvalidTransition("no extension was requested for this case", field="action")
    if case.extensions >= MAX_EXTENSIONS:
        raise InvalidTransition(f"at most {MAX_EXTENSIONS} extensions", field="action")
    if case.deadline_at is None or case.time_limit is None or case.time_limit_unit is None:
        raise InvalidTransition(f"case {case.tracking_code} has no time limit to extend", field="action")
    due = extend_deadline(case.deadline_at, float(case.time_limit), case.time_limit_unit, step.calendar)
    case.extensions += 1
    case.extension_requested = False
    return _set_deadline(step, due) | {"extensions": case.extensions}


def park(step: Step) -> None:
    """Stop the clock (挂账), remembering where the case stood."""
    step.case.parked_at = step.now
    step.case.parked_from_state = step.state.value


def unpark(step: Step) -> dict[str, Any]:
    """Restart the clock where it stopped, moving the deadline by the time parked."""
    case = step.case
    step.target = CaseState(case.parked_from_state or CaseState.dispatched)
    if case.deadline_at and case.parked_at and case.time_limit_unit:
        _set_deadline(
            step,
            resume_deadline(case.deadline_at, case.parked_at, step.now, case.time_limit_unit, step.calendar),
        )
    parked_hours = round((step.now - case.parked_at).total_seconds() / 3600, 2) if case.parked_at else None
    case.parked_at = None
    case.parked_from_state = None
    return {
        "parked_hours": parked_hours,
        "deadline_at": case.deadline_at.isoformat() if case.deadline_at else None,
    }


def supervise(step: Step) -> None:
    """Put the case under the duty chief's supervision (督办), once."""
    if step.case.supervised_at is not None:
        raise InvalidTransition(
            f"case {step.case.tracking_code} is under supervision since "
            f"{step.case.supervised_at:%Y-%m-%d %H:%M} UTC",
            field="action",
        )
    step.case.supervised_at = step.now


def join(step: Step) -> dict[str, Any]:
    """Add cooperating units (联办)."""
    case = step.case
    units = [u for u in step.data.units if u != case.unit_code]
    if not units:
        raise InvalidInput("join needs one or more cooperating units", field="units")
    unknown = [u for u in units if step.session.get(Unit, u) is None]
    if unknown:
        raise InvalidInput(f"unknown units {unknown}", field="units")
    case.cooperating_unit_codes = sorted(set(case.cooperating_unit_codes or []) | set(units))
    return {"units": units}


def claim(step: Step) -> None:
    """Take a task from the claim board (认领); a unit's handler claims it for the unit."""
    step.case.claimed_by_account_id = step.actor.id
    if step.actor.unit_code:
        step.case.unit_code = step.actor.unit_code


def merge(step: Step) -> dict[str, Any]:
    """Fold a duplicate into the case that is kept; their suggested link becomes `merged`."""
    case = step.case
    if not step.data.into:
        raise InvalidInput("merge needs `into`: the tracking code of the case to keep", field="into")
    kept = step.session.scalar(select(Case).where(Case.tracking_code == step.data.into))
    if kept is None:
        raise NotFound(f"no case {step.data.into}", field="case")
    if kept.id == case.id or CaseState(kept.state) in TERMINAL:
        raise InvalidInput("merge into another open case", field="into")
    case.merged_into_id = kept.id
    pair = or_(
        and_(CaseLink.case_id == case.id, CaseLink.other_case_id == kept.id),
        and_(CaseLink.case_id == kept.id, CaseLink.other_case_id == case.id),
    )
    step.session.execute(update(CaseLink).where(pair).values(status="merged"))
    return {"into": kept.tracking_code}


def _under_review(case: Case) -> bool:
    return case.review_requested_at is not None


def _check_under_review(step: Step) -> None:
    if not _under_review(step.case):
        raise InvalidTransition(
            f"case {step.case.tracking_code} has no review to decide: only a case its reporter "
            "rated unsatisfied (不满意) waits for the centre's review",
            field="action",
        )


def reopen(step: Step) -> dict[str, Any]:
    """The centre's review finds the complaint right (复核重办): the case goes back to its unit to
    be handled again (返工), on a new time limit from now; the closing no longer stands."""
    _check_under_review(step)
    case = step.case
    case.review_requested_at = None
    case.closed_at = None
    category = step.session.get(Category, case.category_code)
    extra: dict[str, Any] = {"review": "reopened", "unit": case.unit_code}
    if category is not None:
        case.time_limit = category.time_limit
        case.time_limit_unit = category.time_limit_unit
        due = deadline(step.now, float(category.time_limit), category.time_limit_unit, step.calendar)
        extra |= _set_deadline(step, due)
    return extra


def dismiss_review(step: Step) -> dict[str, Any]:
    """The centre's review keeps the closing (复核维持), with the reason the reporter reads."""
    _check_under_review(step)
    step.case.review_requested_at = None
    return {"review": "dismissed"}


def apply_routing(case: Case, decision: RoutingDecision, located_by: str) -> None:
    """Record a routing decision on a case: its point (WGS-84 lon/lat), areas, units and why."""
    routing = decision.model_dump(mode="json")
    routing["located_by"] = located_by

    def code(ref: object) -> str | None:
        return getattr(ref, "code", None)

    case.location = from_shape(Point(decision.lon, decision.lat), srid=4326)
    case.grid_area_id = decision.grid.area_id if decision.grid else None
    case.grid_code = code(decision.grid)
    case.community_code = code(decision.community)
    case.street_code = code(decision.street)
    case.district_code = code(decision.district)
    case.unit_code = code(decision.primary_unit)
    case.cooperating_unit_codes = [u.code for u in decision.cooperating_units]
    case.routing = routing


def place(step: Step) -> dict[str, Any]:
    """Put a report on the map by hand (人工定位) and route it again from there: for the triage
    queue's reports that routing could not place, or that came in at the wrong spot."""
    data = step.data
    if data.lon is None or data.lat is None:
        raise InvalidInput("place needs lon and lat: the point chosen on the map", field="location")
    if step.router is None:  # act() always passes its router; a caller without one cannot place
        raise InvalidInput("placing by hand needs the router", field="location")
    decision = step.router.route(data.lon, data.lat, step.case.category_code, "wgs84", at=step.now)
    apply_routing(step.case, decision, "placed by hand")
    return {
        "lon": decision.lon,
        "lat": decision.lat,
        "status": decision.status.value,
        "grid": step.case.grid_code,
        "unit": step.case.unit_code,
    }


def _a(
    name: str,
    zh: str,
    sources: set[CaseState] | frozenset[CaseState],
    target: CaseState | None,
    effect: Effect = no_effect,
    *,
    reason: bool = False,
    after_photo: bool = False,
    applies: Callable[[Case], bool] | None = None,
) -> Action:
    return Action(name, zh, frozenset(sources), target, reason, after_photo, effect, applies)


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in [
        _a("verify", "受理核实", {S.reported}, S.verified),
        _a("reject", "不予立案", {S.reported, S.verified}, S.rejected, reason=True),
        _a("file", "立案", {S.verified}, S.filed),
        _a("dispatch", "派遣", {S.filed}, S.dispatched, dispatch),
        _a("sign", "签收", {S.dispatched}, S.signed),
        _a("return", "回退", {S.dispatched, S.signed}, S.returned, reason=True),
        _a("redispatch", "改派", {S.returned}, S.dispatched, redispatch),
        _a("handle", "处置回告", {S.signed, S.rework}, S.handled, after_photo=True),
        _a("check_pass", "核查通过", {S.handled}, S.checked),
        _a("check_fail", "核查不通过", {S.handled}, S.rework, reason=True),
        _a("close", "结案", {S.checked}, S.closed),
        _a("request_extension", "申请延期", ON_THE_CLOCK, None, request_extension, reason=True),
        _a("approve_extension", "批准延期", ON_THE_CLOCK, None, approve_extension),
        _a("park", "挂账", ON_THE_CLOCK, S.parked, park, reason=True),
        _a("unpark", "解除挂账", {S.parked}, None, unpark),  # back to the state it was parked from
        _a("void", "作废", OPEN, S.voided, reason=True),
        _a(
            "supervise",
            "督办",
            ON_THE_CLOCK | {S.returned, S.parked, S.handled},
            None,
            supervise,
            reason=True,
        ),
        _a("join", "联办", ON_THE_CLOCK, None, join),
        _a("publish", "发布认领", {S.filed}, S.published),
        _a("claim", "认领", {S.published}, S.claimed, claim),
        _a("close_off", "销号", {S.claimed}, S.closed, after_photo=True),
        _a("merge", "合并", {S.reported, S.verified, S.filed}, S.merged, merge),
        _a("place", "人工定位", {S.reported, S.verified, S.filed}, None, place),
        # The centre decides on a reporter's unsatisfied rating (复核): reopen or keep the closing.
        _a("reopen", "复核重办", {S.closed}, S.rework, reopen, reason=True, applies=_under_review),
        _a(
            "dismiss_review", "复核维持", {S.closed}, None, dismiss_review, reason=True, applies=_under_review
        ),
    ]
}


def action_named(name: str) -> Action:
    """The action of that name; an unknown name is bad input naming the choices."""
    action = ACTIONS.get(name)
    if action is None:
        raise InvalidInput(f"unknown action {name!r}; actions are {sorted(ACTIONS)}", field="action")
    return action


def possible_actions(state: CaseState | str) -> list[str]:
    """Actions possible in a state, whoever asks, in workflow order."""
    return list(_POSSIBLE[CaseState(state)])


def case_actions(case: Case) -> list[str]:
    """Actions possible on this case now, whoever asks: its state's, where their condition holds."""
    return [a for a in _POSSIBLE[CaseState(case.state)] if (c := ACTIONS[a].applies) is None or c(case)]


# Per state, once: a queue page asks for every row.
_POSSIBLE: dict[CaseState, tuple[str, ...]] = {
    s: tuple(a.name for a in ACTIONS.values() if s in a.sources) for s in CaseState
}


def check_transition(
    action: Action, state: CaseState, tracking_code: str, allowed_now: list[str] | None = None
) -> None:
    """Refuse an action the case's state (and its condition, `allowed_now` being the case's
    actions) does not allow, naming what is allowed now."""
    possible = possible_actions(state) if allowed_now is None else allowed_now
    if state not in action.sources or action.name not in possible:
        allowed = ", ".join(possible) or "nothing (closed)"
        raise InvalidTransition(
            f"case {tracking_code} is {state.value}: {action.name} is not allowed; allowed now: {allowed}",
            field="action",
        )


def check_inputs(action: Action, data: ActionIn, photo_count: int) -> None:
    """Refuse an action without the reason or after-photo it needs."""
    if action.needs_reason and not (data.reason or "").strip():
        raise InvalidInput(f"{action.name} needs a reason", field="reason")
    if action.needs_after_photo and photo_count == 0:
        raise InvalidInput(f"{action.name} needs at least one after-photo", field="photos")
