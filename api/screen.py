"""The big screen's kiosk key: what lets an unattended screen read the live feeds without a person.

A screen is set up once by opening `/command-center?key=KEY`: the key goes into an HttpOnly,
SameSite=Strict cookie and the address bar drops it. The feeds accept that cookie, the header
`X-Screen-Key`, or a signed-in staff member's bearer token; the policy is `access.may_watch_screen`.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from api.deps import SessionDep
from api.security import oauth2
from geo import access
from geo.accounts import authenticate
from geo.errors import GridcaseError
from geo.settings import Settings

COOKIE = "gridcase_screen"
HEADER = "X-Screen-Key"
KEY_FILE = "screen-key"


def screen_keys(settings: Settings) -> list[str]:
    """The configured keys, or the one kept in the state folder (made on first use, mode 0600)."""
    configured = [k.strip() for k in settings.screen_keys.split(",") if k.strip()]
    if configured:
        return configured
    path: Path = settings.state_path / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24) + "\n")
    return [path.read_text().strip()]


def is_screen_key(request: Request, key: str | None) -> bool:
    """Whether a presented key is one of this deployment's (compared in constant time)."""
    keys: list[str] = request.app.state.screen_keys
    return bool(key) and any(hmac.compare_digest(key or "", k) for k in keys)


def presented_key(request: Request) -> str | None:
    return request.headers.get(HEADER) or request.cookies.get(COOKIE)


def may_watch(request: Request, session: Session, token: str | None) -> bool:
    """The policy's answer for this request: kiosk key, open setting, or a staff token."""
    settings: Settings = request.app.state.settings
    actor = None
    if token:
        try:
            actor = authenticate(session, token)
        except GridcaseError:
            actor = None
    return access.may_watch_screen(
        actor, kiosk=is_screen_key(request, presented_key(request)), open_to_all=settings.screen_open
    )


def require_screen(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]
) -> None:
    """Refuse a feed to anyone but the screen and staff (401 naming the key)."""
    if not may_watch(request, session, token):
        raise HTTPException(
            401,
            detail=[
                {
                    "field": "screen_key",
                    "message": "the live feeds are for the command centre's screen: open "
                    "/command-center?key=… once on it (`gridcase screen-url` prints the address), "
                    "or sign in as command-centre staff",
                    "type": "not_authenticated",
                }
            ],
        )


ScreenDep = Depends(require_screen)
