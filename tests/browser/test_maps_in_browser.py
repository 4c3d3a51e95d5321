"""The folium maps draw in headless Chromium with the network closed: heat layer, grids, bins."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect
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
    # A title, and the grids named as people say them (第3网格), the code on hover.
    assert "未办结案件热力图" in page.title()
    names = page.locator(".gridcase-label.gridcase-grid-name").all_inner_texts()
    assert len(names) == grids and all(re.fullmatch(r"第\d+网格", n) for n in names), names
    assert "第3网格" in names
    third = page.locator(".gridcase-label.gridcase-grid-name", has_text=re.compile(r"^第3网格$"))
    box = third.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 1)
    tooltip = page.locator(".leaflet-tooltip")
    expect(tooltip).to_contain_text(re.compile(rf"{code}\d{{3}}"))  # the grid's 15-digit code
    expect(tooltip).to_contain_text("第3网格")
    # Landmarks for orientation, and a legend that says what the colours mean.
    assert page.locator(".gridcase-label.gridcase-landmark").count() == 4
    legend = page.locator(".gridcase-legend").inner_text()
    for words in ("图例", "少 → 多", "社区边界", "网格", "河渠湖泊", "道路", "公园"):
        assert words in legend, words
    page.screenshot(path=str(artifacts / f"heatmap-{code}.png"))


def test_a_bad_community_code_is_an_error_page(
    live_server: LiveServer, screen: Offline, artifacts: Path
) -> None:
    page = screen.page()
    response = page.goto(f"{live_server.url}/maps/communities/421281999999/heatmap")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.locator("#error")).to_have_attribute("data-kind", "err_404_community")
    expect(page.locator("h1")).to_have_text("找不到这个社区")
    page.screenshot(path=str(artifacts / "heatmap-unknown-community.png"))
    page.click("#back")
    expect(page).to_have_url(re.compile(r"/maps/city\?lang=zh$"))
    page.wait_for_function("window.L && document.querySelectorAll('path.leaflet-interactive').length > 10")
    english = page.goto(f"{live_server.url}/maps/communities/nope/heatmap?lang=en")
    assert english is not None and english.status == 404
    expect(page.locator("h1")).to_have_text("No such community")


def test_city_density_map_draws_offline(live_server: LiveServer, screen: Offline, artifacts: Path) -> None:
    for bins in ("grid", "hex"):
        page = screen.page()
        page.goto(f"{live_server.url}/maps/city?bins={bins}")
        page.wait_for_function(
            "window.L && document.querySelectorAll('path.leaflet-interactive').length > 10"
        )
        assert page.locator(".leaflet-tile").count() == 0
        assert "全市未办结案件分布" in page.title()
        legend = page.locator(".gridcase-legend").inner_text()
        assert re.search(r"^0$", legend, re.M), legend  # the class of no unresolved case
        assert "图例" in legend and "河渠湖泊" in legend
        assert page.locator(".gridcase-label.gridcase-community").count() == 27  # every community named
        assert page.locator(".gridcase-label.gridcase-landmark").count() == 4
        page.screenshot(path=str(artifacts / f"city-{bins}.png"))
