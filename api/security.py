"""Who is calling: bearer tokens from `POST /api/v1/auth/token` (OAuth2 password flow)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from api.deps import SessionDep
from geo.accounts import Actor, authenticate

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def current_actor(session: SessionDep, token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    """The signed-in person; 401 naming the Authorization header otherwise."""
    if not token:
        raise HTTPException(
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
    return authenticate(session, token)


ActorDep = Annotated[Actor, Depends(current_actor)]
__all__ = ["ActorDep", "Session", "current_actor"]
