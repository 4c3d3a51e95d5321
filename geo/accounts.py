"""Accounts, roles, password hashing (pwdlib, Argon2) and bearer tokens (stored as SHA-256 only)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import cast

from pwdlib import PasswordHash
from sqlalchemy import CursorResult, delete, event, select
from sqlalchemy.orm import Session

from geo.errors import GridcaseError, NotFound
from geo.store.models import Account, ApiToken, Unit, WebSession

PASSWORDS = PasswordHash.recommended()
TOKEN_LIFETIME = timedelta(hours=12)


class Role(StrEnum):
    """Who does what in a command centre."""

    inspector = "inspector"  # 网格员/监督员: reports, checks on site (核查)
    resident = "resident"  # 市民: reports, follows own cases; volunteers claim small tasks
    operator = "operator"  # 受理员/值班长: verifies, files, closes, approves extensions
    dispatcher = "dispatcher"  # 派遣员: dispatches and re-dispatches
    unit_handler = "unit_handler"  # 责任单位: signs for, returns, handles
    admin = "admin"
    planner = "planner"  # reads everything, changes nothing
    community_staff = "community_staff"  # 社区工作人员


class AuthenticationFailed(GridcaseError):
    """Wrong username or password, or an unknown or expired token."""


class InvalidAccount(GridcaseError):
    """An account that cannot be created as asked."""


@dataclass(frozen=True)
class Actor:
    """The signed-in person an action is done by."""

    id: int
    username: str
    role: Role
    unit_code: str | None = None
    grid_codes: tuple[str, ...] = field(default_factory=tuple)


def actor_of(account: Account) -> Actor:
    """The actor view of an account row."""
    return Actor(
        account.id, account.username, Role(account.role), account.unit_code, tuple(account.grid_codes or ())
    )


def add_account(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    *,
    unit_code: str | None = None,
    grid_codes: list[str] | None = None,
    display_name: str | None = None,
) -> Account:
    """Create an account; a unit handler needs a unit, an inspector grids."""
    try:
        role = Role(role)
    except ValueError:
        raise InvalidAccount(f"role {role!r} is not one of {[r.value for r in Role]}", field="role") from None
    if not username or len(username) > 64:
        raise InvalidAccount("username must be 1–64 characters", field="username")
    if len(password) < 8:
        raise InvalidAccount("password must be at least 8 characters", field="password")
    if role is Role.unit_handler and not unit_code:
        raise InvalidAccount("a unit handler needs --unit", field="unit")
    if unit_code and session.get(Unit, unit_code) is None:
        raise InvalidAccount(f"unit {unit_code!r} does not exist", field="unit")
    if session.scalar(select(Account.id).where(Account.username == username)):
        raise InvalidAccount(f"username {username!r} is taken", field="username")
    account = Account(
        username=username,
        password_hash=PASSWORDS.hash(password),
        role=role.value,
        unit_code=unit_code,
        grid_codes=list(grid_codes or []),
        display_name=display_name,
    )
    session.add(account)
    session.flush()
    return account


def digest(token: str) -> str:
    """The SHA-256 a secret token is stored as (bearer tokens, page sessions)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(session: Session, username: str, password: str) -> Account:
    """The active account with this username and password (its hash upgraded if outdated)."""
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None or not account.active:
        PASSWORDS.verify(password, _DUMMY_HASH)  # same work either way: no user enumeration by timing
        raise AuthenticationFailed("wrong username or password", field="username")
    valid, new_hash = PASSWORDS.verify_and_update(password, account.password_hash)
    if not valid:
        raise AuthenticationFailed("wrong username or password", field="password")
    if new_hash:
        account.password_hash = new_hash
    return account


def issue_token(session: Session, username: str, password: str) -> str:
    """Check the password and return a new bearer token."""
    account = check_password(session, username, password)
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    session.execute(delete(ApiToken).where(ApiToken.expires_at < now))
    session.add(ApiToken(token_hash=digest(token), account_id=account.id, expires_at=now + TOKEN_LIFETIME))
    return token


def authenticate(session: Session, token: str) -> Actor:
    """The actor a bearer token belongs to (checked in PostgreSQL; see `TokenChecks` for the
    cached check of API requests)."""
    return _authenticate(session, digest(token))[0]


def _authenticate(session: Session, hashed: str) -> tuple[Actor, datetime]:
    """The actor of a token's SHA-256 and when the token expires: one query."""
    row = session.execute(
        select(ApiToken.expires_at, Account)
        .join(Account, Account.id == ApiToken.account_id)
        .where(ApiToken.token_hash == hashed)
    ).first()
    if row is None or row.expires_at < datetime.now(UTC):
        raise AuthenticationFailed("unknown or expired token; sign in again", field="authorization")
    expires_at, account = row
    if not account.active:
        raise AuthenticationFailed("account disabled", field="authorization")
    return actor_of(account), expires_at


def revoke_token(session: Session, token: str) -> bool:
    """Sign out: the token stops working at once. Whether it was a live token."""
    hashed = digest(token)
    result = cast(CursorResult, session.execute(delete(ApiToken).where(ApiToken.token_hash == hashed)))
    _forget(session, lambda check: check.forget_token(hashed))
    return bool(result.rowcount)


def revoke_tokens(session: Session, account_id: int) -> int:
    """Every token and page session of an account stops working (a password change, a disabled
    account)."""
    ended = cast(CursorResult, session.execute(delete(WebSession).where(WebSession.account_id == account_id)))
    tokens = cast(CursorResult, session.execute(delete(ApiToken).where(ApiToken.account_id == account_id)))
    _forget(session, lambda check: check.forget_account(account_id))
    return tokens.rowcount + ended.rowcount


class TokenChecks:
    """Bearer tokens this process checked against PostgreSQL in the last `seconds`.

    A request with a token checked moments ago needs no database round trip to say who it is.
    Revoking in this process (sign-out, a password change, a disabled account) forgets the token
    at once, and again when the revoking transaction commits (so a check racing the commit cannot
    keep it); a token revoked by another process stops working here within `seconds`. A token
    is never remembered past its own expiry. `seconds=0` checks every request.
    """

    def __init__(self, seconds: float = 2.0, size: int = 10_000):
        self.seconds = seconds
        self.size = size
        self._lock = threading.Lock()
        self._checked: dict[str, tuple[float, datetime, Actor]] = {}
        _CHECKS.add(self)

    def authenticate(self, session: Session, token: str) -> Actor:
        """The token's actor, from a recent check or from PostgreSQL."""
        hashed = digest(token)
        if (actor := self._recent(hashed)) is not None:
            return actor
        actor, expires_at = _authenticate(session, hashed)
        if self.seconds > 0:
            with self._lock:
                if len(self._checked) >= self.size:
                    self._checked.clear()  # a flood of distinct tokens: start over, stay bounded
                self._checked[hashed] = (time.monotonic(), expires_at, actor)
        return actor

    def recent(self, token: str) -> Actor | None:
        """The actor of a token checked within `seconds` and not expired, else None."""
        return self._recent(digest(token))

    def _recent(self, hashed: str) -> Actor | None:
        with self._lock:
            found = self._checked.get(hashed)
        if found is None:
            return None
        checked, expires_at, actor = found
        if time.monotonic() - checked > self.seconds or expires_at < datetime.now(UTC):
            with self._lock:
                self._checked.pop(hashed, None)
            return None
        return actor

    def forget_token(self, hashed: str) -> None:
        with self._lock:
            self._checked.pop(hashed, None)

    def forget_account(self, account_id: int) -> None:
        with self._lock:
            for hashed in [h for h, (_, _, a) in self._checked.items() if a.id == account_id]:
                del self._checked[hashed]


_CHECKS: weakref.WeakSet[TokenChecks] = weakref.WeakSet()


def forget_checks(session: Session, account_id: int) -> None:
    """An account's role, unit or grids changed: its tokens are checked afresh at their next use
    in this process (other processes within their `TokenChecks.seconds`)."""
    _forget(session, lambda check: check.forget_account(account_id))


def _forget(session: Session, what: Callable[[TokenChecks], None]) -> None:
    """Forget revoked tokens in every live cache now and once the revoking transaction commits."""

    def forget(*_: object) -> None:
        for check in list(_CHECKS):
            what(check)

    forget()
    event.listen(session, "after_commit", forget, once=True)


def set_password(session: Session, username: str, password: str) -> Account:
    """Change a password; the account's tokens are revoked, so old sign-ins end."""
    if len(password) < 8:
        raise InvalidAccount("password must be at least 8 characters", field="password")
    account = get_account(session, username)
    account.password_hash = PASSWORDS.hash(password)
    revoke_tokens(session, account.id)
    return account


def get_account(session: Session, username: str) -> Account:
    """An account by username."""
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None:
        raise NotFound(f"no account {username!r}", field="username")
    return account


_DUMMY_HASH = PASSWORDS.hash("not-a-real-password")
