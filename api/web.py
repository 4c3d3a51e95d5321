"""The pages' side of signing in: the session cookie, the CSRF check, and errors drawn as pages.

A desk page asks `DeskUser` who is there (a cookie session, `geo/web_sessions.py`); without one it
sends the browser to the sign-in page and back. Every POST of a page (forms and htmx requests)
must carry the session's CSRF token, in the form field `csrf_token` or the header `X-CSRF-Token`;
without it the answer is a 403 page. A page's error is always a page in the person's language
that says what is wrong and what to do next, never JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SessionDep
from api.i18n import CHANNEL_LABELS, LANGS, Lang, messages
from api.templating import templates
from geo import access, web_sessions
from geo.accounts import AuthenticationFailed
from geo.web_sessions import SignedIn

COOKIE = "gridcase_desk"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: Paths whose errors are drawn as pages (the desks and their sign-in).
PAGE_PREFIXES = ("/desk",)
#: The residents' pages (api/routes/public.py): every refusal there is a page, 429 and 413 too.
PUBLIC_PAGES = ("/report", "/track", "/community")  # /community: the public commitment boards


class SignInNeeded(Exception):
    """No live page session: the browser is sent to the sign-in page."""


@dataclass
class PageRefusal(Exception):
    """A page's 4xx: which explanation to show (`kind`), with details for the page."""

    status: int
    kind: str  # err_403, err_404, err_csrf, err_409, err_422, conflict
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


def lang_of(request: Request) -> Lang:
    """The page language from `?lang=` (Chinese unless English is asked for)."""
    asked = request.query_params.get("lang")
    return asked if asked in LANGS else "zh"  # type: ignore[return-value]


def desk_user(request: Request, session: SessionDep) -> SignedIn:
    """The signed-in person of a page, from the session cookie."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInNeeded
    try:
        return web_sessions.resume(session, token)
    except AuthenticationFailed:
        raise SignInNeeded from None


DeskUser = Annotated[SignedIn, Depends(desk_user)]


async def csrf_checked(request: Request, user: DeskUser) -> SignedIn:
    """The signed-in person of a POST that carries their CSRF token; a 403 page otherwise."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()  # Starlette keeps the parsed form for the route
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not web_sessions.csrf_matches(user.csrf_token, presented):
        raise PageRefusal(403, "err_csrf")
    return user


PostingUser = Annotated[SignedIn, Depends(csrf_checked)]


def require_desk(user: SignedIn, desk: access.Desk) -> None:
    """A 403 page for a desk this person does not work (the policy's answer)."""
    if not access.may_use_desk(user.actor, desk):
        raise PageRefusal(403, "err_403", facts={"desk": desk.value})


def page(
    request: Request, name: str, user: SignedIn | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A desk page in the request's language, with the person's desks and CSRF token."""
    lang = lang_of(request)
    return templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "other_lang": "en" if lang == "zh" else "zh",
            "t": messages(lang),
            "user": user,
            "desks": access.desks_for(user.actor) if user else [],
            "reads_reports": user is not None and access.may(user.actor, access.Sight.statistics),
            "csrf": user.csrf_token if user else "",
            "lq": f"lang={lang}",
            "channel_labels": CHANNEL_LABELS[lang],
            **context,
        },
        status_code=status_code,
    )


def is_public_page(request: Request) -> bool:
    """Whether this is one of the residents' pages (no sign-in; their errors are pages too)."""
    path = request.url.path
    return path == "/" or any(path == p or path.startswith(p + "/") for p in PUBLIC_PAGES)


def is_page_request(request: Request) -> bool:
    """Whether an error on this request should be drawn as a page."""
    return request.url.path.startswith(PAGE_PREFIXES) or is_public_page(request)


def sign_in_redirect(request: Request) -> RedirectResponse:
    """Off to the sign-in page, and back here afterwards (a GET's address; a POST's referrer)."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        back = "/desk"
    return RedirectResponse(f"/desk/sign-in?lang={lang_of(request)}&next={quote(back)}", status_code=303)


def public_refusal_page(request: Request, refusal: PageRefusal) -> HTMLResponse:
    """A residents' page's refusal: which field (in words) and why, and the way back."""
    lang = lang_of(request)
    return templates.TemplateResponse(
        request,
        "public/error.html",
        {
            "lang": lang,
            "other_lang": "en" if lang == "zh" else "zh",
            "lq": f"lang={lang}",
            "t": messages(lang),
            "status": refusal.status,
            "kind": refusal.kind,
            "detail": refusal.detail,
            "field": refusal.facts.get("field"),
        },
        status_code=refusal.status,
        headers=refusal.facts.get("headers"),
    )


def refusal_page(request: Request, refusal: PageRefusal) -> HTMLResponse:
    """The error page of a refusal (the person, if any, is looked up again for the header)."""
    if is_public_page(request):
        return public_refusal_page(request, refusal)
    user = None
    token = request.cookies.get(COOKIE)
    if token:
        with request.app.state.store.transaction() as session:
            try:
                user = web_sessions.resume(session, token)
            except AuthenticationFailed:
                user = None
    return page(
        request,
        "desk/error.html",
        user,
        status_code=refusal.status,
        kind=refusal.kind,
        detail=refusal.detail,
        facts=refusal.facts,
    )


def local_path(target: str | None, default: str = "/desk") -> str:
    """A redirect target only within this site (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default
