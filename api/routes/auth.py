"""Sign in: `POST /api/v1/auth/token` (OAuth2 password form) returns a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import SessionDep
from api.inputs import check_text
from api.security import ActorDep
from geo.accounts import issue_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    """The signed-in person."""

    username: str
    role: str
    unit_code: str | None
    grid_codes: list[str]


def sign_in_form(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> OAuth2PasswordRequestForm:
    """The OAuth2 password form, its fields checked as text (the username is looked up)."""
    check_text({"username": form.username, "password": form.password})
    return form


@router.post("/token", response_model=Token)
def token(session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends(sign_in_form)]) -> Token:
    """Exchange username and password for a bearer token (valid 12 hours)."""
    return Token(access_token=issue_token(session, form.username, form.password))


@router.get("/me", response_model=Me)
def me(actor: ActorDep) -> Me:
    """Who the token belongs to."""
    return Me(
        username=actor.username,
        role=actor.role.value,
        unit_code=actor.unit_code,
        grid_codes=list(actor.grid_codes),
    )
