"""The command-centre screen (/command-center), the inspector's phone page (/inspector), their JSON.

Access: the screen runs unattended on the intranet, so `/command-center` and
`/api/v1/dashboard/*` need no sign-in and serve only aggregate and public-level fields (tracking
codes, categories, states, units, routing rules; never contacts or people's names). The inspector
page signs in with a bearer token and uses the case API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api import screen
from api.deps import SessionDep
from api.desk_pages import calendar_warning
from api.i18n import Lang, explanation, messages
from api.params import MonthQuery
from api.scaling import ReadSessionDep
from api.screen import ScreenDep
from api.security import ActorDep, oauth2
from api.templating import templates
from geo import dashboard
from geo.cases import views

router = APIRouter(tags=["pages"])

LangQuery = Annotated[Lang, Query(description="page language: zh (default) or en")]
POLL_SECONDS = 5  # the screen polls the JSON endpoints; simpler than SSE behind intranet proxies
SCREEN_COOKIE_SECONDS = 366 * 24 * 3600  # a screen is set up once a year at most


def _page(request: Request, name: str, lang: Lang, status_code: int = 200, **context: object) -> HTMLResponse:
    strings = messages(lang)
    settings = request.app.state.settings
    config = {
        "lang": lang,
        "t": strings,
        "poll_seconds": POLL_SECONDS,
        "tiles_url": settings.tiles_url,
        **context,
    }
    return templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": strings,
            "other_lang": "en" if lang == "zh" else "zh",
            # "</" could end the inline <script> that carries the config: escape it.
            "config_json": json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
            **context,
        },
        status_code=status_code,
    )


@router.get("/command-center", response_class=HTMLResponse, include_in_schema=False)
def command_center(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2)] = None,
    lang: LangQuery = "zh",
    month: MonthQuery = None,
    key: Annotated[str | None, Query(description="the screen's kiosk key, once")] = None,
) -> Response:
    """The big screen: today's flow, disposal rate, overdue, live map, latest cases, units."""
    query = f"?lang={lang}" + (f"&month={month}" if month else "")
    if key is not None:
        if not screen.is_screen_key(request, key):
            return _page(request, "screen_key.html", lang, status_code=401, wrong_key=True)
        # Keep the key in a cookie the page's scripts cannot read, and out of the address bar.
        answer = RedirectResponse(f"/command-center{query}", status_code=303)
        answer.set_cookie(
            screen.COOKIE, key, max_age=SCREEN_COOKIE_SECONDS, httponly=True, samesite="strict", path="/"
        )
        return answer
    if not screen.may_watch(request, session, token):
        return _page(request, "screen_key.html", lang, status_code=401, wrong_key=False)
    warning = calendar_warning(request, session, lang)
    return _page(request, "command_center.html", lang, month=month, calendar_warning=warning)


@router.get("/inspector", response_class=HTMLResponse, include_in_schema=False)
def inspector(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """The field inspector's phone page: report with a photo, outbox, own cases, check tasks."""
    return _page(request, "inspector.html", lang)


# -- the screen's data (no sign-in: aggregate and public-level fields only) ----------------------
@router.get(
    "/api/v1/dashboard/summary",
    response_model=dashboard.Summary,
    tags=["dashboard"],
    dependencies=[ScreenDep],
)
def dashboard_summary(session: ReadSessionDep, month: MonthQuery = None) -> dashboard.Summary:
    """Today's counts (Asia/Shanghai), the month's disposal rate, overdue and unresolved cases."""
    return dashboard.summary(session, month=month)


@router.get(
    "/api/v1/dashboard/latest",
    response_model=list[dashboard.LatestCase],
    tags=["dashboard"],
    dependencies=[ScreenDep],
)
def dashboard_latest(
    session: ReadSessionDep, limit: Annotated[int, Query(ge=1, le=50)] = 10, lang: LangQuery = "zh"
) -> list[dashboard.LatestCase]:
    """The newest cases with their routing explanation in the page's language."""
    return dashboard.latest_cases(session, limit, explain=lambda decision: explanation(lang, decision))


@router.get(
    "/api/v1/dashboard/units",
    response_model=list[dashboard.UnitRank],
    tags=["dashboard"],
    dependencies=[ScreenDep],
)
def dashboard_units(
    session: ReadSessionDep, month: MonthQuery = None, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[dashboard.UnitRank]:
    """Units ranked by disposal rate for the month (单位处置率排名)."""
    window = dashboard.month_window(datetime.now(UTC), month)
    return dashboard.units_ranking(session, window, limit)


@router.get("/api/v1/dashboard/live-cases", tags=["dashboard"], dependencies=[ScreenDep])
def dashboard_live_cases(
    session: ReadSessionDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 2000
) -> dict:
    """Unresolved cases as GeoJSON points, newest first, at most `limit`; `total` counts all."""
    return dashboard.live_cases(session, limit)


@router.get("/api/v1/dashboard/grids", tags=["dashboard"])
def dashboard_grids(session: ReadSessionDep, response: Response) -> dict:
    """The current grid boundaries as GeoJSON (simplified to about 1 m)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return dashboard.grid_boundaries(session)


@router.get("/api/v1/dashboard/orientation", tags=["dashboard"])
def dashboard_orientation(session: ReadSessionDep, response: Response) -> dict:
    """The map's landmarks as GeoJSON: thematic layers (canal, lake, roads, parks) and community
    names at a point inside each community."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return dashboard.orientation(session)


# -- the inspector's own reports ------------------------------------------------------------------
@router.get("/api/v1/me/cases", response_model=views.OwnReports, tags=["cases"])
def my_cases(
    actor: ActorDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    lang: LangQuery = "zh",
) -> views.OwnReports:
    """The cases the signed-in person reported, newest first (我的上报), units and grids by name."""
    return views.own_reports(session, actor, limit, lang)


@router.get("/api/v1/me/checks", response_model=list[views.CheckTask], tags=["cases"])
def my_checks(
    actor: ActorDep,
    session: SessionDep,
    lang: LangQuery = "zh",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[views.CheckTask]:
    """The handled cases the signed-in person may check on site now (核查任务), oldest first: the
    report's and the unit's photos, the unit's note, unit and grid by name, the grid's outline."""
    return views.check_tasks(session, actor, lang, limit)
