"""The residents' pages: `/` (report, follow by code, fixed nearby), `/report`, `/track/{code}`.

No sign-in: a report from someone not signed in is filed by the public account (geo/access.py),
its reporter holds the tracking code. Forms carry a token matched against a cookie (CSRF without
a session), and reports and follows are rate-limited per address and per phone number. Every
refusal is a page naming the field and why (api/web.py). What the pages show is built in
geo/public.py; this module parses, checks and renders.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from api.deps import SessionDep
from api.i18n import ACTION_LABELS, CLASS_LABELS, STATE_LABELS, Lang, messages
from api.inputs import check_text
from api.routes.auth import client_address
from api.scaling import ReadSessionDep
from api.templating import templates
from api.web import lang_of
from geo import places, public, web_sessions
from geo.accounts import Actor
from geo.cases.intake import prepare_report
from geo.catalogue import list_categories
from geo.errors import InvalidInput, NotFound
from geo.photos import photo_position
from geo.stats import CHINA

router = APIRouter(tags=["public"])
COOKIE = "gridcase_public"  # the public forms' CSRF token (double submit: cookie and field)
CSRF_FIELD = "csrf_token"


class PhotoPosition(BaseModel):
    """Where a photo was taken, from its EXIF GPS (WGS-84), or nulls."""

    lon: float | None
    lat: float | None


# -- page plumbing ------------------------------------------------------------------------------
def form_token(request: Request) -> str:
    """The browser's public form token (kept in its cookie), or a new one."""
    return request.cookies.get(COOKIE) or secrets.token_urlsafe(24)


def check_form_token(request: Request, presented: str | None) -> None:
    """A public form must carry the token its page set in the cookie."""
    if not web_sessions.csrf_matches(request.cookies.get(COOKIE, ""), presented):
        raise InvalidInput("the form has expired: reload the page and send it again", field=CSRF_FIELD)


def public_page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A residents' page in the request's language, with its form token (set in the cookie)."""
    lang = lang_of(request)
    token = form_token(request)
    t = messages(lang)
    config = {"lang": lang, "t": t, **context.pop("config", {})}
    answer = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "other_lang": "en" if lang == "zh" else "zh",
            "lq": f"lang={lang}",
            "t": t,
            "csrf": token,
            "states": STATE_LABELS[lang],
            "actions": ACTION_LABELS[lang],
            "when": lambda at: f"{at.astimezone(CHINA):%Y-%m-%d %H:%M}" if at else "",
            "day": lambda at: f"{at.astimezone(CHINA):%Y-%m-%d}" if at else "",
            # "</" could end the inline JSON block: escape it.
            "config_json": json.dumps(config, ensure_ascii=False, default=str).replace("</", "<\\/"),
            **context,
        },
        status_code=status_code,
    )
    answer.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    return answer


def category_choices(session: Any, lang: Lang) -> list[dict[str, str]]:
    """The catalogue for the search: name, kind and class in words (never a code to read)."""
    classes = CLASS_LABELS[lang]
    return [
        {
            "code": c.code,
            "name": c.name_en if lang == "en" and c.name_en else c.name,
            "kind": c.kind,
            "class": classes.get(f"{c.kind}.{c.code[1:3]}", ""),
        }
        for c in list_categories(session)
    ]


def _public_reporter(request: Request, session: Any) -> Actor:
    actor = getattr(request.app.state, "public_reporter", None)
    if actor is None:
        actor = request.app.state.public_reporter = public.public_reporter(session)
    return actor


def _finite(value: float | None, field: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number", field=field)
    return value


# -- pages --------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, session: ReadSessionDep) -> HTMLResponse:
    """The landing page: report a problem, follow a case by its code, problems fixed nearby."""
    lang = lang_of(request)
    fixed = public.recently_fixed(session, limit=8)
    names = {c["code"]: c["name"] for c in category_choices(session, lang)}
    return public_page(
        request,
        "public/home.html",
        fixed=fixed,
        names=names,
        config={"fixed": [f.model_dump(mode="json") | {"name": names.get(f.category_code)} for f in fixed]},
    )


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
def report_form(request: Request, session: ReadSessionDep) -> HTMLResponse:
    """The report page: pin, photos, category search, open reports nearby, contact."""
    settings = request.app.state.settings
    lang = lang_of(request)
    return public_page(
        request,
        "public/report.html",
        max_photos=settings.photo_max_count,
        contact_rule=settings.public_contact,
        key=secrets.token_hex(16),  # the report's Idempotency-Key: a resent form is the same report
        config={
            "categories": category_choices(session, lang),
            "max_photos": settings.photo_max_count,
            "tiles_url": settings.tiles_url,
            "start": [113.9, 29.72],  # the demo city's centre until the phone or the photo says
        },
    )


def _limit(request: Request, phone: str | None) -> None:
    by_address, by_phone = request.app.state.public_limits
    by_address.spend(client_address(request))
    if phone:
        by_phone.spend(phone)


async def _form(request: Request) -> tuple[dict[str, str], list[bytes]]:
    form = await request.form()
    fields: dict[str, str] = {}
    photos: list[bytes] = []
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        elif key == "photos":
            data = await value.read()
            if data:  # an empty file input sends one empty part
                photos.append(data)
        else:
            raise InvalidInput(f"files go in the 'photos' field, not {key!r}", field=key)
    check_text(fields)
    return fields, photos


def _report_of(fields: dict[str, str]) -> public.PublicReportIn:
    def number(name: str) -> float | None:
        raw = fields.get(name, "").strip()
        if not raw:
            return None
        try:
            return _finite(float(raw), name)
        except ValueError:
            raise InvalidInput(f"{name} must be a number", field=name) from None

    try:
        return public.PublicReportIn(
            category=fields.get("category", ""),
            description=fields.get("description", ""),
            lon=number("lon"),
            lat=number("lat"),
            phone=fields.get("phone") or None,
            email=fields.get("email") or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise InvalidInput(f"{field}: {first.get('msg')}", field=field) from None


@router.post("/report", include_in_schema=False)
async def report(request: Request) -> Response:
    """File a resident's report (the public account files it); on to its case page (a page's
    outbox, asking for JSON, gets the tracking code and the page's address: 201, or 200 when the
    Idempotency-Key had filed it already)."""
    fields, photos = await _form(request)
    check_form_token(request, fields.get(CSRF_FIELD))
    settings = request.app.state.settings
    intake, phone, email = public.as_report(_report_of(fields), settings.public_contact)
    _limit(request, phone)
    store = request.app.state.store
    ctx = request.app.state.cases
    now = datetime.now(UTC)

    def prepare() -> Any:
        with store.sessions() as session:
            actor = _public_reporter(request, session)
            key = fields.get("idempotency_key") or None
            return prepare_report(
                ctx.router, ctx.blobs, ctx.photo_limits, actor, intake, photos, key, now, session=session
            )

    prepared = await run_in_threadpool(prepare)
    filed = await asyncio.wrap_future(request.app.state.intake.submit(prepared))
    filed.answer()
    if filed.created and (phone or email):

        def follow() -> None:
            with store.transaction() as session:
                public.follow(session, filed.case.id, phone, email, reporter=True)

        await run_in_threadpool(follow)
    where = f"/track/{filed.case.tracking_code}?new=1&{_lq(request)}"
    if "application/json" in request.headers.get("accept", ""):
        # The page's outbox sent it (public.js): it goes on to the case page itself.
        body = {"tracking_code": filed.case.tracking_code, "url": where}
        return JSONResponse(body, status_code=201 if filed.created else 200)
    return RedirectResponse(where, status_code=303)


def _lq(request: Request) -> str:
    return f"lang={lang_of(request)}"


@router.post("/report/follow", response_class=HTMLResponse, include_in_schema=False)
def follow_instead(
    request: Request,
    session: SessionDep,
    case: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Follow an open report nearby instead of filing the same problem again."""
    check_form_token(request, csrf_token)
    if not case.isascii() or not case.isdigit() or int(case) > 2**63 - 1:
        raise InvalidInput("choose one of the reports nearby", field="case")
    cleaned_phone, cleaned_email = public.clean_phone(phone), public.clean_email(email)
    _limit(request, cleaned_phone)
    public.follow(session, int(case), cleaned_phone, cleaned_email)
    return public_page(request, "public/followed.html")


@router.get("/track", include_in_schema=False)
def track_form(request: Request, code: Annotated[str, Query(max_length=40)] = "") -> Response:
    """The landing page's form: on to the case page of the code typed in."""
    code = code.strip().upper()
    if not code:
        raise InvalidInput("type the tracking code you got when reporting", field="tracking_code")
    if not code.isascii() or not code.isalnum():
        raise InvalidInput("a tracking code has only letters and digits", field="tracking_code")
    return RedirectResponse(f"/track/{code}?{_lq(request)}", status_code=303)


@router.get("/track/{code}", response_class=HTMLResponse, include_in_schema=False)
def track_page(request: Request, code: str, session: ReadSessionDep, new: bool = False) -> HTMLResponse:
    """A case's public page: state in words, its unit, the timeline, photos, the rating."""
    guesses = request.app.state.throttles.tracking_address
    address = client_address(request)
    guesses.check(address)
    try:
        page = public.case_page(session, code)
    except NotFound:
        guesses.fail(address)
        raise
    return public_page(request, "public/track.html", case=page, new=new)


@router.post("/track/{code}/rating", include_in_schema=False)
def rate(
    request: Request,
    code: str,
    session: SessionDep,
    rating: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Rate a closed case (满意/基本满意/不满意); an unsatisfied rating goes to the centre's review."""
    check_form_token(request, csrf_token)
    check_text({"rating": rating, "comment": comment})
    guesses = request.app.state.throttles.tracking_address
    guesses.check(client_address(request))
    if not rating:
        raise InvalidInput("choose 满意, 基本满意 or 不满意", field="rating")
    public.rate(session, code, rating, comment)
    return RedirectResponse(f"/track/{code}?{_lq(request)}", status_code=303)


# -- what the report page asks while the person fills it in ----------------------------------------
@router.get("/api/v1/public/nearby", response_model=list[public.NearbyCase])
def nearby(
    session: ReadSessionDep,
    lon: Annotated[float, Query(description="WGS-84 longitude")],
    lat: Annotated[float, Query(description="WGS-84 latitude")],
    category: Annotated[str, Query(min_length=1, max_length=16)],
) -> list[public.NearbyCase]:
    """Open reports of this category within 250 m, nearest first: no codes, no text, rounded."""
    return public.nearby_open(session, _finite(lon, "lon") or 0.0, _finite(lat, "lat") or 0.0, category)


@router.get("/api/v1/public/fixed", response_model=list[public.FixedCase])
def fixed(
    session: ReadSessionDep,
    lon: Annotated[float | None, Query(description="WGS-84 longitude")] = None,
    lat: Annotated[float | None, Query(description="WGS-84 latitude")] = None,
) -> list[public.FixedCase]:
    """Problems closed in the last 90 days (within 2 km of the point, if given), places rounded."""
    if (lon is None) != (lat is None):
        raise InvalidInput("give both lon and lat, or neither", field="lon" if lon is None else "lat")
    return public.recently_fixed(session, _finite(lon, "lon"), _finite(lat, "lat"))


@router.post("/api/v1/public/photo-location", response_model=PhotoPosition)
async def photo_location(request: Request, photo: UploadFile) -> PhotoPosition:
    """Where a photo was taken (its EXIF GPS), to place the report's pin; the photo is not kept."""
    data = await photo.read()
    limits = request.app.state.cases.photo_limits
    found = await run_in_threadpool(photo_position, data, limits)
    return PhotoPosition(lon=found[0], lat=found[1]) if found else PhotoPosition(lon=None, lat=None)


@router.get("/api/v1/places", response_model=list[places.Place])
def place_search(
    session: SessionDep,
    q: Annotated[str, Query(max_length=places.MAX_QUERY, description="a place name or part of one")],
    limit: Annotated[int, Query(ge=1, le=50)] = 12,
) -> list[places.Place]:
    """Streets, communities, grids, compounds, roads, the canal, the lake and parks by name (地名查询),
    from the database: a point inside each and its bounds (WGS-84), for a map search."""
    check_text({"q": q})
    return places.search_places(session, q, limit)
