"""Page sign-in: server-side cookie sessions with a CSRF token and an idle timeout.

The pages (the workstations) sign in with a cookie rather than a bearer token. The cookie carries a
random token; the database keeps only its SHA-256 (as for bearer tokens, `geo/accounts.py`), the
account, a CSRF token that every form and htmx request must send back, when the session was last
used and when it ends at the latest. A session unused for `IDLE` ends; so does every session at
`LIFETIME`. The person behind a session is the same `Actor` the API's bearer tokens give, so both
go through the one access policy (geo/access.py).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, delete, or_
from sqlalchemy.orm import Session

from geo.accounts import Actor, AuthenticationFailed, actor_of, check_password, digest
from geo.store.models import Account, WebSession

IDLE = timedelta(minutes=30)  # a workstation left alone this long signs out
LIFETIME = timedelta(hours=12)  # one shift at most
# Writing `last_seen_at` on every page view would make each read a write: once a minute is enough.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    """A live page session: who, and the CSRF token their forms carry."""

    actor: Actor
    csrf_token: str
    display_name: str | None = None


def start(
    session: Session, username: str, password: str, now: datetime | None = None
) -> tuple[str, SignedIn]:
    """Check the password and open a page session: (the cookie's token, who signed in)."""
    now = now or datetime.now(UTC)
    account = check_password(session, username, password)
    session.execute(
        delete(WebSession).where(or_(WebSession.expires_at < now, WebSession.last_seen_at < now - IDLE))
    )
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=digest(token),
            account_id=account.id,
            csrf_token=csrf,
            last_seen_at=now,
            expires_at=now + LIFETIME,
        )
    )
    session.flush()
    return token, SignedIn(actor_of(account), csrf, account.display_name)


def resume(session: Session, token: str, now: datetime | None = None) -> SignedIn:
    """The person behind a session cookie; an unknown, idle or expired session is refused."""
    now = now or datetime.now(UTC)
    row = session.get(WebSession, digest(token)) if token else None
    if row is None or row.expires_at < now or row.last_seen_at < now - IDLE:
        raise AuthenticationFailed("the page session ended; sign in again", field="session")
    account = session.get(Account, row.account_id)
    if account is None or not account.active:
        raise AuthenticationFailed("account disabled", field="session")
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return SignedIn(actor_of(account), row.csrf_token, account.display_name)


def end(session: Session, token: str) -> bool:
    """Sign out: the session stops working at once. Whether it was a live one."""
    ended = cast(
        CursorResult, session.execute(delete(WebSession).where(WebSession.token_hash == digest(token)))
    )
    return bool(ended.rowcount)


def csrf_matches(expected: str, presented: str | None) -> bool:
    """Whether a form's or request header's CSRF token is the session's (constant time)."""
    return bool(presented) and hmac.compare_digest(expected, presented or "")
