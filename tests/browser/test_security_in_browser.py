"""Every page under its own Content-Security-Policy, and hostile names from an import drawn as text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from geo.store.models import Area, Case
from tests.browser.conftest import LiveServer, Offline
from tests.browser.test_maps_in_browser import _busiest_community

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline")));
"""
HOSTILE = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'


def test_every_page_draws_under_its_policy(live_server: LiveServer, strict_screen: Offline) -> None:
    code, _ = _busiest_community(live_server)
    strict_screen.context.add_init_script(RECORD_VIOLATIONS)
    pages = {
        f"/command-center?key={live_server.screen_key}": "path.grid",
        "/inspector": "form",
        f"/maps/communities/{code}/heatmap": "canvas.leaflet-heatmap-layer",
        "/maps/city?bins=grid": "path.leaflet-interactive",
        "/maps/city?bins=hex": "path.leaflet-interactive",
        "/": "#fixed-map path",
        "/report": ".leaflet-marker-icon",
        f"/track/{_a_closed_case(live_server)}": "#timeline li",
    }
    for path, drawn in pages.items():
        page = strict_screen.page()
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.ok, path
        policy = response.headers["content-security-policy"]
        assert "http:" not in policy and "https:" not in policy and "*" not in policy, policy
        assert "frame-ancestors 'self'" in policy and response.headers["x-content-type-options"] == "nosniff"
        page.wait_for_selector(drawn, state="attached")
        assert page.evaluate("() => window.__csp") == [], path


def _a_closed_case(server: LiveServer) -> str:
    with server.store.transaction() as session:
        return session.scalar(select(Case.tracking_code).where(Case.state == "closed").limit(1))


@pytest.fixture
def hostile_grid(live_server: LiveServer) -> Iterator[tuple[str, str]]:
    """One current grid renamed to markup, as an import file could carry it; restored after."""
    code, _ = _busiest_community(live_server)
    with live_server.store.transaction() as session:
        grid = session.scalars(select(Area).where(Area.level == "grid", Area.parent_code == code)).first()
        assert grid is not None
        old = grid.name
        session.execute(update(Area).where(Area.id == grid.id).values(name=HOSTILE))
    yield code, grid.code
    with live_server.store.transaction() as session:
        session.execute(update(Area).where(Area.id == grid.id).values(name=old))


def test_hostile_names_are_text_not_script(
    live_server: LiveServer, screen: Offline, hostile_grid: tuple[str, str]
) -> None:
    """With the policy bypassed (as an old browser would), escaping alone keeps the markup inert."""
    community, grid = hostile_grid
    screen_page = f"/command-center?key={live_server.screen_key}"
    for path in (screen_page, f"/maps/communities/{community}/heatmap", "/maps/city?bins=grid"):
        page = screen.page()
        page.goto(f"{live_server.url}{path}")
        page.wait_for_selector("path.leaflet-interactive", state="attached")
        # Hover every drawn polygon so each tooltip is built, the hostile one among them (in one
        # pass over the paths there now: the screen moves a new case's dot to another layer when
        # its first minute ends, so a list of locators taken earlier can go stale).
        hovered = page.evaluate("""() => {
            const shapes = [...document.querySelectorAll('path.leaflet-interactive')].slice(0, 400);
            shapes.forEach(p => p.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})));
            return shapes.length;
        }""")
        assert hovered > 10, path
        assert page.evaluate("() => window.__xss") is None, path
        assert page.locator("img[src=x]").count() == 0, path


def test_an_unconnected_screen_asks_for_its_key(live_server: LiveServer, screen: Offline, artifacts) -> None:
    page = screen.page()
    response = page.goto(f"{live_server.url}/command-center")
    assert response is not None and response.status == 401
    expect(page.locator("h1")).to_have_text("社区治理指挥中心")
    page.fill("input[name=key]", live_server.screen_key)
    page.screenshot(path=str(artifacts / "screen-key.png"))
    page.click("button[type=submit]")
    page.wait_for_selector("path.grid", state="attached")  # connected: the city draws
    assert page.url.endswith("/command-center?lang=zh")
