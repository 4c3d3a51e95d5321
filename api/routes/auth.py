"""Sign in and out: `POST /api/v1/auth/token` (OAuth2 password form) returns a bearer token.

Wrong passwords are throttled per account and per client address (429 with Retry-After); a
throttled attempt is refused before the password is hashed, so a flood costs no Argon2 work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import SessionDep
from api.inputs import check_text
from api.security import ActorDep, oauth2
from geo.accounts import AuthenticationFailed, issue_token, revoke_token
from geo.throttle import Throttles

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


def client_address(request: Request) -> str:
    """The caller's address, for throttles (behind a proxy, uvicorn's --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


def sign_in_form(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> OAuth2PasswordRequestForm:
    """The OAuth2 password form, its fields checked as text (the username is looked up)."""
    check_text({"username": form.username, "password": form.password})
    return form


@router.post("/token", response_model=Token)
def token(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends(sign_in_form)]
) -> Token:
    """Exchange username and password for a bearer token (valid 12 hours)."""
    throttles: Throttles = request.app.state.throttles
    address = client_address(request)
    throttles.sign_in_account.check(form.username)
    throttles.sign_in_address.check(address)
    try:
        issued = issue_token(session, form.username, form.password)
    except AuthenticationFailed:
        throttles.sign_in_account.fail(form.username)
        throttles.sign_in_address.fail(address)
        raise
    throttles.sign_in_account.reset(form.username)
    return Token(access_token=issued)


@router.post("/logout", status_code=204, response_class=Response)
def logout(actor: ActorDep, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]) -> Response:
    """Sign out: the bearer token used for this request stops working at once."""
    revoke_token(session, token or "")
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(actor: ActorDep) -> Me:
    """Who the token belongs to."""
    return Me(
        username=actor.username,
        role=actor.role.value,
        unit_code=actor.unit_code,
        grid_codes=list(actor.grid_codes),
    )
