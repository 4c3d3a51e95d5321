"""The administrator's desk (系统管理, `/desk/admin`): accounts, units and their 包保 grids, categories
and their time limits, and the admin log. Pages only: every change is a form posted with the
session's CSRF token, done by geo/admin.py (which asks the access policy and writes the log).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api import desk_pages as dp
from api.deps import SessionDep
from api.i18n import TIME_UNITS
from api.web import DeskUser, PostingUser, lang_of, page, require_desk
from geo import admin, open311
from geo.access import Desk
from geo.accounts import Role
from geo.errors import InvalidInput
from geo.store.models import TimeLimitUnit, UnitKind
from geo.web_sessions import SignedIn

router = APIRouter(prefix="/desk/admin", include_in_schema=False)
SECTIONS = ("accounts", "units", "categories", "open311")


def _by(user: SignedIn) -> admin.Admin:
    return admin.Admin(user.actor.username, "web", user.actor)


def _grid_codes(text: str) -> list[str]:
    """Grid codes as typed: separated by spaces, commas, semicolons or new lines."""
    return [
        c for c in text.replace(",", " ").replace(";", " ").replace("，", " ").replace("；", " ").split() if c
    ]


def _back(request: Request, section: str, done: str) -> RedirectResponse:
    return RedirectResponse(
        f"/desk/admin/{section}?lang={lang_of(request)}&done={quote(done)}", status_code=303
    )


def _page(request: Request, user: SignedIn, session: Session, section: str, **context: Any) -> Response:
    lang = lang_of(request)
    done = context.pop("done", request.query_params.get("done", ""))  # a page answered at once says it
    return page(
        request,
        "desk/admin.html",
        user,
        section=section,
        sections=SECTIONS,
        log=[dp.admin_log_row(entry) for entry in admin.admin_log(session)],
        done=done,
        roles=[r.value for r in Role],
        unit_kinds=[k.value for k in UnitKind],
        time_units=[(u.value, TIME_UNITS[lang][u.value]) for u in TimeLimitUnit],
        **context,
    )


# -- the pages --------------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
def admin_home(request: Request, user: DeskUser) -> Response:
    """The admin desk opens on the accounts."""
    require_desk(user, Desk.admin)
    return RedirectResponse(f"/desk/admin/accounts?lang={lang_of(request)}", status_code=303)


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """Every account with its role, unit, grids and state, and the forms that change them."""
    require_desk(user, Desk.admin)
    units = admin.list_units(session)
    return _page(request, user, session, "accounts", accounts=admin.list_accounts(session), units=units)


@router.get("/units", response_class=HTMLResponse)
def units_page(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """Every unit with its 包保 grids, the grids no unit covers, and a form for a new unit."""
    require_desk(user, Desk.admin)
    return _page(
        request,
        user,
        session,
        "units",
        units=admin.list_units(session),
        orphans=admin.grids_without_unit(session),
    )


@router.get("/categories", response_class=HTMLResponse)
def categories_page(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """The catalogue with each category's department and time limit."""
    require_desk(user, Desk.admin)
    return _page(
        request,
        user,
        session,
        "categories",
        categories=admin.list_categories(session),
        units=admin.list_units(session),
    )


# -- accounts ---------------------------------------------------------------------------------------
@router.post("/accounts/{username}/disable")
def disable(request: Request, username: str, user: PostingUser, session: SessionDep) -> Response:
    """Disable an account (its tokens and page sessions end)."""
    require_desk(user, Desk.admin)
    admin.disable_account(session, _by(user), username)
    return _back(request, "accounts", f"disable_account:{username}")


@router.post("/accounts/{username}/enable")
def enable(request: Request, username: str, user: PostingUser, session: SessionDep) -> Response:
    """Let a disabled account sign in again."""
    require_desk(user, Desk.admin)
    admin.enable_account(session, _by(user), username)
    return _back(request, "accounts", f"enable_account:{username}")


@router.post("/accounts/{username}/password")
def password(
    request: Request,
    username: str,
    user: PostingUser,
    session: SessionDep,
    new_password: Annotated[str, Form()] = "",
) -> Response:
    """Set a new password (its sign-ins end)."""
    require_desk(user, Desk.admin)
    admin.reset_password(session, _by(user), username, new_password)
    return _back(request, "accounts", f"reset_password:{username}")


@router.post("/accounts/{username}/change")
def change(
    request: Request,
    username: str,
    user: PostingUser,
    session: SessionDep,
    role: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
    grids: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
) -> Response:
    """Change an account's role, unit, grids and name."""
    require_desk(user, Desk.admin)
    admin.change_account(
        session,
        _by(user),
        username,
        role=role or None,
        unit_code=unit or None,
        grid_codes=_grid_codes(grids),
        display_name=display_name.strip() or None,
    )
    return _back(request, "accounts", f"change_account:{username}")


@router.post("/accounts/remove-demo")
def remove_demo(request: Request, user: PostingUser, session: SessionDep) -> Response:
    """Remove the demo accounts that still have the demo password."""
    require_desk(user, Desk.admin)
    removed, disabled = admin.remove_demo_accounts(session, _by(user))
    return _back(request, "accounts", f"remove_demo_accounts:{len(removed)}+{len(disabled)}")


# -- units and categories -----------------------------------------------------------------------------
@router.post("/units")
def save_unit(
    request: Request,
    user: PostingUser,
    session: SessionDep,
    code: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    name_en: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    grids: Annotated[str, Form()] = "",
) -> Response:
    """Create or change a unit and its 包保 grids."""
    require_desk(user, Desk.admin)
    admin.save_unit(session, _by(user), code, name=name, name_en=name_en, kind=kind, grids=_grid_codes(grids))
    return _back(request, "units", f"save_unit:{code.strip()}")


@router.post("/categories/{code}")
def change_category(
    request: Request,
    code: str,
    user: PostingUser,
    session: SessionDep,
    time_limit: Annotated[str, Form()] = "",
    time_limit_unit: Annotated[str, Form()] = "",
    department: Annotated[str, Form()] = "",
) -> Response:
    """Change a category's time limit and department."""
    require_desk(user, Desk.admin)
    try:
        limit = float(time_limit)
    except ValueError:
        raise InvalidInput(f"time limit {time_limit!r} is not a number", field="time_limit") from None
    if not math.isfinite(limit):
        raise InvalidInput("the time limit must be a finite number", field="time_limit")
    admin.change_category(
        session,
        _by(user),
        code,
        time_limit=limit,
        time_limit_unit=time_limit_unit,
        department_code=department,
    )
    return _back(request, "categories", f"change_category:{code}")


# -- Open311 API keys ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyRow:
    """A key as the page lists it: never the secret, only how it begins."""

    id: int
    name: str
    prefix: str
    created_by: str
    created: str
    revoked_at: datetime | None
    revoked: str


def _keys_page(request: Request, user: SignedIn, session: Session, **context: Any) -> Response:
    keys = [
        KeyRow(
            k.id,
            k.name,
            k.prefix,
            k.created_by,
            dp.china_time(k.created_at),
            k.revoked_at,
            dp.china_time(k.revoked_at) if k.revoked_at else "",
        )
        for k in open311.list_keys(session)
    ]
    endpoint = f"{request.url.scheme}://{request.url.netloc}/open311/v2/discovery.xml"
    return _page(request, user, session, "open311", keys=keys, endpoint=endpoint, **context)


@router.get("/open311", response_class=HTMLResponse)
def open311_page(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """The Open311 API keys other systems use, and the form that makes one."""
    require_desk(user, Desk.admin)
    return _keys_page(request, user, session)


@router.post("/open311", response_class=HTMLResponse)
def create_open311_key(
    request: Request, user: PostingUser, session: SessionDep, name: Annotated[str, Form()] = ""
) -> Response:
    """Make a key and show it this once (the page is the answer: the key is never in a URL)."""
    require_desk(user, Desk.admin)
    key, secret = open311.create_key(session, _by(user), name)
    return _keys_page(
        request, user, session, new_key=secret, new_key_name=key.name, done=f"create_open311_key:{key.name}"
    )


@router.post("/open311/revoke")
def revoke_open311_key(
    request: Request, user: PostingUser, session: SessionDep, name: Annotated[str, Form()] = ""
) -> Response:
    """Stop a key at once."""
    require_desk(user, Desk.admin)
    key = open311.revoke_key(session, _by(user), name)
    return _back(request, "open311", f"revoke_open311_key:{key.name}")
