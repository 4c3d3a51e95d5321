"""Who is calling: bearer tokens from `POST /api/v1/auth/token` (OAuth2 password flow).

A token checked within the last `GRIDCASE_TOKEN_CHECK_SECONDS` (2 s) is taken from memory
(`geo.accounts.TokenChecks`): most API requests say who they are without a database round trip.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from geo.accounts import Actor, TokenChecks
from geo.store import Store

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def not_signed_in() -> HTTPException:
    """The 401 naming the Authorization header."""
    return HTTPException(
        401,
        detail=[
            {
                "field": "authorization",
                "message": "sign in: send 'Authorization: Bearer <token>' from POST /api/v1/auth/token",
                "type": "not_authenticated",
            }
        ],
        headers={"WWW-Authenticate": "Bearer"},
    )


def token_actor(request: Request, session: Session, token: str | None) -> Actor:
    """The person a bearer token belongs to, read on the caller's session if not checked lately
    (for dependencies that have a session anyway)."""
    if not token:
        raise not_signed_in()
    checks: TokenChecks = request.app.state.tokens
    return checks.authenticate(session, token)


async def current_actor(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    """The signed-in person; 401 naming the Authorization header otherwise."""
    if not token:
        raise not_signed_in()
    checks: TokenChecks = request.app.state.tokens
    if (actor := checks.recent(token)) is not None:
        return actor
    async with request.app.state.db_slots:
        return await run_in_threadpool(_check, request.app.state.store, checks, token)


def _check(store: Store, checks: TokenChecks, token: str) -> Actor:
    with store.sessions() as session:
        return checks.authenticate(session, token)


ActorDep = Annotated[Actor, Depends(current_actor)]
__all__ = ["ActorDep", "Session", "current_actor", "not_signed_in", "token_actor"]
