"""The case workflow (数字城管 standard): states, actions, who may do them, and their effects.

report → verify (受理/核实) or reject (不予立案) → file (立案) → dispatch (派遣) → sign (签收) or
return (回退) → redispatch (改派) → handle + report back with after-photos (处置, 回告) → check on
site (核查): pass → close (结案), fail → rework (返工). Also extension (延期: requested by the unit,
approved by an operator, at most 2, each adds one original limit), park (挂账: the clock stops),
void (作废), supervise (督办), join (联办: cooperating units), and the claim path for small tasks:
publish to the claim board → claim (认领) → close off (销号).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from geo.accounts import Actor, Role


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


TERMINAL = frozenset({CaseState.rejected, CaseState.closed, CaseState.voided, CaseState.merged})
OPEN = frozenset(CaseState) - TERMINAL
# States in which a unit is working against a deadline.
ON_THE_CLOCK = frozenset({CaseState.dispatched, CaseState.signed, CaseState.rework})
MAX_EXTENSIONS = 2

S = CaseState
R = Role
STAFF = frozenset({R.operator, R.admin})


@dataclass(frozen=True)
class Action:
    """One workflow action: from which states, to which state, by which roles, needing what."""

    name: str
    label_zh: str
    sources: frozenset[CaseState]
    target: CaseState | None  # None: the state does not change
    roles: frozenset[Role]
    needs_reason: bool = False
    needs_after_photo: bool = False


def _a(
    name: str, zh: str, sources: set[CaseState], target: CaseState | None, roles: set[Role], **needs: bool
) -> Action:
    return Action(name, zh, frozenset(sources), target, frozenset(roles), **needs)


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in [
        _a("verify", "受理核实", {S.reported}, S.verified, STAFF),
        _a("reject", "不予立案", {S.reported, S.verified}, S.rejected, STAFF, needs_reason=True),
        _a("file", "立案", {S.verified}, S.filed, STAFF),
        _a("dispatch", "派遣", {S.filed}, S.dispatched, STAFF | {R.dispatcher}),
        _a("sign", "签收", {S.dispatched}, S.signed, {R.unit_handler, R.admin}),
        _a(
            "return",
            "回退",
            {S.dispatched, S.signed},
            S.returned,
            {R.unit_handler, R.admin},
            needs_reason=True,
        ),
        _a("redispatch", "改派", {S.returned}, S.dispatched, STAFF | {R.dispatcher}),
        _a(
            "handle",
            "处置回告",
            {S.signed, S.rework},
            S.handled,
            {R.unit_handler, R.admin},
            needs_after_photo=True,
        ),
        _a("check_pass", "核查通过", {S.handled}, S.checked, STAFF | {R.inspector}),
        _a("check_fail", "核查不通过", {S.handled}, S.rework, STAFF | {R.inspector}, needs_reason=True),
        _a("close", "结案", {S.checked}, S.closed, STAFF),
        _a(
            "request_extension",
            "申请延期",
            set(ON_THE_CLOCK),
            None,
            {R.unit_handler, R.admin},
            needs_reason=True,
        ),
        _a("approve_extension", "批准延期", set(ON_THE_CLOCK), None, STAFF),
        _a("park", "挂账", set(ON_THE_CLOCK), S.parked, STAFF, needs_reason=True),
        _a("unpark", "解除挂账", {S.parked}, None, STAFF),  # back to the state it was parked from
        _a("void", "作废", set(OPEN), S.voided, STAFF, needs_reason=True),
        _a(
            "supervise",
            "督办",
            set(ON_THE_CLOCK) | {S.returned, S.parked, S.handled},
            None,
            STAFF,
            needs_reason=True,
        ),
        _a("join", "联办", set(ON_THE_CLOCK), None, STAFF | {R.dispatcher}),
        _a("publish", "发布认领", {S.filed}, S.published, STAFF),
        _a("claim", "认领", {S.published}, S.claimed, {R.unit_handler, R.resident, R.admin}),
        _a(
            "close_off",
            "销号",
            {S.claimed},
            S.closed,
            {R.unit_handler, R.resident, R.admin},
            needs_after_photo=True,
        ),
        _a("merge", "合并", {S.reported, S.verified, S.filed}, S.merged, STAFF),
    ]
}


def allowed_actions(state: CaseState | str, role: Role | None = None) -> list[str]:
    """Actions possible in a state (for a role, when given), in workflow order."""
    return [
        a.name
        for a in ACTIONS.values()
        if CaseState(state) in a.sources and (role is None or role in a.roles)
    ]


@dataclass(frozen=True)
class CaseScope:
    """What an access decision needs to know about a case."""

    unit_code: str | None
    cooperating_unit_codes: tuple[str, ...]
    grid_code: str | None
    reporter_account_id: int | None
    claimed_by_account_id: int | None


def can_see(actor: Actor, case: CaseScope) -> bool:
    """Whether a person may read the full case (residents see their own; public view aside)."""
    if actor.role in (R.operator, R.dispatcher, R.admin, R.planner):
        return True
    if actor.role is R.unit_handler:
        return actor.unit_code is not None and (
            case.unit_code == actor.unit_code
            or actor.unit_code in case.cooperating_unit_codes
            or case.claimed_by_account_id == actor.id
        )
    if actor.role is R.inspector:
        return case.grid_code in actor.grid_codes or case.reporter_account_id == actor.id
    return case.reporter_account_id == actor.id or case.claimed_by_account_id == actor.id


def scope_refusal(actor: Actor, action: Action, case: CaseScope) -> str | None:
    """Why this person may not act on this case, or None when they may (role already checked)."""
    if actor.role is R.admin:
        return None
    if action.name in ("claim",):
        return None  # the claim board is open to registered units and volunteers
    if action.name == "close_off":
        return (
            None
            if case.claimed_by_account_id == actor.id
            else "only the one who claimed the case may close it off"
        )
    if actor.role is R.unit_handler and case.unit_code != actor.unit_code:
        return (
            f"a handler of unit {actor.unit_code} may act only on cases dispatched to it "
            f"(this one is with {case.unit_code})"
        )
    if actor.role is R.inspector and case.grid_code not in actor.grid_codes:
        return f"an inspector may check only cases in their grids (this one is in {case.grid_code})"
    return None
