"""The workstations (desks): sign-in, the case page, and the queues of intake, dispatch, the duty
chief and the responsible units. Server-rendered pages (Jinja, htmx, Leaflet), Chinese first.

Every page asks the access policy (geo/access.py) who may use it; cases come from the read side
(geo/cases/views.py) and change only through `geo.cases.service.act`, as in the API.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import desk_pages as dp
from api.deps import SessionDep
from api.i18n import ACTION_LABELS, Lang, messages
from api.notice_text import send_notices_soon
from api.routes.auth import client_address
from api.routes.public import category_choices
from api.web import COOKIE, DeskUser, PageRefusal, PostingUser, lang_of, local_path, page, require_desk
from geo import access, public, stats, web_sessions
from geo.access import Desk
from geo.accounts import AuthenticationFailed
from geo.cases import views
from geo.cases.service import act
from geo.cases.views import CaseFilter
from geo.cases.workflow import ON_THE_CLOCK, ActionIn, CaseState
from geo.errors import ConcurrentUpdate, InvalidInput
from geo.store.models import Case, CaseEvent, CaseLink, CaseRating
from geo.throttle import Throttles, TooManyAttempts

router = APIRouter(prefix="/desk", include_in_schema=False)
SIGN_IN_COOKIE = "gridcase_sign_in"  # the sign-in form's own CSRF token (no session yet)
QUEUE_SIZE = 100
LIVE_CHECK_SECONDS = 1.0  # how often the live stream looks at the event log


# -- sign in and out ------------------------------------------------------------------------------
@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str | None = None, ended: bool = False) -> Response:
    """The sign-in page; its form carries a token matched against a cookie (login CSRF)."""
    token = secrets.token_urlsafe(24)
    answer = page(request, "desk/sign_in.html", None, next=local_path(next), form_token=token, ended=ended)
    answer.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict", path="/desk")
    return answer


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/desk",
) -> Response:
    """Check the password, open a page session in an HttpOnly cookie, and go where asked."""
    if not web_sessions.csrf_matches(request.cookies.get(SIGN_IN_COOKIE, ""), csrf_token):
        raise PageRefusal(403, "err_csrf")
    throttles: Throttles = request.app.state.throttles
    t = messages(lang_of(request))
    address = client_address(request)
    try:
        throttles.sign_in_account.check(username)
        throttles.sign_in_address.check(address)
        token, _ = web_sessions.start(session, username, password)
    except TooManyAttempts as exc:
        message = t["too_many"].format(seconds=exc.retry_after)
        return _sign_in_again(request, next, message, 429)
    except AuthenticationFailed:
        throttles.sign_in_account.fail(username)
        throttles.sign_in_address.fail(address)
        return _sign_in_again(request, next, t["wrong_password"], 401)
    throttles.sign_in_account.reset(username)
    answer = RedirectResponse(local_path(next), status_code=303)
    answer.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=int(web_sessions.LIFETIME.total_seconds()),
    )
    answer.delete_cookie(SIGN_IN_COOKIE, path="/desk")
    return answer


def _sign_in_again(request: Request, next: str, message: str, status: int) -> Response:
    token = secrets.token_urlsafe(24)
    answer = page(
        request, "desk/sign_in.html", None, status, next=local_path(next), form_token=token, message=message
    )
    answer.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict", path="/desk")
    return answer


@router.post("/sign-out")
def sign_out(request: Request, user: PostingUser, session: SessionDep) -> Response:
    """End the page session at once and forget the cookie."""
    web_sessions.end(session, request.cookies.get(COOKIE, ""))
    answer = RedirectResponse(f"/desk/sign-in?lang={lang_of(request)}&ended=true", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


# -- home and finding a case ----------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
def home(request: Request, user: DeskUser) -> Response:
    """The person's desks; a person with exactly one (and no community pages) goes straight to it."""
    desks = access.desks_for(user.actor)
    if len(desks) == 1 and not access.community_desks(user.actor):
        return RedirectResponse(f"/desk/{desks[0].value}?lang={lang_of(request)}", status_code=303)
    return page(request, "desk/home.html", user)


@router.get("/find")
def find(request: Request, user: DeskUser, code: str = "") -> Response:
    """Open a case by its tracking code."""
    return RedirectResponse(f"/desk/cases/{quote(code.strip())}?lang={lang_of(request)}", status_code=303)


# -- the case page --------------------------------------------------------------------------------
@router.get("/cases/{tracking_code}", response_class=HTMLResponse)
def case_page(request: Request, tracking_code: str, user: DeskUser, session: SessionDep) -> Response:
    """One case: photos, map, routing in words, timeline, deadline, duplicates, and the actions."""
    lang = lang_of(request)
    now = dp.now_utc()
    case = views.readable_case(session, user.actor, tracking_code)
    view = views.case_views(session, user.actor, [case], now)[0]
    names = dp.Names.load(session, lang)
    limit = (
        (float(case.time_limit), case.time_limit_unit) if case.time_limit and case.time_limit_unit else None
    )
    ctx = request.app.state.cases
    return page(
        request,
        "desk/case.html",
        user,
        case=view,
        row=dp.row(view, names, lang, messages(lang), now),
        names=names,
        forms=dp.action_forms(view, names, lang, ctx.calendar_for(session), limit),
        timeline=dp.timeline(view.events, names, lang),
        explanation=dp.explanation(view, lang),
        may_merge="merge" in view.allowed_actions,
        map_data={
            "features": views.case_map(session, user.actor, case.id),
            "tiles_url": request.app.state.settings.tiles_url,
        },
        units=sorted(names.units.items(), key=lambda item: item[1]),
        done=ACTION_LABELS[lang].get(request.query_params.get("done", ""), ""),
        back=local_path(request.query_params.get("back"), ""),
        rating=session.get(CaseRating, case.id),  # the reporter's verdict (复核 decides on 不满意)
    )


@router.post("/cases/{tracking_code}/actions/{action}")
def act_on_case(
    request: Request,
    tracking_code: str,
    action: str,
    user: PostingUser,
    session: SessionDep,
    background: BackgroundTasks,
    expected_version: Annotated[int | None, Form()] = None,
    reason_choice: Annotated[str, Form()] = "",
    reason_more: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
    units: Annotated[list[str] | None, Form()] = None,
    into: Annotated[str, Form()] = "",
    lon: Annotated[float | None, Form(description="place: WGS-84 longitude")] = None,
    lat: Annotated[float | None, Form(description="place: WGS-84 latitude")] = None,
    back: Annotated[str, Form()] = "",
    then: Annotated[str, Form(description="queue: go back to the queue afterwards")] = "case",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """Do one workflow action from the case page's form (the version seen guards against races)."""
    reason = "：".join(part for part in (reason_choice.strip(), reason_more.strip()) if part)
    data = ActionIn(
        reason=reason or None,
        note=note.strip() or None,
        unit=unit or None,
        units=units or [],
        into=into or None,
        expected_version=expected_version,
        lon=lon,
        lat=lat,
    )
    blobs = [p.file.read() for p in photos or [] if p.filename]
    seen = views.readable_case(session, user.actor, tracking_code)
    if expected_version is not None and seen.version != expected_version:
        # Someone acted since this person loaded the page: say who and when, before anything else.
        raise _conflict(
            session,
            seen.tracking_code,
            lang_of(request),
            f"version {seen.version}, you saw {expected_version}",
        )
    try:
        case = act(session, request.app.state.cases, user.actor, tracking_code, action, data, blobs)
    except ConcurrentUpdate as exc:
        session.rollback()
        raise _conflict(session, tracking_code, lang_of(request), exc.message) from None
    lang = lang_of(request)
    send_notices_soon(request, background)
    # Back to the case page, showing what was done (and the way back to the queue it came from).
    again = f"/desk/cases/{quote(case.tracking_code)}?lang={lang}&done={action}"
    if then == "queue" and local_path(back, ""):
        again = f"{back}{'&' if '?' in back else '?'}done={action}"
    elif local_path(back, ""):
        again += f"&back={quote(back)}"
    return RedirectResponse(again, status_code=303)


def _conflict(session: Session, tracking_code: str, lang: str, detail: str) -> PageRefusal:
    """The "changed by X at T, reload" page of an action on a version someone else moved on."""
    latest = session.execute(
        select(CaseEvent.actor, CaseEvent.at, CaseEvent.action)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(Case.tracking_code == tracking_code)
        .order_by(CaseEvent.id.desc())
        .limit(1)
    ).first()
    facts = {"code": tracking_code}
    if latest is not None:
        who, at, action = latest
        facts |= {
            "who": who or "—",
            "at": dp.china_time(at),
            "action": ACTION_LABELS["zh" if lang == "zh" else "en"].get(action, action),
        }
    return PageRefusal(409, "conflict", detail=detail, facts=facts)


# -- the queues -----------------------------------------------------------------------------------
def _rows(
    session: Session, user: DeskUser, request: Request, filters: CaseFilter, names: dp.Names
) -> tuple[int, list[dp.CaseRow]]:
    """A queue's total and its first rows (a row shows no timeline: no events are read)."""
    lang = lang_of(request)
    now = dp.now_utc()
    found = views.list_cases(
        session, user.actor, filters.model_copy(update={"page_size": QUEUE_SIZE}), now, with_events=False
    )
    t = messages(lang)
    return found.total, [dp.row(v, names, lang, t, now) for v in found.items]


AGES = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1)}


@router.get("/intake", response_class=HTMLResponse)
def intake(
    request: Request,
    user: DeskUser,
    session: SessionDep,
    channel: Annotated[str, Query()] = "",
    category: Annotated[str, Query()] = "",
    area: Annotated[str, Query(description="street or community code")] = "",
    age: Annotated[str, Query()] = "",
) -> Response:
    """New reports, oldest first, with their photos and where routing sent them; the triage queue."""
    require_desk(user, Desk.intake)
    names = dp.Names.load(session, lang_of(request))
    older = dp.now_utc() - AGES[age] if age in AGES else None
    filters = CaseFilter(
        state=[CaseState.reported.value],
        channel=channel or None,
        category=category or None,
        area=area or None,
        reported_to=older,
        sort="oldest",
    )
    total, rows = _rows(session, user, request, filters, names)
    triage_total, triage = _rows(session, user, request, CaseFilter(triage=True, sort="oldest"), names)
    return page(
        request,
        "desk/intake.html",
        user,
        total=total,
        rows=rows,
        triage_total=triage_total,
        triage=triage,
        names=names,
        chosen={"channel": channel, "category": category, "area": area, "age": age},
        areas=_streets_and_communities(session),
    )


def _streets_and_communities(session: Session) -> list[tuple[str, str, str]]:
    """(code, name, level) of the current streets and communities, for the area filter."""
    from geo.store.models import Area, BoundaryGeneration

    current = select(BoundaryGeneration.id).order_by(BoundaryGeneration.id.desc()).limit(1).scalar_subquery()
    rows = session.execute(
        select(Area.code, Area.name, Area.level)
        .where(Area.level.in_(["street", "community"]))
        .where(Area.generation_low <= current, Area.generation_high >= current)
        .order_by(Area.code)
    ).all()
    return [(code, name, level) for code, name, level in rows]


@router.get("/dispatch", response_class=HTMLResponse)
def dispatch_board(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """Filed cases with their suggested unit (one click, or a selection at once); returned cases."""
    require_desk(user, Desk.dispatch)
    names = dp.Names.load(session, lang_of(request))
    total, rows = _rows(
        session, user, request, CaseFilter(state=[CaseState.filed.value], sort="oldest"), names
    )
    returned_total, returned = _rows(
        session, user, request, CaseFilter(state=[CaseState.returned.value], sort="oldest"), names
    )
    reasons = views.latest_notes(session, [r.view.id for r in returned], "return")
    for r in returned:
        r.note = reasons.get(r.view.id)
    return page(
        request,
        "desk/dispatch.html",
        user,
        total=total,
        rows=rows,
        returned_total=returned_total,
        returned=returned,
        names=names,
    )


@router.post("/dispatch/selected")
def dispatch_selected(
    request: Request,
    user: PostingUser,
    session: SessionDep,
    codes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Dispatch each selected filed case to its suggested unit (bulk 派遣), in one transaction."""
    require_desk(user, Desk.dispatch)
    for code in codes or []:
        act(session, request.app.state.cases, user.actor, code, "dispatch", ActionIn())
    return RedirectResponse(f"/desk/dispatch?lang={lang_of(request)}&done=dispatch", status_code=303)


@router.get("/chief", response_class=HTMLResponse)
def chief(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """The duty chief's lists: to file or reject, to close, extensions, supervision, overdue."""
    require_desk(user, Desk.chief)
    names = dp.Names.load(session, lang_of(request))
    open_on_clock = [s.value for s in ON_THE_CLOCK]
    lists = {
        "to_file": CaseFilter(state=[CaseState.verified.value], sort="oldest"),
        "to_close": CaseFilter(state=[CaseState.checked.value], sort="oldest"),
        "extension_requests": CaseFilter(state=open_on_clock, extension_requested=True, sort="deadline"),
        "supervision": CaseFilter(
            supervised=True, state=[*open_on_clock, "returned", "parked", "handled"], sort="deadline"
        ),
        # Residents who rated a closed case 不满意: the centre decides whether to reopen it.
        "to_review": CaseFilter(review_requested=True, state=[CaseState.closed.value], sort="oldest"),
    }
    sections = {key: _rows(session, user, request, f, names) for key, f in lists.items()}
    overdue_total, overdue = _rows(session, user, request, CaseFilter(overdue=True, sort="deadline"), names)
    by_unit: dict[str, int] = {}
    for r in overdue:
        by_unit[r.unit] = by_unit.get(r.unit, 0) + 1
    return page(
        request,
        "desk/chief.html",
        user,
        calendar_warning=dp.calendar_warning(request, session, lang_of(request)),
        sections=sections,
        overdue_total=overdue_total,
        overdue_by_unit=sorted(by_unit.items(), key=lambda item: -item[1]),
    )


@router.get("/unit", response_class=HTMLResponse)
def unit_desk(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """The unit's cases by nearest deadline, with their countdowns."""
    require_desk(user, Desk.unit)
    names = dp.Names.load(session, lang_of(request))
    states = [*(s.value for s in ON_THE_CLOCK), CaseState.handled.value]
    filters = CaseFilter(state=states, unit=user.actor.unit_code, sort="deadline")
    total, rows = _rows(session, user, request, filters, names)
    return page(
        request,
        "desk/unit.html",
        user,
        total=total,
        rows=rows,
        unit_name=names.unit(user.actor.unit_code),
        figures=_unit_figures(session, user, request),
    )


def _unit_figures(session: Session, user: DeskUser, request: Request) -> list[dict[str, str]] | None:
    """The signed-in unit's own figures this month and last (None for someone of no unit)."""
    unit = user.actor.unit_code
    if unit is None or not access.may_read_unit_statistics(user.actor, unit):
        return None
    now = dp.now_utc()
    today = now.astimezone(dp.CHINA).date()
    this = stats.month_period(today)
    last = stats.month_period(this.start - timedelta(days=1))
    overdue_now = views.count_cases(session, user.actor, CaseFilter(unit=unit, overdue=True), now)
    return dp.unit_figures(
        stats.unit_totals(session, unit, start=this.start, end=this.end),
        stats.unit_totals(session, unit, start=last.start, end=last.end),
        overdue_now,
        messages(lang_of(request)),
    )


# -- live lists: server-sent events fed by the case event log --------------------------------------
def _latest_event(request: Request) -> int:
    with request.app.state.store.transaction() as session:
        return views.latest_event_id(session)


@router.get("/events")
async def live_events(request: Request, user: DeskUser) -> StreamingResponse:
    """`changed` whenever the case event log grows (only its newest id: the page reloads its lists,
    which the access policy filters as usual). No database connection is held between looks."""

    # Woken by NOTIFY from whichever process appended the event (api/scaling.py); the look at
    # the log itself is the fallback, seldom while LISTEN works.
    feed = request.app.state.case_events
    scaling = request.app.state.scaling

    async def stream() -> AsyncIterator[str]:
        last = await run_in_threadpool(_latest_event, request)
        yield f"retry: 3000\nevent: hello\ndata: {last}\n\n"
        while not await request.is_disconnected():
            if feed.value <= last:
                await feed.wait(scaling.fallback_seconds(LIVE_CHECK_SECONDS))
            newest = feed.value
            if newest <= last:
                newest = await run_in_threadpool(_latest_event, request)
            if newest > last:
                last = newest
                yield f"event: changed\ndata: {newest}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- the 12345 hotline and the callback (回访) ---------------------------------------------------
def _category_groups(session: Session, lang: Lang) -> list[tuple[str, list[dict[str, str]]]]:
    """The catalogue for a drop-down: events first, grouped by 部件/事件 › class, names only."""
    t = messages(lang)
    groups: dict[str, list[dict[str, str]]] = {}
    for c in category_choices(session, lang):
        groups.setdefault(f"{t['pub_kind_' + c['kind']]} › {c['class']}", []).append(c)
    return list(groups.items())


@router.get("/hotline", response_class=HTMLResponse)
def hotline(request: Request, user: DeskUser, session: SessionDep, filed: str | None = None) -> Response:
    """The 12345 call-taker's page: the caller's number and words, the place, the category."""
    require_desk(user, Desk.hotline)
    done = None
    if filed:
        case = views.readable_case(session, user.actor, filed)
        codes = session.scalars(
            select(Case.tracking_code)
            .join(CaseLink, CaseLink.other_case_id == Case.id)
            .where(CaseLink.case_id == case.id)
            .order_by(CaseLink.distance_m)
        ).all()
        done = {"code": case.tracking_code, "duplicates": list(codes)}
    map_data = {"features": {"type": "FeatureCollection", "features": []}, "tiles_url": None}
    return page(
        request,
        "desk/hotline.html",
        user,
        groups=_category_groups(session, lang_of(request)),
        done=done,
        map_json=json.dumps(map_data),
        # The place search's words: each kind of place, and "nothing found" (desk.js).
        place_words={k: v for k, v in messages(lang_of(request)).items() if k.startswith("place_kind_")}
        | {"none": messages(lang_of(request))["place_none"]},
    )


@router.post("/hotline", response_class=HTMLResponse)
def hotline_file(
    request: Request,
    user: PostingUser,
    session: SessionDep,
    background: BackgroundTasks,
    phone: Annotated[str, Form()] = "",
    words: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    lon: Annotated[float | None, Form()] = None,
    lat: Annotated[float | None, Form()] = None,
) -> Response:
    """File the call on the hotline channel, then read the tracking code back to the caller."""
    require_desk(user, Desk.hotline)
    if not category:
        raise InvalidInput("choose the category of the problem", field="category")
    call = public.CallIn(phone=phone, words=words, category=category, lon=lon, lat=lat)
    filed = public.file_call(session, request.app.state.cases, user.actor, call)
    send_notices_soon(request, background)
    return RedirectResponse(f"/desk/hotline?lang={lang_of(request)}&filed={filed.tracking_code}", 303)


@router.get("/callback", response_class=HTMLResponse)
def callback(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """The callback list (回访): closed cases whose reporter has not answered, oldest first."""
    require_desk(user, Desk.callback)
    return page(request, "desk/callback.html", user, due=public.callbacks_due(session, user.actor))


@router.post("/callback/{tracking_code}", response_class=HTMLResponse)
def callback_record(
    request: Request,
    tracking_code: str,
    user: PostingUser,
    session: SessionDep,
    reached: Annotated[str, Form()] = "",
    rating: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Record a call back: reached (with the caller's verdict) or not reached (call again later)."""
    require_desk(user, Desk.callback)
    if reached not in ("yes", "no"):
        raise InvalidInput("say whether the caller was reached", field="reached")
    public.record_callback(
        session, user.actor, tracking_code, reached=reached == "yes", rating=rating or None, comment=comment
    )
    return RedirectResponse(f"/desk/callback?lang={lang_of(request)}&done={tracking_code}", 303)
