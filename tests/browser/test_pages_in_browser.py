"""The command-centre screen and the inspector's phone page in a real Chromium, network closed."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect
from sqlalchemy import func, select

from geo.demo import DEMO_PASSWORD
from geo.store.models import Case, CaseEvent, CasePhoto
from tests.browser.conftest import PHONE, LiveServer, Offline, _offline
from tests.conftest import FIXTURES, REPO

PHOTOS = FIXTURES / "photos"
GRIDS = 263
POLL_S = 5  # api.routes.pages.POLL_SECONDS


def wait_until(
    condition: Callable[[], bool], page: Page, timeout_s: float = 15, what: str = "condition"
) -> None:
    """Poll a Python-side condition while letting Playwright dispatch its route handlers."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)


def sign_in(page: Page, server: LiveServer, username: str = "inspector") -> None:
    """Open the inspector page and sign in through its form."""
    page.goto(f"{server.url}/inspector")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#who")).to_have_text(username)
    expect(page.locator("#category option[value=E0102]")).to_have_count(1)


def fill_report(page: Page, photo: Path, description: str) -> None:
    """Choose a photo, locate by its EXIF (send no lon/lat), pick exposed garbage, describe."""
    page.set_input_files("#photo", str(photo))
    page.check("input[name=locate][value=photo]")
    page.select_option("#category", "E0102")
    page.fill("#description", description)


def outbox(page: Page) -> list[dict]:
    """What the page's IndexedDB outbox holds (without the photo bytes)."""
    return page.evaluate("""async () => (await window.gridcaseInspector.outbox.all())
        .map(({photo, ...rest}) => ({...rest, photoBytes: photo.byteLength}))""")


def cases_with_key(server: LiveServer, key: str) -> list[Case]:
    """Cases stored under an Idempotency-Key (kept as '<account id>:<key>')."""
    with server.store.transaction() as session:
        return list(session.scalars(select(Case).where(Case.idempotency_key.endswith(":" + key))))


def api(server: LiveServer, username: str) -> httpx.Client:
    """An HTTP client signed in as a demo account."""
    token = httpx.post(
        f"{server.url}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    ).json()
    return httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token['access_token']}"}
    )


# -- the command-centre screen -----------------------------------------------------------------
def test_command_center_draws_the_city_offline_in_chinese_and_english(
    live_server: LiveServer, screen: Offline, artifacts: Path
) -> None:
    page = screen.page()
    page.goto(f"{live_server.url}/command-center?key={live_server.screen_key}")  # the screen, once
    assert page.url == f"{live_server.url}/command-center?lang=zh"  # the key left the address bar
    page.wait_for_function(
        f"window.L && window.gridcaseScreen && window.gridcaseScreen.polls >= 1"
        f" && document.querySelectorAll('path.grid.leaflet-interactive').length >= {GRIDS}"
        " && window.gridcaseScreen.markers.size > 0 && window.gridcaseScreen.gridsLoaded"
    )
    assert page.evaluate("typeof window.L.map") == "function"
    assert page.locator("path.grid.leaflet-interactive").count() == GRIDS
    assert page.locator("path.leaflet-interactive").count() >= GRIDS
    live = httpx.get(
        f"{live_server.url}/api/v1/dashboard/live-cases", headers={"X-Screen-Key": live_server.screen_key}
    ).json()
    assert live["total"] >= 422  # the demo quarter leaves 422 dispatched cases open
    # Zoomed out: counts per grid, not a dot per case (and never a sea of red).
    assert page.evaluate("document.body.dataset.mapMode") == "counts"
    per_grid: dict[str, list[int]] = {}
    for feature in live["features"]:
        if feature["properties"]["grid_code"] is None:
            continue  # in the triage queue (unroutable): no grid to count it in
        tally = per_grid.setdefault(feature["properties"]["grid_code"], [0, 0])
        tally[0] += 1
        tally[1] += feature["properties"]["overdue"]
    shown = page.evaluate("""[...document.querySelectorAll('.grid-count > div')].map(
        box => [box.dataset.grid, Number(box.textContent), Number(box.dataset.overdue),
                box.classList.contains('has-overdue')])""")
    assert len(shown) == len(per_grid)  # a badge for every grid with open cases (some hidden if crowded)
    for grid, n, late, ringed in shown:
        assert per_grid[grid] == [n, late] and ringed == (late > 0), grid
    # Grids are coloured by their count: several classes, not one colour everywhere.
    fills = page.evaluate("[...document.querySelectorAll('path.grid')].map(p => p.getAttribute('fill'))")
    assert len(set(fills)) >= 4
    # The landmarks: canal, lake, road and park drawn and named; every community named.
    for kind in ("river_lake", "road", "park"):
        assert page.locator(f"path.landmark-{kind}").count() >= 1, kind
    names = page.locator(".landmark-label").all_inner_texts()
    assert {"北渠", "南湖", "中心大道", "人民公园"} <= set(names)
    assert page.locator(".community-label").count() == 27
    legend = page.locator(".legend").inner_text()
    assert "每网格未办结" in legend and "超期" in legend and "河渠湖泊" in legend
    page.screenshot(path=str(artifacts / "command-center-counts.png"))
    # Zoomed in: one dot per case, overdue ones ringed in red (the fill keeps the state's colour).
    page.evaluate("window.gridcaseScreen.map.setZoom(window.gridcaseScreen.detailZoom)")
    page.wait_for_function("document.body.dataset.mapMode === 'cases'")
    expect(page.locator("path.case-marker")).to_have_count(len(live["features"]))
    rings = page.evaluate("""() => [...document.querySelectorAll('path.case-marker')].map(
        p => [p.getAttribute('stroke'), p.getAttribute('fill')])""")
    overdue = sum(f["properties"]["overdue"] for f in live["features"])
    assert 0 < sum(stroke == "#ff4d4f" for stroke, _ in rings) == overdue
    assert not any(fill == "#ff4d4f" for _, fill in rings)
    page.screenshot(path=str(artifacts / "command-center-zoomed.png"))
    page.evaluate("window.gridcaseScreen.map.setZoom(window.gridcaseScreen.detailZoom - 2)")
    page.wait_for_function("document.body.dataset.mapMode === 'counts'")
    assert page.locator(".leaflet-tile").count() == 0  # no tile layer without a tiles URL
    # Chinese labels first, figures filled in from the JSON.
    expect(page.locator("h1")).to_have_text("社区治理指挥中心")
    expect(page.locator(".kpi-label").first).to_have_text("今日上报")
    for figure in ["reported", "verified", "filed", "dispatched", "handled", "closed"]:
        expect(page.locator(f"[data-count={figure}]")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#overdue")).to_have_text(re.compile(r"^[1-9]\d*$"))
    assert "派遣数" in (page.locator(".kpi-rate").get_attribute("title") or "")
    expect(page.locator("#latest li.case").first).to_be_visible()
    assert page.locator("#latest li.case .why li").count() >= 1
    # The routing explanation reads in Chinese on the Chinese screen.
    for why in page.locator("#latest li.case .why li").all_inner_texts():
        assert re.search(r"[\u4e00-\u9fff]", why) and not re.search(
            r"\b(layer|grid|event|component)\b", why
        ), why
    page.screenshot(path=str(artifacts / "command-center-zh.png"))

    # English, on the last demo month so the ranking has units in it.
    page.goto(f"{live_server.url}/command-center?lang=en&month=2026-09")
    page.wait_for_function("window.gridcaseScreen && window.gridcaseScreen.polls >= 1")
    expect(page.locator("h1")).to_have_text("Community Governance Command Centre")
    expect(page.locator(".kpi-label").first).to_have_text("Reported today")
    expect(page.locator("#disposal-rate")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(page.locator("#disposal-formula")).to_contain_text("(2026-09)")
    expect(page.locator("#units tr").first).to_contain_text("%")
    assert page.locator("#units tr").count() >= 10
    expect(page.locator("a.lang")).to_have_text("中文")
    page.screenshot(path=str(artifacts / "command-center-en.png"))


# -- the inspector's page ----------------------------------------------------------------------
def test_a_report_from_the_phone_appears_on_the_screen_without_a_reload(
    live_server: LiveServer, phone: Offline, screen: Offline, artifacts: Path
) -> None:
    big = screen.page()
    big.goto(f"{live_server.url}/command-center?key={live_server.screen_key}")
    big.wait_for_function("window.gridcaseScreen && window.gridcaseScreen.markers.size > 0")
    big.evaluate("window.sameDocument = true")  # gone if the page reloads

    page = phone.page()
    posted: list[bytes] = []
    page.on(
        "request",
        lambda r: (
            posted.append(r.post_data_buffer or b"")
            if r.method == "POST" and r.url.endswith("/api/v1/cases")
            else None
        ),
    )
    sign_in(page, live_server)
    fill_report(page, PHOTOS / "canal_report.jpg", "北渠边有少量垃圾")
    page.screenshot(path=str(artifacts / "inspector-report.png"))
    page.click("#submit")
    expect(page.locator("#msg")).to_contain_text(re.compile(r"已上报 GC\w+"))
    code = re.search(r"GC\w+", page.locator("#msg").inner_text()).group(0)  # type: ignore[union-attr]
    # Sent without coordinates: the server found them in the photo's EXIF.
    assert len(posted) == 1 and b'name="photos"' in posted[0]
    assert b'name="lon"' not in posted[0] and b'name="lat"' not in posted[0]
    with live_server.store.transaction() as session:
        case = session.scalar(select(Case).where(Case.tracking_code == code))
        assert case is not None and case.routing["located_by"] == "photo EXIF GPS"
        assert case.unit_code == "WATER" and case.reported_by == "inspector"

    # The screen picks it up on its next poll, in the same document.
    started = time.monotonic()
    expect(big.locator(f"path.case-{code}")).to_have_count(1, timeout=(2 * POLL_S + 5) * 1000)
    expect(big.locator(f"#latest li[data-tracking-code={code}]")).to_be_visible(timeout=(POLL_S + 5) * 1000)
    assert time.monotonic() - started <= 2 * POLL_S + 5
    assert big.evaluate("window.sameDocument") is True
    why = big.locator(f"#latest li[data-tracking-code={code}] .why li")
    assert why.count() >= 1 and "北渠" in " ".join(why.all_inner_texts())
    big.screenshot(path=str(artifacts / "command-center-live.png"))

    page.click("[data-tab=mine]")
    mine = page.locator(f"#mine li[data-tracking-code={code}]")
    expect(mine).to_be_visible()
    # Words, not codes: the state, the category, the grid and the unit by name.
    expect(mine.locator(".state")).to_have_text("待受理")
    expect(mine.locator(".category-name")).to_contain_text("暴露垃圾")
    expect(mine.locator(".place")).to_contain_text("水利和湖泊局")
    text = mine.inner_text()
    assert "WATER" not in text and "E0102" not in text and case.grid_code not in text, text
    assert re.search(r"网格", text), text
    page.screenshot(path=str(artifacts / "inspector-mine.png"))


def test_a_flaky_network_keeps_the_report_and_retries_with_the_same_key(
    live_server: LiveServer, phone: Offline, artifacts: Path
) -> None:
    page = phone.page()
    sign_in(page, live_server)
    mode = {"now": "down"}
    keys: list[str] = []

    def flaky(route: Route) -> None:
        if route.request.method != "POST":
            route.fallback()
            return
        keys.append(route.request.headers.get("idempotency-key", ""))
        if mode["now"] == "down":  # the request never reaches the server
            route.abort("internetdisconnected")
        elif mode["now"] == "lost":  # the server creates the case, the answer is lost
            route.fetch()
            mode["now"] = "lost done"
            route.abort("connectionreset")
        else:
            route.fallback()

    page.route("**/api/v1/cases", flaky)
    fill_report(page, PHOTOS / "canal_report.jpg", "渠边垃圾（弱网）")
    page.click("#submit")
    wait_until(lambda: len(keys) >= 1, page, what="the first attempt")
    expect(page.locator("#outbox-count")).to_have_text("1")
    [held] = outbox(page)
    key = held["key"]
    assert keys[0] == key and held["status"] == "pending" and held["photoBytes"] > 0
    assert re.fullmatch(r"[0-9a-f-]{36}", key)
    assert cases_with_key(live_server, key) == []
    page.click("[data-tab=outbox]")
    expect(page.locator(f"#outbox li[data-key='{key}']")).to_be_visible()
    page.screenshot(path=str(artifacts / "inspector-outbox.png"))

    # The outbox survives a reload; the page tries again at once, still offline.
    tries = len(keys)
    page.reload()
    wait_until(lambda: len(keys) > tries, page, what="a retry after the reload")
    assert [item["key"] for item in outbox(page)] == [key]

    # Back online, but the answer to the first delivered request is lost: the case exists once.
    mode["now"] = "lost"
    page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_until(lambda: mode["now"] == "lost done", page, what="a delivered attempt")
    assert len(cases_with_key(live_server, key)) == 1
    assert [item["key"] for item in outbox(page)] == [key]

    # The next retry is acknowledged (the server answers with the same case) and the outbox empties.
    mode["now"] = "up"
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#outbox-count")).to_have_text("0")
    assert outbox(page) == []
    [case] = cases_with_key(live_server, key)
    expect(page.locator("#msg")).to_contain_text(case.tracking_code)
    assert set(keys) == {key} and len(keys) >= 4
    with live_server.store.transaction() as session:
        reports = session.scalar(
            select(func.count())
            .select_from(CaseEvent)
            .where(CaseEvent.case_id == case.id, CaseEvent.action == "report")
        )
    assert reports == 1

    # A refusal (4xx) is shown and kept, never retried: a photo without GPS and no location.
    page.unroute("**/api/v1/cases")
    page.click("[data-tab=report]")
    fill_report(page, PHOTOS / "no_gps.jpg", "没有定位的照片")
    page.click("#submit")
    expect(page.locator("#msg")).to_contain_text("HTTP 422")
    [refused] = outbox(page)
    assert refused["status"] == "failed" and "location" in refused["error"]
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(1500)
    assert outbox(page)[0]["attempts"] == 1
    assert cases_with_key(live_server, refused["key"]) == []


def test_the_inspector_checks_on_site_from_a_card_with_both_photos_the_note_and_a_map(
    live_server: LiveServer, browser: Browser, artifacts: Path
) -> None:
    """The check card: the report's photo next to the unit's after-photo, the unit's note, unit
    and grid by name, the point on its grid on a small offline map; the photo sent is a check photo."""
    with api(live_server, "inspector") as inspector:
        answer = inspector.post(
            "/api/v1/cases",
            data={"category": "E0102", "description": "渠边垃圾待核查"},
            files=[("photos", ("report.jpg", (PHOTOS / "canal_report.jpg").read_bytes(), "image/jpeg"))],
        )
        assert answer.status_code == 201, answer.text
        case = answer.json()
    for who, action, files in [
        ("operator", "verify", None),
        ("operator", "file", None),
        ("dispatcher", "dispatch", None),
        ("unit_handler", "sign", None),
        # three different photos: a case stores each content once
        ("unit_handler", "handle", PHOTOS / "canal_after.jpg"),
    ]:
        with api(live_server, who) as client:
            url = f"/api/v1/cases/{case['id']}/actions/{action}"
            response = (
                client.post(
                    url,
                    data={"note": "已清理渠边垃圾"},
                    files=[("photos", ("after.jpg", files.read_bytes(), "image/jpeg"))],
                )
                if files
                else client.post(url, json={})
            )
            assert response.status_code == 200, response.text
    code = case["tracking_code"]

    # A phone with the network closed and the page's Content-Security-Policy enforced.
    gen = _offline(browser, PHONE, enforce_csp=True)
    phone = next(gen)
    page = phone.page()
    page.on("console", lambda m: phone.errors.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, live_server)
    page.click("[data-tab=checks]")
    task = page.locator(f"#checks li[data-tracking-code={code}]")
    expect(task).to_be_visible()
    expect(task.locator(".unit-name")).to_have_text("水利和湖泊局")
    expect(task.locator(".grid-name")).to_have_text(re.compile(r"^\S+社区第\d+网格$"))
    expect(task.locator(".handle-note")).to_have_text("已清理渠边垃圾")
    for purpose in ("report", "after"):
        img = task.locator(f".check-photo.{purpose} img")
        expect(img).to_have_count(1)
        img.scroll_into_view_if_needed()
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("i => i.naturalWidth") > 0, purpose
    drawn = task.locator(".check-map")
    expect(drawn).to_have_attribute("data-drawn", "yes")
    expect(drawn.locator("path")).to_have_count(2)  # the grid's outline and the point
    assert "421281" not in task.inner_text()  # names, not codes
    task.locator("input.after-photo").set_input_files(str(PHOTOS / "no_gps.jpg"))
    task.scroll_into_view_if_needed()
    task.screenshot(path=str(artifacts / "inspector-check-card.png"))
    page.screenshot(path=str(artifacts / "inspector-check.png"))
    task.locator("button.check-pass").click()
    expect(page.locator("#msg")).to_contain_text(f"核查通过 {code}")
    expect(page.locator(f"#checks li[data-tracking-code={code}]")).to_have_count(0)
    with pytest.raises(StopIteration):
        next(gen)  # closes the context: nothing reached outside, no script or CSP errors
    with live_server.store.transaction() as session:
        stored = session.scalar(select(Case).where(Case.tracking_code == code))
        assert stored is not None and stored.state == "checked"
        last = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == stored.id).order_by(CaseEvent.id.desc())
        ).first()
        assert last is not None and (last.action, last.actor) == ("check_pass", "inspector")
        purposes = session.scalars(
            select(CasePhoto.purpose).where(CasePhoto.case_id == stored.id).order_by(CasePhoto.id)
        ).all()
        assert purposes == ["report", "after", "check"]
        photos = session.scalars(
            select(CasePhoto.event_id).where(CasePhoto.case_id == stored.id, CasePhoto.event_id == last.id)
        )
        assert len(list(photos)) == 1


# The computed font size of every visible text node on the page, footnotes (.footnote) excepted.
VISIBLE_TEXT_SIZES = """() => {
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const text = node.textContent.trim();
        const parent = node.parentElement;
        if (!text || !parent || parent.closest('.footnote, script, style')) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const box = range.getBoundingClientRect();
        const style = getComputedStyle(parent);
        const onScreen = box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
            && box.top < innerHeight && box.left < innerWidth;
        if (!onScreen || style.visibility === 'hidden' || Number(style.opacity) === 0) continue;
        found.push({text: text.slice(0, 40), px: parseFloat(style.fontSize),
                    where: parent.className || parent.tagName});
    }
    return found;
}"""


def test_the_screen_reads_from_five_metres_at_1920_by_1080(
    live_server: LiveServer, screen: Offline, artifacts: Path
) -> None:
    """No text under 24 px but footnotes, in both languages, with a new case and a notice shown."""
    with api(live_server, "inspector") as inspector:
        canal = gpd.read_file(REPO / "data" / "chibi" / "layers.geojson").pipe(
            lambda f: f.loc[f.name == "北渠", "geometry"].iloc[0]
        )
        mid = canal.interpolate(0.6, normalized=True)
        new = inspector.post(
            "/api/v1/cases", json={"category": "E0102", "description": "渠边垃圾", "lon": mid.x, "lat": mid.y}
        ).json()
    page = screen.page()
    page.goto(f"{live_server.url}/command-center?key={live_server.screen_key}")
    assert page.viewport_size == {"width": 1920, "height": 1080}
    for lang in ("zh", "en"):
        page.goto(f"{live_server.url}/command-center?lang={lang}&month=2026-09")
        page.wait_for_function(
            "window.gridcaseScreen && window.gridcaseScreen.polls >= 1"
            " && window.gridcaseScreen.gridsLoaded && document.querySelectorAll('#units tr').length > 1"
            " && document.querySelector('#latest li.case')"
        )
        # The new case is highlighted on the map and in the list for its first minute.
        code = new["tracking_code"]
        expect(page.locator(f"path.case-{code}.case-new")).to_have_count(1)
        expect(page.locator(f"#latest li.case-new[data-tracking-code={code}]")).to_have_count(1)
        until = page.evaluate(f"window.gridcaseScreen.freshUntil.get('{code}')")
        reported = page.evaluate(f"Date.parse('{new['reported_at']}')")
        assert until - reported == 60_000
        # A notice as the calendar warning would show it, in the slot left for it.
        page.evaluate(
            "(() => { const p = document.createElement('p'); p.className = 'banner';"
            " p.textContent = '工作日历将于 2026-12-31 到期';"
            " document.getElementById('notices').append(p); })()"
        )
        # No map label covers another (the ones that would are hidden until the zoom leaves room).
        boxes = page.evaluate("""[...document.querySelectorAll('#map .map-label:not(.label-hidden) > div')]
            .map(n => { const b = n.getBoundingClientRect();
                        return [n.textContent, b.left, b.top, b.right, b.bottom]; })""")
        assert len(boxes) >= 27
        covered = [
            (a[0], b[0])
            for i, a in enumerate(boxes)
            for b in boxes[i + 1 :]
            if a[1] < b[3] - 1 and b[1] < a[3] - 1 and a[2] < b[4] - 1 and b[2] < a[4] - 1
        ]
        assert covered == []
        sizes = page.evaluate(VISIBLE_TEXT_SIZES)
        page.screenshot(path=str(artifacts / f"command-center-5m-{lang}.png"))
        assert len(sizes) > 100, sizes[:5]
        small = [s for s in sizes if s["px"] < 24]
        assert small == [], small[:10]
        assert min(s["px"] for s in sizes) >= 24
        # Nothing spills past the screen's edges: the page does not scroll.
        assert page.evaluate("document.documentElement.scrollHeight <= innerHeight + 1")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1")
