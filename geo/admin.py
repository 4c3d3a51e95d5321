"""Administration without SQL (系统管理): accounts, units and their 包保 grids, categories and
their time limits, each change written to the admin log (who, when, through what, before, after).

The command line (`gridcase user|units|categories …`) and the admin desk (`/desk/admin`) both call
these functions; who may call them is the access policy's `may_administer` (geo/access.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session

from geo import access
from geo.accounts import (
    PASSWORDS,
    Actor,
    InvalidAccount,
    Role,
    forget_checks,
    get_account,
    revoke_tokens,
    set_password,
)
from geo.areas import areas_frame
from geo.errors import InvalidInput, NotFound
from geo.importing import bump_reference_version
from geo.store.models import (
    Account,
    AdminLog,
    Case,
    Category,
    GridResponsibility,
    TimeLimitUnit,
    Unit,
    UnitKind,
)

AdminAction = access.AdminAction
LOG_PAGE = 100


@dataclass(frozen=True)
class Admin:
    """Who makes a change, and through what: a signed-in administrator (`web`) or the console (`cli`)."""

    name: str
    via: str
    actor: Actor | None = None  # None on the console: whoever can run it on the server may

    def authorise(self, action: AdminAction) -> None:
        """Refuse the change if the person is not an administrator (the console always may)."""
        if self.actor is not None:
            access.require_admin(self.actor, action)


def record(
    session: Session,
    by: Admin,
    action: AdminAction,
    subject_kind: str,
    subject: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AdminLog:
    """Write one change to the admin log."""
    entry = AdminLog(
        actor=by.name,
        via=by.via,
        action=action.value,
        subject_kind=subject_kind,
        subject=subject,
        before=before,
        after=after,
    )
    session.add(entry)
    session.flush()
    return entry


def admin_log(session: Session, limit: int = LOG_PAGE) -> list[AdminLog]:
    """The latest changes, newest first."""
    return list(session.scalars(select(AdminLog).order_by(AdminLog.id.desc()).limit(limit)))


# -- lists ----------------------------------------------------------------------------------------
def account_facts(account: Account) -> dict[str, Any]:
    """What the log and the lists say about an account (never its password hash)."""
    return {
        "username": account.username,
        "role": account.role,
        "unit": account.unit_code,
        "grids": list(account.grid_codes or []),
        "active": account.active,
        "display_name": account.display_name,
    }


def list_accounts(session: Session) -> list[Account]:
    """Every account, by role and username."""
    return list(session.scalars(select(Account).order_by(Account.role, Account.username)))


@dataclass(frozen=True)
class UnitRow:
    """A unit with its 包保 grids."""

    code: str
    name: str
    name_en: str | None
    kind: str
    grids: list[str]

    def facts(self) -> dict[str, Any]:
        """The unit as the admin log records it."""
        return {"name": self.name, "name_en": self.name_en, "kind": self.kind, "grids": self.grids}


def list_units(session: Session) -> list[UnitRow]:
    """Every unit with the grids it is responsible for, by code."""
    grids: dict[str, list[str]] = {}
    for unit_code, grid_code in session.execute(
        select(GridResponsibility.unit_code, GridResponsibility.grid_code).order_by(
            GridResponsibility.grid_code
        )
    ):
        grids.setdefault(unit_code, []).append(grid_code)
    return [
        UnitRow(u.code, u.name, u.name_en, u.kind, grids.get(u.code, []))
        for u in session.scalars(select(Unit).order_by(Unit.code))
    ]


def list_categories(session: Session) -> list[Category]:
    """The catalogue, by code."""
    return list(session.scalars(select(Category).order_by(Category.code)))


def category_facts(category: Category) -> dict[str, Any]:
    """What the admin log records of a category."""
    return {
        "name": category.name,
        "department": category.department_code,
        "time_limit": float(category.time_limit),
        "time_limit_unit": category.time_limit_unit,
    }


# -- accounts -------------------------------------------------------------------------------------
def disable_account(session: Session, by: Admin, username: str) -> Account:
    """Disable an account: it cannot sign in, and its tokens and page sessions end at once."""
    by.authorise(AdminAction.disable_account)
    account = get_account(session, username)
    if by.actor is not None and account.id == by.actor.id:
        raise InvalidAccount("an administrator cannot disable their own account", field="username")
    before = account_facts(account)
    account.active = False
    ended = revoke_tokens(session, account.id)
    record(
        session,
        by,
        AdminAction.disable_account,
        "account",
        username,
        before,
        account_facts(account) | {"ended": ended},
    )
    return account


def enable_account(session: Session, by: Admin, username: str) -> Account:
    """Let a disabled account sign in again (with its password; no old sign-in comes back)."""
    by.authorise(AdminAction.enable_account)
    account = get_account(session, username)
    before = account_facts(account)
    account.active = True
    record(session, by, AdminAction.enable_account, "account", username, before, account_facts(account))
    return account


def reset_password(session: Session, by: Admin, username: str, password: str) -> Account:
    """Set a new password; the account's tokens and page sessions end (the log never holds it)."""
    by.authorise(AdminAction.reset_password)
    account = set_password(session, username, password)
    record(session, by, AdminAction.reset_password, "account", username, None, {"password": "changed"})
    return account


KEEP: Any = object()  # "leave as it is" for change_account's optional fields


def change_account(
    session: Session,
    by: Admin,
    username: str,
    *,
    role: str | None = None,
    unit_code: str | None = KEEP,
    grid_codes: list[str] | None = None,
    display_name: str | None = KEEP,
) -> Account:
    """Change an account's role, unit, grids or name; what it may see changes at its next request."""
    by.authorise(AdminAction.change_account)
    account = get_account(session, username)
    before = account_facts(account)
    new_role = _role(role) if role else Role(account.role)
    unit = account.unit_code if unit_code is KEEP else (unit_code or None)
    grids = list(account.grid_codes or []) if grid_codes is None else _current_grids(session, grid_codes)
    if unit and session.get(Unit, unit) is None:
        raise InvalidAccount(f"unit {unit!r} does not exist", field="unit")
    if new_role is Role.unit_handler and not unit:
        raise InvalidAccount("a unit handler needs a unit", field="unit")
    if new_role is Role.inspector and not grids:
        raise InvalidAccount("an inspector needs at least one grid", field="grids")
    if by.actor is not None and account.id == by.actor.id and new_role is not Role.admin:
        raise InvalidAccount("an administrator cannot take away their own administration", field="role")
    account.role = new_role.value
    account.unit_code = unit
    account.grid_codes = grids
    if display_name is not KEEP:
        account.display_name = display_name or None
    after = account_facts(account)
    if after != before:
        record(session, by, AdminAction.change_account, "account", username, before, after)
        forget_checks(session, account.id)
    return account


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidAccount(
            f"role {value!r} is not one of {[r.value for r in Role]}", field="role"
        ) from None


def _current_grids(session: Session, codes: list[str]) -> list[str]:
    """The codes, each a grid of the current generation (else an error naming the first unknown)."""
    wanted = list(dict.fromkeys(c.strip() for c in codes if c.strip()))
    known = set(areas_frame(session, levels=["grid"])["code"]) if wanted else set()
    if unknown := [c for c in wanted if c not in known]:
        raise InvalidInput(f"grid {unknown[0]} is not a current grid", field="grids")
    return wanted


def remove_demo_accounts(session: Session, by: Admin) -> tuple[list[str], list[str]]:
    """Remove the demo accounts that still have the demo password: (removed, disabled instead).

    An account that reported or claimed cases keeps its row for their history, disabled.
    """
    from geo.demo import DEMO_PASSWORD, DEMO_USERNAMES

    by.authorise(AdminAction.remove_demo_accounts)
    removed: list[str] = []
    disabled: list[str] = []
    for account in session.scalars(select(Account).where(Account.username.in_(DEMO_USERNAMES))):
        if by.actor is not None and account.id == by.actor.id:
            continue  # the administrator doing it keeps their sign-in until they change it
        if not PASSWORDS.verify(DEMO_PASSWORD, account.password_hash):
            continue  # its password was changed: someone uses it for real
        revoke_tokens(session, account.id)
        used = session.scalar(
            select(
                exists().where(
                    or_(Case.reporter_account_id == account.id, Case.claimed_by_account_id == account.id)
                )
            )
        )
        if used:
            account.active = False
            disabled.append(account.username)
        else:
            session.delete(account)
            removed.append(account.username)
    session.flush()
    if removed or disabled:
        record(
            session,
            by,
            AdminAction.remove_demo_accounts,
            "account",
            "demo",
            {"accounts": sorted(removed + disabled)},
            {"removed": removed, "disabled": disabled},
        )
    return removed, disabled


# -- units and their grids ------------------------------------------------------------------------
def save_unit(
    session: Session,
    by: Admin,
    code: str,
    *,
    name: str,
    kind: str,
    grids: list[str],
    name_en: str | None = None,
) -> UnitRow:
    """Create or change a unit and the grids it is responsible for (包保); the router rebuilds."""
    by.authorise(AdminAction.save_unit)
    code, name = code.strip(), name.strip()
    if not code or len(code) > 32:
        raise InvalidInput("a unit code is 1–32 characters", field="code")
    if not name:
        raise InvalidInput("a unit needs a name", field="name")
    if kind not in {k.value for k in UnitKind}:
        raise InvalidInput(f"kind {kind!r} is not one of {[k.value for k in UnitKind]}", field="kind")
    wanted = _current_grids(session, grids)
    before = next((u for u in list_units(session) if u.code == code), None)
    unit = session.get(Unit, code) or Unit(code=code)
    unit.name, unit.name_en, unit.kind = name, (name_en or "").strip() or None, kind
    session.add(unit)
    session.flush()
    session.execute(delete(GridResponsibility).where(GridResponsibility.unit_code == code))
    session.add_all(GridResponsibility(unit_code=code, grid_code=g) for g in wanted)
    session.flush()
    after = UnitRow(code, unit.name, unit.name_en, kind, sorted(wanted))
    if before is None or before.facts() != after.facts():
        record(
            session,
            by,
            AdminAction.save_unit,
            "unit",
            code,
            before.facts() if before else None,
            after.facts(),
        )
        bump_reference_version(session, "units")
    return after


def grids_without_unit(session: Session) -> list[str]:
    """Current grids no unit is responsible for (events there fall back to the owner)."""
    grids = areas_frame(session, levels=["grid"])["code"]
    covered = set(session.scalars(select(GridResponsibility.grid_code).distinct()))
    return sorted(set(grids) - covered)


# -- categories -----------------------------------------------------------------------------------
def change_category(
    session: Session,
    by: Admin,
    code: str,
    *,
    time_limit: float,
    time_limit_unit: str,
    department_code: str | None,
) -> Category:
    """Change a category's time limit and responsible department; cases already dispatched keep theirs."""
    by.authorise(AdminAction.change_category)
    category = session.get(Category, code)
    if category is None:
        raise NotFound(f"no category {code!r}", field="category")
    if not time_limit > 0 or time_limit >= 1_000_000:
        raise InvalidInput(
            f"time limit {time_limit} must be a positive number below 1,000,000", field="time_limit"
        )
    if time_limit_unit not in {u.value for u in TimeLimitUnit}:
        raise InvalidInput(
            f"unit {time_limit_unit!r} is not one of {[u.value for u in TimeLimitUnit]}",
            field="time_limit_unit",
        )
    department = department_code or None
    if department and session.get(Unit, department) is None:
        raise InvalidInput(f"department {department!r} is not a unit", field="department")
    before = category_facts(category)
    category.time_limit = round(time_limit, 2)
    category.time_limit_unit = time_limit_unit
    category.department_code = department
    session.flush()
    after = category_facts(category)
    if after != before:
        record(session, by, AdminAction.change_category, "category", code, before, after)
        bump_reference_version(session, "categories")
    return category
