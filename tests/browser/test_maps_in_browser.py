"""The folium maps draw in headless Chromium with the network closed: heat layer, grids, bins."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from geo.areas import areas_frame
from geo.cases.workflow import OPEN
from geo.store.models import Case
from tests.browser.conftest import LiveServer, Offline


def _busiest_community(live_server: LiveServer) -> tuple[str, int]:
    """The community with the most unresolved cases, and how many grids it has."""
    with live_server.store.transaction() as session:
        code = session.scalar(
            select(Case.community_code)
            .where(Case.state.in_([s.value for s in OPEN]))
            .group_by(Case.community_code)
            .order_by(func.count().desc(), Case.community_code)
            .limit(1)
        )
        grids = areas_frame(session, levels=["grid"])
    return code, int((grids.parent_code == code).sum())


def test_community_heatmap_draws_offline(live_server: LiveServer, screen: Offline, artifacts: Path) -> None:
    code, grids = _busiest_community(live_server)
    page = screen.page()
    page.goto(f"{live_server.url}/maps/communities/{code}/heatmap")
    page.wait_for_function("window.L && document.querySelector('canvas.leaflet-heatmap-layer')")
    # The community outline plus each of its grids are drawn as vector paths.
    page.wait_for_function(f"document.querySelectorAll('path.leaflet-interactive').length >= {grids + 1}")
    assert page.locator(".leaflet-tile").count() == 0  # no tiles configured: no network
    assert page.locator(".leaflet-control-layers").count() == 1  # markers can be toggled
    labels = page.locator(".leaflet-tooltip, .leaflet-marker-icon").all_inner_texts()
    assert any(code in text for text in labels), "grid codes are labelled on the map"
    page.screenshot(path=str(artifacts / f"heatmap-{code}.png"))


def test_city_density_map_draws_offline(live_server: LiveServer, screen: Offline, artifacts: Path) -> None:
    for bins in ("grid", "hex"):
        page = screen.page()
        page.goto(f"{live_server.url}/maps/city?bins={bins}")
        page.wait_for_function(
            "window.L && document.querySelectorAll('path.leaflet-interactive').length > 10"
        )
        assert page.locator(".leaflet-tile").count() == 0
        page.screenshot(path=str(artifacts / f"city-{bins}.png"))
