"""Map pages: a community's unresolved cases as a heatmap, and the city-wide density map.

Access: the pages are public (the command centre's big screen shows them without a password).
They carry locations, categories, states and ages of unresolved cases, and counts: never
contacts, reporters' names or descriptions. Tracking codes (which open a case's public page)
appear in marker popups only for signed-in staff (operator, dispatcher, admin, planner).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.errors import PAGE_ERROR
from api.headers import content_security_policy, script_hashes
from api.scaling import ReadSessionDep
from api.security import oauth2
from api.web import PageRefusal
from geo import access
from geo.accounts import authenticate
from geo.errors import NotFound
from geo.maps.heatmap import MAX_AGE_DAYS, city_density_map, community_heatmap
from geo.maps.offline import DEFAULT_PREFIX, render_local

router = APIRouter(tags=["maps"])


def map_page(html: str, tiles_url: str | None) -> HTMLResponse:
    """A folium page: rebuilt from live data on every request; its inline scripts allowed by hash."""
    policy = content_security_policy(tiles_url, script_hashes(html))
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Content-Security-Policy": policy})


StateQuery = Annotated[
    list[str] | None,
    Query(description="open states to show; repeat or separate with commas (default: every open state)"),
]
Category = Annotated[str | None, Query(description="category code, e.g. E0102")]
MinAge = Annotated[
    float | None, Query(ge=0, le=MAX_AGE_DAYS, description="only cases at least this many days old")
]
MaxAge = Annotated[
    float | None, Query(ge=0, le=MAX_AGE_DAYS, description="only cases at most this many days old")
]
Overdue = Annotated[bool, Query(description="only cases past their deadline")]


def _states(state: list[str] | None) -> list[str]:
    return [s for value in state or () for s in value.split(",") if s.strip()]


def _is_staff(session: SessionDep, token: Annotated[str | None, Depends(oauth2)]) -> bool:
    """Signed-in staff see tracking codes; anyone else sees the map without them."""
    return token is not None and access.may(authenticate(session, token), access.Sight.map_tracking_codes)


#: A community that is not in the current boundaries: an error page, as for every page.
NOT_FOUND_PAGE: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "no community with this code in the current boundaries: an HTML page "
        "that says so and links to the city map",
        PAGE_ERROR: True,
    }
}


@router.get("/maps/communities/{code}/heatmap", response_class=HTMLResponse, responses=NOT_FOUND_PAGE)
def community_heatmap_page(
    code: str,
    request: Request,
    session: ReadSessionDep,
    staff: Annotated[bool, Depends(_is_staff)],
    category: Category = None,
    min_age_days: MinAge = None,
    max_age_days: MaxAge = None,
    overdue: Overdue = False,
    state: StateQuery = None,
) -> HTMLResponse:
    """A community's unresolved cases: heatmap, grids labelled with codes, clustered markers."""
    settings = request.app.state.settings
    try:
        fmap = community_heatmap(
            session,
            code,
            category=category,
            min_age_days=min_age_days,
            max_age_days=max_age_days,
            overdue_only=overdue,
            states=_states(state),
            tiles_url=settings.tiles_url,
            tiles_attribution=settings.tiles_attribution,
            tracking_codes=staff,
        )
    except NotFound as missing:
        raise PageRefusal(
            404, "err_404_community", detail=missing.message, facts={"field": "code", "back": "/maps/city"}
        ) from None
    return map_page(render_local(fmap, DEFAULT_PREFIX), settings.tiles_url)


@router.get("/maps/city", response_class=HTMLResponse)
def city_map_page(
    request: Request,
    session: ReadSessionDep,
    bins: Annotated[Literal["grid", "hex"], Query(description="count per grid or per hexagon")] = "grid",
    hex_size_m: Annotated[float, Query(ge=20, le=20_000, description="hexagon size, metres")] = 250.0,
    category: Category = None,
    min_age_days: MinAge = None,
    max_age_days: MaxAge = None,
    overdue: Overdue = False,
    state: StateQuery = None,
) -> HTMLResponse:
    """The city's unresolved cases counted in PostGIS per grid or hexagon (no raw points)."""
    settings = request.app.state.settings
    fmap = city_density_map(
        session,
        bins=bins,
        hex_size_m=hex_size_m,
        category=category,
        min_age_days=min_age_days,
        max_age_days=max_age_days,
        overdue_only=overdue,
        states=_states(state),
        tiles_url=settings.tiles_url,
        tiles_attribution=settings.tiles_attribution,
    )
    return map_page(render_local(fmap, DEFAULT_PREFIX), settings.tiles_url)
