"""Who may see and do what: the one access policy of gridcase.

Every route, page, map, report and command asks here; no role set is written anywhere else. The
policy answers four kinds of question:

- **cases**: may this person read this case (`may_see_case`, and `visible_cases` as SQL for lists);
- **fields**: may they see a private part of a case they can read (`may_see`, `Sight`);
- **actions**: may they do this workflow action on this case (`authorise`, `actions_for`);
- **other surfaces**: statistics and reports, tracking codes on maps, submitting reports (`may`);
- **administration**: who may change accounts, units, the catalogue and the calendar (`may_administer`).

Roles follow 数字城管 practice (DOMAIN.md): the operator is the acceptance clerk and duty chief
(受理员/值班长), the dispatcher sends cases out (派遣员), a unit handler works for one responsible unit
(责任单位), an inspector reports and checks in their grids (监督员/网格员), a resident follows their
own reports and may claim small tasks, a planner reads everything and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, any_, false, literal, or_, true

from geo.accounts import Actor, Role
from geo.errors import ActionForbidden, NotFound
from geo.store.models import Case

R = Role

# -- the groups of roles ------------------------------------------------------------------------
#: The command centre's deciders: verify, file, close, approve extensions, park, void, supervise.
CENTRE = frozenset({R.operator, R.admin})
#: Who sends filed cases to a unit (派遣/改派) and sets joint handling (联办).
DISPATCHERS = CENTRE | {R.dispatcher}
#: Who works a dispatched case for a responsible unit: sign, return, handle, ask for more time.
UNITS = frozenset({R.unit_handler, R.admin})
#: Who checks a handled case on site (核查).
CHECKERS = CENTRE | {R.inspector}
#: Who may claim and close off a task on the claim board (认领/销号): units and volunteers.
CLAIMERS = frozenset({R.unit_handler, R.resident, R.admin})
#: Who reads every case: the centre's staff and planners.
READ_ALL = frozenset({R.operator, R.dispatcher, R.admin, R.planner})
#: The community side (社区治理): a community's staff and a compound's party-branch secretary.
COMMUNITY_SIDE = frozenset({R.community_staff, R.branch_secretary})
#: Who may file a report (the 12345 call-taker files as an operator; a round table refers a problem).
REPORTERS = frozenset({R.inspector, R.resident, R.operator, R.dispatcher, R.admin}) | COMMUNITY_SIDE

#: The channels each reporting role files through, its default first: an inspector's report is an
#: inspector's, a resident's a resident's; the centre files hotline calls, video patrol finds and
#: referrals, and may enter a report on a resident's or an inspector's behalf.
CENTRE_CHANNELS = ("hotline_12345", "video_patrol", "referral", "resident", "inspector")
CHANNELS: dict[Role, tuple[str, ...]] = {
    R.inspector: ("inspector",),
    R.resident: ("resident",),
    R.operator: CENTRE_CHANNELS,
    R.dispatcher: CENTRE_CHANNELS,
    R.admin: CENTRE_CHANNELS,
    # A round table turns an agenda item into a case: a referral (转办) to the command centre.
    R.community_staff: ("referral",),
    R.branch_secretary: ("referral",),
}

#: The roles of each workflow action (the states and effects are in geo/cases/workflow.py).
ACTION_ROLES: dict[str, frozenset[Role]] = {
    "verify": CENTRE,
    "reject": CENTRE,
    "file": CENTRE,
    "dispatch": DISPATCHERS,
    "sign": UNITS,
    "return": UNITS,
    "redispatch": DISPATCHERS,
    "handle": UNITS,
    "check_pass": CHECKERS,
    "check_fail": CHECKERS,
    "close": CENTRE,
    "request_extension": UNITS,
    "approve_extension": CENTRE,
    "park": CENTRE,
    "unpark": CENTRE,
    "void": CENTRE,
    "supervise": CENTRE,
    "join": DISPATCHERS,
    "publish": CENTRE,
    "claim": CLAIMERS,
    "close_off": CLAIMERS,
    "merge": CENTRE,
    "place": CENTRE,  # the clerk puts a triage report on the map by hand (人工定位)
    "reopen": CENTRE,  # the duty chief decides a reporter's unsatisfied rating (复核)
    "dismiss_review": CENTRE,
}
#: Actions open to anyone in the role whatever the case's unit or grid (the claim board), but only
#: on cases in this state: a claimer sees nothing else of cases that are not theirs.
OPEN_TO_ROLE = {"claim": "published"}
#: Actions only the person who claimed the case may do.
CLAIMER_ONLY = frozenset({"close_off"})


class Sight(StrEnum):
    """The private parts of a case, and the surfaces that not everyone may read."""

    reporter_contact = "reporter_contact"  # the reporter's phone or address
    reporter_identity = "reporter_identity"  # who reported it (their username)
    original_photos = "original_photos"  # uploads with their EXIF (location, device)
    statistics = "statistics"  # indicators, weekly and monthly reports, unit rankings
    unit_statistics = "unit_statistics"  # one unit's own figures (a unit desk's month)
    map_tracking_codes = "map_tracking_codes"  # tracking codes in map popups (they open cases)
    submit_report = "submit_report"


#: Who may see each thing; a case-bound sight also needs the case itself to be readable.
SIGHTS: dict[Sight, frozenset[Role]] = {
    # A unit handler works the case, not the caller: the centre calls back (回访).
    # The community side reads the cases it referred, not the callers of others.
    Sight.reporter_contact: frozenset(Role) - {R.unit_handler} - COMMUNITY_SIDE,
    Sight.reporter_identity: frozenset(Role),
    Sight.original_photos: CENTRE,
    Sight.statistics: READ_ALL,
    # Whoever reads all statistics reads any unit's; a unit handler only their own unit's
    # (`may_read_unit_statistics`), never another unit's or the ranking.
    Sight.unit_statistics: READ_ALL | UNITS,
    Sight.map_tracking_codes: READ_ALL,
    Sight.submit_report: REPORTERS,
}


@dataclass(frozen=True)
class CaseScope:
    """What an access decision needs to know about a case."""

    unit_code: str | None
    cooperating_unit_codes: tuple[str, ...]
    grid_code: str | None
    reporter_account_id: int | None
    claimed_by_account_id: int | None


def scope_of(case: Case) -> CaseScope:
    """The access-relevant facts of a case row."""
    return CaseScope(
        case.unit_code,
        tuple(case.cooperating_unit_codes or ()),
        case.grid_code,
        case.reporter_account_id,
        case.claimed_by_account_id,
    )


# -- cases ----------------------------------------------------------------------------------------
def may_see_case(actor: Actor, case: CaseScope) -> bool:
    """Whether a person may read the full case (the public tracking view aside)."""
    if actor.role in READ_ALL:
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


def visible_cases(actor: Actor) -> ColumnElement[bool]:
    """SQL: the cases a person may read (the same rule as `may_see_case`)."""
    if actor.role in READ_ALL:
        return true()
    if actor.role is R.unit_handler:
        if actor.unit_code is None:
            return false()
        return or_(
            Case.unit_code == actor.unit_code,
            literal(actor.unit_code) == any_(Case.cooperating_unit_codes),
            Case.claimed_by_account_id == actor.id,
        )
    if actor.role is R.inspector:
        return or_(Case.grid_code.in_(actor.grid_codes or ("",)), Case.reporter_account_id == actor.id)
    return or_(Case.reporter_account_id == actor.id, Case.claimed_by_account_id == actor.id)


#: The parts of a case that someone who reads it only because they claimed it does not see: a
#: volunteer who claims a published task gets the task, not the reporter's name or number.
REPORTER_PARTS = frozenset({Sight.reporter_contact, Sight.reporter_identity})


def reads_only_as_claimer(actor: Actor, case: CaseScope) -> bool:
    """Whether the person reads this case only because they claimed it from the board."""
    if actor.role in READ_ALL or case.claimed_by_account_id != actor.id:
        return False
    others = CaseScope(
        case.unit_code, case.cooperating_unit_codes, case.grid_code, case.reporter_account_id, None
    )
    return not may_see_case(actor, others)


def may(actor: Actor | None, sight: Sight, case: CaseScope | None = None) -> bool:
    """Whether a person (None: not signed in) may see this; for a case's part, the case too."""
    if actor is None or actor.role not in SIGHTS[sight]:
        return False
    if case is None:
        return True
    if sight in REPORTER_PARTS and reads_only_as_claimer(actor, case):
        return False
    return may_see_case(actor, case)


def require(actor: Actor, sight: Sight) -> None:
    """Refuse with a 403-class error naming who may, when `may` says no."""
    if not may(actor, sight):
        verb, who = _SIGHT_TEXT[sight]
        raise ActionForbidden(
            f"role {actor.role.value} may not {verb}; {who} may",
            field=_SIGHT_FIELDS.get(sight, "authorization"),
        )


_SIGHT_TEXT = {
    Sight.reporter_contact: ("see the reporter's contact", "command-centre staff"),
    Sight.reporter_identity: ("see who reported a case", "command-centre staff"),
    Sight.original_photos: ("see original photos", "operators and admins"),
    Sight.statistics: ("read statistics", "planners and command-centre staff"),
    Sight.unit_statistics: (
        "read a unit's figures",
        "the unit's own handlers, planners and command-centre staff",
    ),
    Sight.map_tracking_codes: ("see tracking codes on maps", "planners and command-centre staff"),
    Sight.submit_report: (
        "submit reports",
        "inspectors, residents, command-centre staff and the community side (referrals)",
    ),
}
_SIGHT_FIELDS = {Sight.original_photos: "photo", Sight.submit_report: "role"}


def may_read_unit_statistics(actor: Actor | None, unit_code: str | None) -> bool:
    """Whether a person may read this unit's figures: those who read all statistics, any unit's;
    a unit handler, their own unit's only."""
    if unit_code is None or not may(actor, Sight.unit_statistics):
        return False
    assert actor is not None  # `may` says no to nobody
    return may(actor, Sight.statistics) or actor.unit_code == unit_code


def channel_for(actor: Actor, asked: str | None) -> str:
    """The channel a report comes in by: the role's default, or one the role may file through."""
    channels = CHANNELS.get(actor.role, ())
    if asked is None:
        if not channels:
            require(actor, Sight.submit_report)
        return channels[0]
    if asked not in channels:
        raise ActionForbidden(
            f"a {actor.role.value} reports through {', '.join(channels) or 'no channel'}, not {asked}",
            field="channel",
        )
    return asked


def may_watch_screen(actor: Actor | None, *, kiosk: bool, open_to_all: bool = False) -> bool:
    """The big screen's live feeds: the screen with its kiosk key, command-centre staff and
    planners, or everyone where a deployment explicitly opens them (an intranet's choice)."""
    return open_to_all or kiosk or (actor is not None and actor.role in READ_ALL)


# -- desks (the workstation pages) ---------------------------------------------------------------
class Desk(StrEnum):
    """The command centre's workstations, each the queue of one job."""

    intake = "intake"  # 受理: verify or reject new reports
    dispatch = "dispatch"  # 派遣: dispatch filed cases, re-dispatch returned ones
    chief = "chief"  # 值班长: file, close, approve extensions, supervise
    unit = "unit"  # 专业部门: sign, return, ask for time, handle
    admin = "admin"  # 系统管理: accounts, units and their grids, categories and time limits
    hotline = "hotline"  # 12345: the call-taker files a caller's report and reads back its code
    callback = "callback"  # 回访: call the reporters of closed cases back, record the answer
    community = "community"  # 社区治理: the lists, claims, close-offs and round tables


class AdminAction(StrEnum):
    """What an administrator changes (系统管理); every change is written to the admin log."""

    disable_account = "disable_account"
    enable_account = "enable_account"
    reset_password = "reset_password"
    change_account = "change_account"  # role, unit, grids, display name
    remove_demo_accounts = "remove_demo_accounts"
    save_unit = "save_unit"  # a unit and its 包保 grids
    change_category = "change_category"  # department and time limit
    import_calendar = "import_calendar"
    create_open311_key = "create_open311_key"  # an API key for another system (geo/open311.py)
    revoke_open311_key = "revoke_open311_key"


#: Who may do each administrative change: the administrator alone.
ADMIN_ROLES: dict[AdminAction, frozenset[Role]] = {action: frozenset({R.admin}) for action in AdminAction}


def may_administer(actor: Actor, action: AdminAction) -> bool:
    """Whether a person may make this administrative change."""
    return actor.role in ADMIN_ROLES[action]


def require_admin(actor: Actor, action: AdminAction) -> None:
    """Refuse an administrative change the person may not make (403-class, naming who may)."""
    if not may_administer(actor, action):
        raise ActionForbidden(
            f"role {actor.role.value} may not {action.value.replace('_', ' ')}; administrators may",
            field="role",
        )


#: Who works each desk: the roles of the actions it is for (so the pages cannot drift from them).
DESK_ROLES: dict[Desk, frozenset[Role]] = {
    Desk.intake: ACTION_ROLES["verify"],
    Desk.dispatch: ACTION_ROLES["dispatch"],
    Desk.chief: ACTION_ROLES["file"] & ACTION_ROLES["close"] & ACTION_ROLES["approve_extension"],
    Desk.unit: ACTION_ROLES["sign"] & ACTION_ROLES["handle"],
    Desk.admin: frozenset.intersection(*ADMIN_ROLES.values()),
    # Whoever may file through the hotline channel; the callback needs the caller's number.
    Desk.hotline: frozenset(role for role, channels in CHANNELS.items() if "hotline_12345" in channels),
    Desk.callback: CENTRE & SIGHTS[Sight.reporter_contact],
    Desk.community: frozenset({R.community_staff, R.branch_secretary, R.admin}),
}


def may_use_desk(actor: Actor, desk: Desk) -> bool:
    """Whether a person works this desk."""
    return actor.role in DESK_ROLES[desk]


def desks_for(actor: Actor) -> list[Desk]:
    """The desks a person works, in the order a case passes them."""
    return [desk for desk in Desk if may_use_desk(actor, desk)]


# -- actions --------------------------------------------------------------------------------------
def roles_for(action: str) -> frozenset[Role]:
    """The roles that may do an action at all."""
    return ACTION_ROLES.get(action, frozenset())


def scope_refusal(actor: Actor, action: str, case: CaseScope) -> str | None:
    """Why this person may not do this action on this case, or None (the role already may)."""
    if actor.role is R.admin or action in OPEN_TO_ROLE:
        return None
    if action in CLAIMER_ONLY:
        if case.claimed_by_account_id == actor.id:
            return None
        return "only the one who claimed the case may close it off"
    if actor.role is R.unit_handler and case.unit_code != actor.unit_code:
        return (
            f"a handler of unit {actor.unit_code} may act only on cases dispatched to it "
            f"(this one is with {case.unit_code})"
        )
    if actor.role is R.inspector and case.grid_code not in actor.grid_codes:
        return f"an inspector may check only cases in their grids (this one is in {case.grid_code})"
    return None


def may_act(actor: Actor, action: str, case: CaseScope) -> bool:
    """Whether this person may do this action on this case (whatever its state)."""
    return actor.role in roles_for(action) and scope_refusal(actor, action, case) is None


def authorise(
    actor: Actor, action: str, case: CaseScope, *, ref: object, state: str, role_may_now: list[str]
) -> None:
    """Refuse an action: NotFound for a case the person may not see, ActionForbidden for the role.

    A case someone may not see looks like it does not exist (no leak); `role_may_now` names what the
    role could do in the case's `state`, for the message. A case on the claim board (published) is
    open to claimers; in any other state a claimer who may not see it is told it does not exist.
    """
    on_the_board = OPEN_TO_ROLE.get(action) == state
    if not may_see_case(actor, case) and actor.role is not R.admin and not on_the_board:
        raise NotFound(f"no case {ref}", field="case")
    if actor.role not in roles_for(action):
        raise ActionForbidden(
            f"role {actor.role.value} may not {action}; in state {state} this role may "
            f"{role_may_now or 'do nothing'}",
            field="action",
        )


def actions_for(actor: Actor, possible: list[str], case: CaseScope | None = None) -> list[str]:
    """Of the actions possible in a case's state, those this person may take (on this case)."""
    return [
        a
        for a in possible
        if actor.role in roles_for(a) and (case is None or scope_refusal(actor, a, case) is None)
    ]


# -- the public channel: residents who are not signed in -----------------------------------------
#: The account that files the reports of people who are not signed in (migration 0009). It is
#: inactive: nobody signs in as it, so nobody reads the public's cases through it; a report's
#: tracking code is what its reporter holds.
PUBLIC_ACCOUNT = "public"
#: What a report from someone not signed in must carry (`GRIDCASE_PUBLIC_CONTACT`): "optional", a
#: phone number or none; "required", a phone number (the centre may want to call back).
PUBLIC_CONTACT_RULES = ("optional", "required")
#: The states a case may be rated in (综合评价 comes after 结案), once, by whoever holds its code.
RATABLE_STATES = frozenset({"closed"})
#: The ratings; the one that asks the centre to review the case (it decides whether to reopen).
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
REVIEW_RATINGS = frozenset({"unsatisfied"})


def public_contact_refusal(rule: str, phone: str | None) -> str | None:
    """Why a report of someone not signed in may not be filed as it is, or None."""
    if rule == "required" and not phone:
        return "a phone number is needed to report without signing in"
    return None


def may_follow(state: str) -> bool:
    """Whether the public may start following a case (an ended case has nothing more to tell)."""
    return state not in {"closed", "rejected", "voided", "merged"}


def rating_refusal(state: str, already_rated: bool) -> str | None:
    """Why the holder of a case's tracking code may not rate it now, or None."""
    if state not in RATABLE_STATES:
        return f"a case can be rated once it is closed; this one is {state}"
    if already_rated:
        return "this case has been rated already"
    return None


# -- Open311 GeoReport v2: other systems, with an API key ------------------------------------------
#: The account that files the requests other systems post to /open311/v2 (migration 0010). It is
#: inactive: nobody signs in as it; a request's API key says which system sent it. Its reports
#: come in by the channel `open311`, whatever the account's role would file through.
OPEN311_ACCOUNT = "open311"
OPEN311_CHANNEL = "open311"


# -- community governance (社区治理): the lists, claims and round tables -------------------------
class CommunityAction(StrEnum):
    """What the community side does (geo/community/)."""

    read = "read"  # the lists, the registered members, the meetings and the figures of an area
    raise_item = "raise_item"  # enter a demand (需求), a resource (资源) or a small wish (微心愿)
    claim = "claim"  # record a claim (认领/领办) by a co-building unit, a party member or a branch
    note = "note"  # a progress note (进展)
    close_off = "close_off"  # 销号, with a photo or a note
    hold_meeting = "hold_meeting"  # a compound's round table: agenda, attendees, outcomes, minutes
    hold_big_meeting = "hold_big_meeting"  # the community's big round table (大圆桌会)
    register = "register"  # co-building units, agreements, members and their posts, the three parties


COMMUNITY_WORKERS = COMMUNITY_SIDE | {R.admin}
#: Who may do each: the secretary works their compound, the staff their community (and its big
#: round table); planners and the command centre read everything and change nothing here.
COMMUNITY_ROLES: dict[CommunityAction, frozenset[Role]] = {
    CommunityAction.read: COMMUNITY_WORKERS | READ_ALL,
    CommunityAction.raise_item: COMMUNITY_WORKERS,
    CommunityAction.claim: COMMUNITY_WORKERS,
    CommunityAction.note: COMMUNITY_WORKERS,
    CommunityAction.close_off: COMMUNITY_WORKERS,
    CommunityAction.hold_meeting: COMMUNITY_WORKERS,
    CommunityAction.hold_big_meeting: frozenset({R.community_staff, R.admin}),
    CommunityAction.register: frozenset({R.community_staff, R.admin}),
}


@dataclass(frozen=True)
class Seat:
    """Where a person of the community side serves (`governance_post`): a community's staff their
    communities, a branch secretary their compounds (and they attend their community's big round
    table)."""

    communities: frozenset[str] = frozenset()
    compounds: frozenset[str] = frozenset()

    @property
    def attends(self) -> frozenset[str]:
        """The communities whose big round table this person attends (a compound code starts with
        its community's 12 digits)."""
        return self.communities | {code[:12] for code in self.compounds}


def may_community(
    actor: Actor | None,
    seat: Seat,
    action: CommunityAction,
    community_code: str | None = None,
    compound_code: str | None = None,
) -> bool:
    """Whether a person may do this in this community or compound (None: anywhere at all)."""
    if actor is None or actor.role not in COMMUNITY_ROLES[action]:
        return False
    if actor.role is R.admin or (action is CommunityAction.read and actor.role in READ_ALL):
        return True
    if community_code is None and compound_code is None:
        return True  # the role may, somewhere
    if actor.role is R.community_staff:
        return (community_code or (compound_code or "")[:12]) in seat.communities
    if compound_code is not None:
        return compound_code in seat.compounds
    # A community-wide thing (its big round table, its resources): the secretary reads it.
    return action is CommunityAction.read and community_code in seat.attends


def require_community(
    actor: Actor,
    seat: Seat,
    action: CommunityAction,
    community_code: str | None = None,
    compound_code: str | None = None,
) -> None:
    """Refuse (403-class, naming who may) what `may_community` says no to."""
    if may_community(actor, seat, action, community_code, compound_code):
        return
    if actor.role not in COMMUNITY_ROLES[action]:
        who = ", ".join(sorted(r.value for r in COMMUNITY_ROLES[action]))
        raise ActionForbidden(f"role {actor.role.value} may not {action.value}; {who} may", field="role")
    where = compound_code or community_code
    raise ActionForbidden(
        f"{actor.username} does not serve {where}: a branch secretary works their compound, "
        "community staff their community",
        field="compound" if compound_code else "community",
    )


def may_read_community_figures(actor: Actor | None) -> bool:
    """The governance figures (aggregates, no names): the community side and whoever reads statistics."""
    return actor is not None and (actor.role in COMMUNITY_WORKERS or may(actor, Sight.statistics))


def require_community_figures(actor: Actor) -> None:
    """Refuse the governance figures to whoever `may_read_community_figures` says no to."""
    if not may_read_community_figures(actor):
        raise ActionForbidden(
            f"role {actor.role.value} may not read the community figures; the community side, "
            "planners and command-centre staff may",
            field="role",
        )


def community_filter(actor: Actor, seat: Seat, community: Any, compound: Any) -> ColumnElement[bool]:
    """SQL: the rows (of a community and a compound column) a person reads (as `may_community`)."""
    if actor.role not in COMMUNITY_ROLES[CommunityAction.read]:
        return false()
    if actor.role is R.admin or actor.role in READ_ALL:
        return true()
    if actor.role is R.community_staff:
        return community.in_(sorted(seat.communities) or [""])
    return or_(
        compound.in_(sorted(seat.compounds) or [""]),
        and_(compound.is_(None), community.in_(sorted(seat.attends) or [""])),
    )


# -- community governance: public commitments (三方联动) and the reception room (会客室) -------------
class CommunityWork(StrEnum):
    """What people do in the community's own work around cases (社区治理)."""

    register_request = "register_request"  # 来访登记: the member on duty registers a walk-in
    follow_request = "follow_request"  # 跟进: a note, a referral to a unit, a case routed as usual
    answer_request = "answer_request"  # 答复: the recorded answer
    read_register = "read_register"  # the register with who came and how to reach them
    watch_overdue = "watch_overdue"  # requests unanswered past due (duty chief, big screen)
    enter_commitment = "enter_commitment"  # 征集问题, 公开承诺, 进展, 办结
    record_evaluation = "record_evaluation"  # 代表评议: the representatives' verdict, as recorded


#: The member on duty is a community staff member (社区工作人员, 党员值班); the duty chief (an
#: operator) sees what is overdue, never the visitor's contact; planners read the register's
#: figures through the statistics sight. The public board is open to all and shows no names.
COMMUNITY_STAFF = frozenset({R.community_staff, R.admin})
COMMUNITY_WORK_ROLES: dict[CommunityWork, frozenset[Role]] = {
    CommunityWork.register_request: COMMUNITY_STAFF,
    CommunityWork.follow_request: COMMUNITY_STAFF,
    CommunityWork.answer_request: COMMUNITY_STAFF,
    CommunityWork.read_register: COMMUNITY_STAFF,
    CommunityWork.watch_overdue: COMMUNITY_STAFF | CENTRE | {R.planner},
    CommunityWork.enter_commitment: COMMUNITY_STAFF,
    CommunityWork.record_evaluation: COMMUNITY_STAFF,
}
#: Who reads the governance figures (requests answered, commitments solved): whoever reads
#: statistics, and the community's own staff.
COMMUNITY_FIGURES = SIGHTS[Sight.statistics] | COMMUNITY_STAFF


def may_do_community(actor: Actor | None, work: CommunityWork) -> bool:
    """Whether a person (None: not signed in) may do this community work."""
    return actor is not None and actor.role in COMMUNITY_WORK_ROLES[work]


def require_community_work(actor: Actor | None, work: CommunityWork) -> None:
    """Refuse community work the person may not do (403-class, naming who may)."""
    if not may_do_community(actor, work):
        who = sorted(r.value for r in COMMUNITY_WORK_ROLES[work])
        role = actor.role.value if actor else "nobody signed in"
        raise ActionForbidden(
            f"role {role} may not {work.value.replace('_', ' ')}; {', '.join(who)} may", field="role"
        )


def may_read_register_figures(actor: Actor | None) -> bool:
    """Whether a person reads the reception and commitment figures."""
    return actor is not None and actor.role in COMMUNITY_FIGURES


def community_desks(actor: Actor | None) -> list[str]:
    """The community workstation pages a person works (the register, the commitments)."""
    pages = []
    if may_do_community(actor, CommunityWork.register_request):
        pages.append("reception")
    if may_do_community(actor, CommunityWork.enter_commitment):
        pages.append("commitments")
    return pages
