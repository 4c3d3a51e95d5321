"""The one access policy: role × action, role × field, case scope, and SQL = Python visibility."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select, update

from geo import access
from geo.access import CaseScope, Sight
from geo.accounts import Actor, Role, actor_of
from geo.cases.service import ReportIn, submit_report
from geo.cases.workflow import ACTIONS
from geo.errors import ActionForbidden
from geo.store.models import Account, Case
from tests.conftest import rolled_back

# Who does what, written out from DOMAIN.md's command-centre roles (not derived from the code):
# 受理员/值班长 = operator, 派遣员 = dispatcher, 责任单位 = unit_handler, 监督员 = inspector.
EXPECTED_ACTIONS = {
    "verify": {"operator", "admin"},
    "reject": {"operator", "admin"},
    "file": {"operator", "admin"},
    "dispatch": {"operator", "dispatcher", "admin"},
    "sign": {"unit_handler", "admin"},
    "return": {"unit_handler", "admin"},
    "redispatch": {"operator", "dispatcher", "admin"},
    "handle": {"unit_handler", "admin"},
    "check_pass": {"operator", "inspector", "admin"},
    "check_fail": {"operator", "inspector", "admin"},
    "close": {"operator", "admin"},
    "request_extension": {"unit_handler", "admin"},
    "approve_extension": {"operator", "admin"},
    "park": {"operator", "admin"},
    "unpark": {"operator", "admin"},
    "void": {"operator", "admin"},
    "supervise": {"operator", "admin"},
    "join": {"operator", "dispatcher", "admin"},
    "publish": {"operator", "admin"},
    "claim": {"unit_handler", "resident", "admin"},
    "close_off": {"unit_handler", "resident", "admin"},
    "merge": {"operator", "admin"},
    "place": {"operator", "admin"},  # 受理员 puts a triage report on the map by hand
}
# Role × field and surface: who may see each private part and each restricted surface.
EXPECTED_SIGHTS = {
    Sight.reporter_contact: {"inspector", "resident", "operator", "dispatcher", "admin", "planner"},
    Sight.reporter_identity: {r.value for r in Role},
    Sight.original_photos: {"operator", "admin"},
    Sight.statistics: {"operator", "dispatcher", "admin", "planner"},
    # A unit handler may hold this sight, but reads only their own unit's figures (below).
    Sight.unit_statistics: {"unit_handler", "operator", "dispatcher", "admin", "planner"},
    Sight.map_tracking_codes: {"operator", "dispatcher", "admin", "planner"},
    Sight.submit_report: {"inspector", "resident", "operator", "dispatcher", "admin", "community_staff"},
}


def person(role: Role, *, id: int = 1, unit: str | None = None, grids: tuple[str, ...] = ()) -> Actor:
    return Actor(id, role.value, role, unit, grids)


def actors() -> list[Actor]:
    return [
        person(Role.operator, id=1),
        person(Role.dispatcher, id=2),
        person(Role.admin, id=3),
        person(Role.planner, id=4),
        person(Role.unit_handler, id=5, unit="WATER"),
        person(Role.unit_handler, id=6, unit="CGJ"),
        person(Role.inspector, id=7, grids=("G1",)),
        person(Role.inspector, id=8, grids=("G2",)),
        person(Role.resident, id=9),
        person(Role.resident, id=10),
    ]


def test_every_action_has_exactly_the_expected_roles():
    assert set(access.ACTION_ROLES) == set(ACTIONS) == set(EXPECTED_ACTIONS)
    for name, roles in EXPECTED_ACTIONS.items():
        assert {r.value for r in access.roles_for(name)} == roles, name


@pytest.mark.parametrize(("sight", "role"), list(itertools.product(Sight, Role)))
def test_role_field_matrix(sight, role):
    assert access.may(person(role), sight) is (role.value in EXPECTED_SIGHTS[sight])


def test_nobody_signed_in_sees_nothing_restricted():
    assert not any(access.may(None, sight) for sight in Sight)


def test_a_field_of_a_case_also_needs_the_case():
    theirs = CaseScope("CGJ", (), "G9", reporter_account_id=99, claimed_by_account_id=None)
    resident = person(Role.resident, id=9)
    assert access.may(resident, Sight.reporter_contact)
    assert not access.may(resident, Sight.reporter_contact, theirs)
    assert access.may(resident, Sight.reporter_contact, CaseScope("CGJ", (), "G9", 9, None))
    # A unit handler works the case but never sees the caller's contact (the centre calls back).
    handler = person(Role.unit_handler, id=5, unit="CGJ")
    assert access.may_see_case(handler, theirs)
    assert not access.may(handler, Sight.reporter_contact, theirs)


def test_a_unit_reads_its_own_figures_and_no_other_units():
    water = person(Role.unit_handler, unit="WATER")
    assert access.may_read_unit_statistics(water, "WATER")
    assert not access.may_read_unit_statistics(water, "CGJ")
    assert not access.may_read_unit_statistics(water, None)
    assert not access.may(water, Sight.statistics)  # nor the city's figures or the ranking
    # A handler whose account names no unit reads no unit's figures.
    assert not access.may_read_unit_statistics(person(Role.unit_handler), "WATER")
    for role in (Role.operator, Role.dispatcher, Role.admin, Role.planner):
        assert access.may_read_unit_statistics(person(role), "CGJ"), role
    for role in (Role.inspector, Role.resident):
        assert not access.may_read_unit_statistics(person(role, unit="WATER"), "WATER"), role
    assert not access.may_read_unit_statistics(None, "WATER")


def test_refusals_name_who_may():
    with pytest.raises(ActionForbidden, match="planners and command-centre staff may") as caught:
        access.require(person(Role.unit_handler, unit="WATER"), Sight.statistics)
    assert caught.value.field == "authorization"
    with pytest.raises(ActionForbidden, match="operators and admins") as caught:
        access.require(person(Role.planner), Sight.original_photos)
    assert caught.value.field == "photo"


SCOPES = {
    "water_in_g1_by_7": CaseScope("WATER", (), "G1", 7, None),
    "cgj_in_g2_by_9": CaseScope("CGJ", ("WATER",), "G2", 9, None),
    "unrouted_in_g2": CaseScope(None, (), "G2", 10, None),
    "claimed_by_10": CaseScope(None, (), None, 8, 10),
}
# Who may read each case: the centre and planners all; units theirs and those they cooperate on;
# inspectors their grids and their own reports; residents their own and what they claimed.
EXPECTED_READERS = {
    "water_in_g1_by_7": {1, 2, 3, 4, 5, 7},
    "cgj_in_g2_by_9": {1, 2, 3, 4, 5, 6, 8, 9},
    "unrouted_in_g2": {1, 2, 3, 4, 8, 10},
    "claimed_by_10": {1, 2, 3, 4, 8, 10},
}


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_who_reads_which_case(scope):
    readers = {a.id for a in actors() if access.may_see_case(a, SCOPES[scope])}
    assert readers == EXPECTED_READERS[scope]


def test_scope_rules_of_actions():
    water, cgj = person(Role.unit_handler, id=5, unit="WATER"), person(Role.unit_handler, id=6, unit="CGJ")
    cooperating = SCOPES["cgj_in_g2_by_9"]  # WATER cooperates, CGJ has it
    assert access.may_act(cgj, "sign", cooperating)
    assert not access.may_act(water, "sign", cooperating)  # a cooperating unit reads, never signs
    assert "dispatched to it" in (access.scope_refusal(water, "sign", cooperating) or "")
    assert access.may_act(person(Role.inspector, grids=("G2",)), "check_pass", cooperating)
    assert not access.may_act(person(Role.inspector, grids=("G1",)), "check_pass", cooperating)
    # The claim board is open to claimers whatever the unit; closing off is the claimer's alone.
    assert access.may_act(person(Role.resident, id=9), "claim", SCOPES["unrouted_in_g2"])
    assert access.may_act(person(Role.resident, id=10), "close_off", SCOPES["claimed_by_10"])
    assert not access.may_act(person(Role.resident, id=9), "close_off", SCOPES["claimed_by_10"])
    assert access.may_act(person(Role.admin), "sign", cooperating)
    assert not access.may_act(person(Role.planner), "verify", cooperating)


def test_actions_for_a_person_are_role_and_scope():
    possible = ["sign", "return", "request_extension", "approve_extension", "park", "join"]
    water = person(Role.unit_handler, id=5, unit="WATER")
    assert access.actions_for(water, possible, SCOPES["water_in_g1_by_7"]) == [
        "sign",
        "return",
        "request_extension",
    ]
    assert access.actions_for(water, possible, SCOPES["cgj_in_g2_by_9"]) == []
    assert access.actions_for(person(Role.dispatcher), possible) == ["join"]


def test_sql_visibility_is_the_same_rule(cases_store, case_client):
    """`visible_cases` (for lists) and `may_see_case` (for one case) agree on real rows."""
    context = case_client.app.state.cases
    with rolled_back(cases_store) as session:
        accounts = {a.username: a for a in session.scalars(select(Account))}
        reporter = actor_of(accounts["inspector"])
        made = []
        for unit, cooperating, grid, by, claimed in [
            ("WATER", [], None, "inspector", None),
            ("CGJ", ["WATER"], None, "resident", None),
            (None, [], "421281003009001", "resident2", None),
            ("CGJ", [], None, "inspector", "resident2"),
        ]:
            case, _ = submit_report(
                session, context, reporter, ReportIn(category="E0102", lon=113.8999, lat=29.7249)
            )
            values: dict = {"unit_code": unit, "cooperating_unit_codes": cooperating}
            values["reporter_account_id"] = accounts[by].id
            if grid:
                values["grid_code"] = grid
            if claimed:
                values["claimed_by_account_id"] = accounts[claimed].id
            session.execute(update(Case).where(Case.id == case.id).values(**values))
            made.append(case.id)
        session.expire_all()
        rows = session.scalars(select(Case).where(Case.id.in_(made))).all()
        for account in accounts.values():
            who = actor_of(account)
            by_sql = set(session.scalars(select(Case.id).where(Case.id.in_(made), access.visible_cases(who))))
            by_python = {c.id for c in rows if access.may_see_case(who, access.scope_of(c))}
            assert by_sql == by_python, account.username
