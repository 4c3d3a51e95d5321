"""The whole role × action matrix, and concurrent actions on one case (optimistic locking)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from geo import access
from geo.accounts import Actor, Role, actor_of
from geo.cases.service import ActionIn, ReportIn, act, submit_report
from geo.cases.views import case_views
from geo.cases.workflow import ACTIONS, CaseState, possible_actions
from geo.errors import ActionForbidden, ConcurrentUpdate, InvalidInput, InvalidTransition, NotFound
from geo.store.models import Account, Case, CaseEvent, CasePhoto
from tests.conftest import FIXTURES, rolled_back

AFTER = (FIXTURES / "photos" / "canal_after.jpg").read_bytes()
CANAL = (113.8999, 29.7249)
PLACED_AT = {"lon": CANAL[0], "lat": CANAL[1]}  # where a clerk puts a report by hand (place)


@pytest.fixture
def tx(cases_store):
    """A session on the cases database, rolled back after the test."""
    with rolled_back(cases_store) as session:
        yield session


@pytest.fixture
def context(case_client):
    return case_client.app.state.cases


def actor(session: Session, username: str) -> Actor:
    return actor_of(session.scalar(select(Account).where(Account.username == username)))


ROLE_ACCOUNT = {
    Role.inspector: "inspector",
    Role.resident: "resident",
    Role.operator: "operator",
    Role.dispatcher: "dispatcher",
    Role.unit_handler: "unit_handler",
    Role.admin: "admin",
    Role.planner: "planner",
    Role.community_staff: "community_staff",
    Role.branch_secretary: "branch_secretary",
}


def case_in_state(
    session,
    context,
    state: CaseState,
    claimed_by: int | None = None,
    extension_requested: bool = False,
    review_requested: bool = False,
) -> Case:
    """A canal case (routed to WATER, in the demo inspector's grids) forced into a state."""
    case, _ = submit_report(
        session, context, actor(session, "inspector"), ReportIn(category="E0102", lon=CANAL[0], lat=CANAL[1])
    )
    values: dict = {"state": state.value, "unit_code": "WATER"}
    if state in (CaseState.dispatched, CaseState.signed, CaseState.rework, CaseState.parked):
        values.update(
            deadline_at=datetime(2026, 12, 1, tzinfo=UTC),
            time_limit=4,
            time_limit_unit="working_hours",
            extension_requested=extension_requested,
        )
    if state is CaseState.parked:
        values.update(parked_at=datetime.now(UTC), parked_from_state="signed")
    if claimed_by is not None:
        values["claimed_by_account_id"] = claimed_by
    if review_requested:
        values["review_requested_at"] = datetime.now(UTC)
    session.execute(update(Case).where(Case.id == case.id).values(**values))
    session.expire(case)
    return case


def fields_for(name: str) -> tuple[ActionIn, list[bytes]]:
    """Everything an action may need: a reason, a unit, cooperating units, an after-photo."""
    data = ActionIn(
        reason="测试原因",
        units=["CGJ"],
        unit="CGJ" if name == "redispatch" else None,
        **(PLACED_AT if name == "place" else {}),
    )
    return data, [AFTER] if ACTIONS[name].needs_after_photo else []


MATRIX = list(itertools.product(sorted(ACTIONS), list(Role)))


@pytest.mark.parametrize(("name", "role"), MATRIX, ids=[f"{a}-{r.value}" for a, r in MATRIX])
def test_role_action_matrix(tx, context, name, role):
    """Each role may do exactly the actions the access policy gives it, on cases in its scope."""
    action = ACTIONS[name]
    who = actor(tx, ROLE_ACCOUNT[role])
    state = sorted(action.sources)[0]
    if name == "unpark":
        state = CaseState.parked
    claimer = who.id if name == "close_off" else None
    case = case_in_state(
        tx,
        context,
        state,
        claimed_by=claimer,
        extension_requested=name == "approve_extension",
        review_requested=ACTIONS[name].applies is not None,
    )
    data, photos = fields_for(name)
    if name == "merge":
        keep = case_in_state(tx, context, CaseState.verified)
        data.into = keep.tracking_code
    expected_ok = role in access.roles_for(name)
    if expected_ok:
        updated = act(tx, context, who, case.id, name, data, photos)
        if action.target is not None:
            assert updated.state == action.target.value
    else:
        # A role that may not see the case at all is told it does not exist (no leak); one
        # that sees it is told which actions its role has.
        with pytest.raises((ActionForbidden, NotFound)) as caught:
            act(tx, context, who, case.id, name, data, photos)
        if isinstance(caught.value, ActionForbidden):
            assert f"role {role.value} may not {name}" in caught.value.message


def test_out_of_scope_handlers_and_inspectors_are_refused(tx, context):
    case = case_in_state(tx, context, CaseState.dispatched)
    with pytest.raises(NotFound):
        act(tx, context, actor(tx, "handler_cgj"), case.id, "sign")  # not their unit's case
    handled = case_in_state(tx, context, CaseState.handled)
    with pytest.raises(NotFound):
        act(tx, context, actor(tx, "inspector_far"), handled.id, "check_pass")
    planner = actor(tx, "planner")
    assert access.actions_for(planner, possible_actions(CaseState.handled)) == []


def test_every_state_lists_its_allowed_actions(tx, context):
    case = case_in_state(tx, context, CaseState.closed)
    with pytest.raises(InvalidTransition, match="nothing"):
        act(tx, context, actor(tx, "operator"), case.id, "verify")


def test_concurrent_actions_cannot_both_win(cases_store, context):
    """Two operators act on the same version at once: one wins, the other gets a conflict."""
    with cases_store.transaction() as session:
        case = case_in_state(session, context, CaseState.reported)
        case_id = case.id
    first = cases_store.sessions()
    second = cases_store.sessions()
    try:
        a = first.get(Case, case_id)
        b = second.get(Case, case_id)
        assert a.version == b.version
        act(first, context, actor(first, "operator"), case_id, "verify")
        first.commit()
        with pytest.raises(ConcurrentUpdate):
            act(second, context, actor(second, "operator"), case_id, "reject", ActionIn(reason="重复"))
        second.rollback()
    finally:
        first.close()
        second.close()
    with cases_store.transaction() as session:
        assert session.get(Case, case_id).state == "verified"


def test_a_triage_report_placed_by_hand_is_routed_again(tx, context):
    """An unroutable report (no grid near it) placed on the map gets its grid and unit (人工定位)."""
    clerk = actor(tx, "operator")
    lost, _ = submit_report(tx, context, clerk, ReportIn(category="E0102", lon=113.5, lat=29.5))
    assert lost.unit_code is None and lost.routing["status"] == "unroutable"
    placed = act(tx, context, clerk, lost.id, "place", ActionIn(**PLACED_AT))
    assert placed.state == "reported" and placed.grid_code is not None and placed.unit_code is not None
    assert placed.routing["located_by"] == "placed by hand" and placed.routing["status"] != "unroutable"
    event = placed_event(tx, placed.id)
    assert event.data["grid"] == placed.grid_code and event.data["unit"] == placed.unit_code
    with pytest.raises(InvalidInput, match="lon and lat"):
        act(tx, context, clerk, lost.id, "place", ActionIn())


def placed_event(session: Session, case_id: int) -> CaseEvent:
    return session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == "place")
    ).one()


def test_a_check_on_site_keeps_its_photo_as_a_check_photo(tx, context):
    """The inspector's photo from a check (核查) is neither the report's nor the unit's."""
    handled = case_in_state(tx, context, CaseState.handled)
    act(tx, context, actor(tx, "inspector"), handled.id, "check_pass", ActionIn(note="已核查"), [AFTER])
    purposes = tx.scalars(select(CasePhoto.purpose).where(CasePhoto.case_id == handled.id)).all()
    assert "check" in purposes and purposes.count("check") == 1


def test_the_centre_decides_an_unsatisfied_rating_reopen_or_keep_the_closing(tx, context):
    """A closed case its reporter rated 不满意 waits for the centre's review (复核): reopening it
    sends it back to its unit on a new time limit (the unit handles it again); keeping the
    closing needs a reason and leaves the closing time as it was. Neither is offered otherwise."""
    chief, handler = actor(tx, "operator"), actor(tx, "unit_handler")
    closed = case_in_state(tx, context, CaseState.closed)
    assert "reopen" not in case_views(tx, chief, [closed])[0].allowed_actions
    with pytest.raises(InvalidTransition, match="allowed now: nothing"):
        act(tx, context, chief, closed.id, "reopen", ActionIn(reason="问题仍未解决"))

    waiting = case_in_state(tx, context, CaseState.closed, review_requested=True)
    tx.execute(update(Case).where(Case.id == waiting.id).values(closed_at=datetime(2026, 11, 30, tzinfo=UTC)))
    tx.expire(waiting)
    allowed = case_views(tx, chief, [waiting])[0].allowed_actions
    assert {"reopen", "dismiss_review"} <= set(allowed)
    with pytest.raises(InvalidInput, match="needs a reason"):
        act(tx, context, chief, waiting.id, "reopen", ActionIn())
    reopened = act(tx, context, chief, waiting.id, "reopen", ActionIn(reason="问题仍未解决"))
    assert reopened.state == "rework" and reopened.review_requested_at is None
    assert reopened.closed_at is None and reopened.deadline_at is not None
    assert reopened.deadline_at > datetime.now(UTC)
    event = tx.scalars(
        select(CaseEvent).where(CaseEvent.case_id == waiting.id).order_by(CaseEvent.id.desc())
    ).first()
    assert (event.action, event.from_state, event.to_state, event.note) == (
        "reopen",
        "closed",
        "rework",
        "问题仍未解决",
    )
    assert event.data["review"] == "reopened"
    # Back in the workflow: the unit handles it again.
    assert "handle" in case_views(tx, handler, [reopened])[0].allowed_actions
    act(tx, context, handler, waiting.id, "handle", ActionIn(note="再次清理"), [AFTER])

    kept = case_in_state(tx, context, CaseState.closed, review_requested=True)
    closed_at = datetime(2026, 11, 29, 8, tzinfo=UTC)
    tx.execute(update(Case).where(Case.id == kept.id).values(closed_at=closed_at))
    tx.expire(kept)
    with pytest.raises(InvalidInput, match="needs a reason"):
        act(tx, context, chief, kept.id, "dismiss_review", ActionIn())
    done = act(tx, context, chief, kept.id, "dismiss_review", ActionIn(reason="新发生的问题，已另行立案"))
    assert done.state == "closed" and done.closed_at == closed_at and done.review_requested_at is None
    with pytest.raises(InvalidTransition):
        act(tx, context, chief, kept.id, "dismiss_review", ActionIn(reason="again"))
