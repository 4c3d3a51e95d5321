"""The reports in Chromium for signed-in staff (the desks' cookie sign-in), network closed."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from geo.demo import DEMO_PASSWORD
from tests.browser.conftest import LiveServer, Offline

# Every text of the chart, with its box on the page and its computed size.
# The SVG is scaled to the page's width: its own font sizes are multiplied by that scale.
SVG_TEXTS = """() => [...document.querySelectorAll('figure.chart svg text')].map(t => {
    const b = t.getBoundingClientRect();
    const svg = t.ownerSVGElement;
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale,
            left: b.left, right: b.right, top: b.top, bottom: b.bottom, height: b.height};
})"""


def _overlaps(a: dict, b: dict) -> bool:
    """Whether two labels' glyphs cover each other. A text's box is its font's em box (for Noto
    CJK about 1.45 × the size, with room above and below the glyphs): compare the middle 60 %."""

    def inner(t: dict) -> tuple[float, float, float, float]:
        pad = 0.2 * (t["bottom"] - t["top"])
        return t["left"] + 1, t["right"] - 1, t["top"] + pad, t["bottom"] - pad

    al, ar, at, ab = inner(a)
    bl, br, bt, bb = inner(b)
    return al < br and bl < ar and at < bb and bt < ab


def test_staff_open_the_monthly_ranking_in_the_browser_and_read_its_chart(
    live_server: LiveServer, screen: Offline, artifacts: Path
) -> None:
    page = screen.page()
    page.goto(f"{live_server.url}/reports/monthly?month=2026-09")
    # Not signed in: the desks' sign-in page, and back to the report afterwards.
    expect(page.locator("h1")).to_have_text("登录工作台")
    page.fill("#username", "planner")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/reports/monthly?month=2026-09")
    expect(page.locator("h1")).to_contain_text("月度排名")
    ranked = page.locator('table[data-table="ranking"] tbody tr').count()
    assert ranked >= 70  # the demo month ranks 70+ units: the chart must stay legible
    expect(page.locator('table[data-table="ranking"] th').nth(3)).to_contain_text("派遣数")
    texts = page.evaluate(SVG_TEXTS)
    shown = [t for t in texts if t["height"] > 0]
    assert any("前 12 名" in t["text"] for t in shown) and any("后 12 名" in t["text"] for t in shown)
    assert any(t["text"].startswith("物业公司") for t in shown)  # grouped by kind of unit
    assert any(t["text"].startswith(f"{ranked}. ") for t in shown)  # the last ranked unit
    assert min(t["px"] for t in shown) >= 12, sorted(shown, key=lambda t: t["px"])[:3]
    page.locator("figure.chart").screenshot(path=str(artifacts / "report-monthly-chart.png"))
    clashes = [(a, b) for i, a in enumerate(shown) for b in shown[i + 1 :] if _overlaps(a, b)]
    assert clashes == []
    page.screenshot(path=str(artifacts / "report-monthly.png"), full_page=False)

    # The downloads open with the same session; the weekly report too.
    with page.expect_download() as download:
        page.click("#csv")
    assert download.value.suggested_filename == "monthly-2026-09.csv"
    page.goto(f"{live_server.url}/reports/weekly?week=2026-09-09")
    expect(page.locator("h1")).to_contain_text("周报")
    weekly = [t for t in page.evaluate(SVG_TEXTS) if t["height"] > 0]
    assert min(t["px"] for t in weekly) >= 12
    assert not [
        (a["text"], b["text"]) for i, a in enumerate(weekly) for b in weekly[i + 1 :] if _overlaps(a, b)
    ]
    page.screenshot(path=str(artifacts / "report-weekly.png"), full_page=True)


def test_a_unit_handler_gets_a_page_not_the_ranking(live_server: LiveServer, screen: Offline) -> None:
    page = screen.page()
    page.goto(f"{live_server.url}/reports/monthly?month=2026-09")
    page.fill("#username", "unit_handler")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#error")).to_have_attribute("data-kind", "err_403")
    assert page.locator('table[data-table="ranking"]').count() == 0


def test_the_desks_link_the_reports_for_those_who_may_read_them(
    live_server: LiveServer, screen: Offline
) -> None:
    page = screen.page()
    page.goto(f"{live_server.url}/desk")
    page.fill("#username", "planner")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.click("#reports a[href^='/reports/weekly']")
    expect(page.locator("h1")).to_contain_text("周报")
