"""The reception room and the public commitments in a real Chromium, offline, CSP enforced.

A walk-in request left unanswered shows as overdue on the duty chief's desk and on the big screen;
another is answered and leaves the open list; a commitment is published, solved with a photo and
evaluated, and the public board (phone size) shows it without names. Screenshots in
test-artifacts/reception-*.png and commitments-*.png.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, LiveServer, Offline, _offline
from tests.browser.test_desks_in_browser import Desk, _server, desk  # noqa: F401  (the fixtures)
from tests.browser.test_pages_in_browser import api
from tests.conftest import FIXTURES

CHINA = ZoneInfo("Asia/Shanghai")
COMMUNITY = "421281002004"
QUARTER = "2026Q4"


def _overdue_on_screen(server: LiveServer) -> int:
    feed = httpx.get(f"{server.url}/api/v1/reception/overdue", headers={"X-Screen-Key": server.screen_key})
    assert feed.status_code == 200, feed.text
    return feed.json()["overdue"]


def test_a_request_left_unanswered_is_overdue_on_the_chief_desk_and_the_screen(
    live_server: LiveServer,
    desk: Desk,  # noqa: F811  (the fixture)
    screen: Offline,
    artifacts: Path,
):
    before = _overdue_on_screen(live_server)
    staff = desk("community_staff")
    staff.click("#nav-reception")
    expect(staff.locator("h1")).to_have_text("会客室")
    # A visit written down late: a question from four days ago, never answered.
    came = (datetime.now(CHINA) - timedelta(days=4)).replace(second=0, microsecond=0)
    staff.select_option("#community", COMMUNITY)
    # The community's compounds come by htmx (a busy machine may take a while).
    expect(staff.locator("#compound option")).not_to_have_count(1, timeout=20_000)
    staff.select_option("#compound", index=1)
    staff.select_option("#kind", "consultation")
    staff.fill("#asked", "咨询高龄津贴怎么申领")
    staff.fill("#visitor", "周女士")
    staff.fill("#contact", "13700001111")
    staff.fill("#received-at", came.strftime("%Y-%m-%dT%H:%M"))
    staff.click("#register")
    expect(staff.locator("#registered")).to_contain_text("答复期限")
    expect(staff.locator("#request-overdue")).to_be_visible()
    late_ref = staff.locator("#request h1").inner_text().split()[0]
    staff.screenshot(path=str(artifacts / "reception-request.png"), full_page=True)
    # Another, answered at once: it leaves the open list.
    staff.click("text=返回登记簿")
    staff.select_option("#community", COMMUNITY)
    staff.select_option("#kind", "help")
    staff.fill("#asked", "家中水管爆裂求助")
    staff.click("#register")
    expect(staff.locator("#registered")).to_be_visible()
    answered_ref = staff.locator("#request h1").inner_text().split()[0]
    staff.fill("#answer", "已联系物业上门维修")
    staff.click("#do-answer")
    expect(staff.locator("#register-list")).to_be_visible()
    open_list = staff.locator("#register-list tbody")
    expect(open_list.locator(f"tr[data-reference='{late_ref}']")).to_have_count(1)
    expect(open_list.locator(f"tr[data-reference='{answered_ref}']")).to_have_count(0)
    staff.click("#list-answered")
    expect(staff.locator(f"#register-list tr[data-reference='{answered_ref}']")).to_contain_text("按期答复")
    staff.click("#list-overdue")
    expect(staff.locator(f"#register-list tr[data-reference='{late_ref}']")).to_contain_text("超期")
    staff.screenshot(path=str(artifacts / "reception-register.png"), full_page=True)
    # The duty chief's desk: the card lists it, without the visitor's name or number.
    chief = desk("operator")
    chief.goto(f"{live_server.url}/desk/chief")
    card = chief.locator("#reception-overdue")
    expect(card.locator(f"tr[data-reference='{late_ref}']")).to_contain_text("咨询高龄津贴")
    expect(card.locator(f"tr[data-reference='{answered_ref}']")).to_have_count(0)
    expect(chief.locator("#reception-card")).not_to_contain_text("周女士")
    expect(chief.locator("#reception-card")).not_to_contain_text("13700001111")
    chief.locator("#reception-card").scroll_into_view_if_needed()
    chief.screenshot(path=str(artifacts / "reception-chief-desk.png"), full_page=True)
    # The big screen's block counts it (the answered one is not).
    assert _overdue_on_screen(live_server) == before + 1
    page = screen.page()
    page.goto(f"{live_server.url}/command-center?key={live_server.screen_key}")
    expect(page.locator("#reception-overdue")).to_have_text(str(before + 1))
    expect(page.locator("#reception-items li")).to_have_count(min(2, before + 1))
    expect(page.locator("#reception-block")).not_to_contain_text("周女士")
    # On the screen, not clipped away by the panels around it (it was, under the units' table).
    expect(page.locator("#reception-block")).to_be_in_viewport(ratio=1)
    page.screenshot(path=str(artifacts / "reception-screen.png"))
    # Text on the screen stays readable from 5 m (24 px at least).
    size = page.locator("#reception-items li").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 24


def test_a_commitment_is_published_solved_and_evaluated_and_the_board_shows_it_without_names(
    live_server: LiveServer,
    desk: Desk,  # noqa: F811  (the fixture)
    browser,
    artifacts: Path,
):
    staff = desk("community_staff")
    staff.click("#nav-commitments")
    staff.select_option("#community", COMMUNITY)
    staff.select_option("#quarter", QUARTER)
    staff.click("#choose button[type=submit]")
    collected = int(staff.locator("#n-collected").inner_text())
    staff.fill("#problem-text", "东门路灯三盏不亮")
    staff.click("#add-problem")
    expect(staff.locator("#n-collected")).to_have_text(str(collected + 1))
    staff.locator("#waiting label", has_text="东门路灯三盏不亮").locator("input").check()
    staff.select_option("#party-kind", "property_company")
    staff.fill("#party-name", "金盾物业服务中心")
    staff.fill("#promise", "两周内更换东门路灯")
    staff.fill("#due-on", "2026-12-20")
    staff.click("#publish")
    row = staff.locator("#commitments tr", has_text="两周内更换东门路灯")
    expect(row).to_contain_text("正在办理")
    row.locator("summary", has_text="办结").click()
    row.locator(".solve-form input[type=file]").set_input_files(str(FIXTURES / "photos" / "canal_after.jpg"))
    row.locator(".solve-form button").click()
    row = staff.locator("#commitments tr", has_text="两周内更换东门路灯")
    expect(row).to_contain_text("已解决")
    row.locator("summary", has_text="代表评议").click()
    row.locator(".evaluate-form select").select_option("satisfied")
    row.locator(".evaluate-form input[name=comment]").fill("晚上亮堂了")
    row.locator(".evaluate-form input[name=representative]").fill("居民代表钱大伯")
    row.locator(".evaluate-form button").click()
    expect(staff.locator("#commitments tr", has_text="两周内更换东门路灯")).to_contain_text("满意 1")
    staff.screenshot(path=str(artifacts / "commitments-desk.png"), full_page=True)
    # The public board on a phone: no sign-in, the counts, the item's state in words, the photo.
    gen = _offline(browser, PHONE, enforce_csp=True)
    phone = next(gen)
    board = phone.page()
    board.goto(f"{live_server.url}/")
    board.click("#go-boards")
    board.click(f"a[href^='/community/{COMMUNITY}/board']")
    board.select_option("select[name=quarter]", QUARTER)
    board.click("#quarter-form button")
    item = board.locator("#items li", has_text="两周内更换东门路灯")
    expect(item).to_contain_text("已解决")
    expect(item).to_contain_text("东门路灯三盏不亮")
    expect(item).to_contain_text("满意 1")
    expect(item.locator("img.evidence")).to_be_visible()
    assert item.locator("img.evidence").evaluate("i => i.naturalWidth") > 0
    text = board.locator("main").inner_text()
    for private in ("钱大伯", "community_staff", "晚上亮堂了"):
        assert private not in text
    # The counts agree with the API's board.
    figures = httpx.get(
        f"{live_server.url}/api/v1/commitments/board/{COMMUNITY}", params={"quarter": QUARTER}
    ).json()
    for key in ("collected", "committed", "solved"):
        expect(board.locator(f"#{key}")).to_have_text(str(figures[key]))
    width = board.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["viewport"]["width"], "the board scrolls sideways on a phone"
    board.screenshot(path=str(artifacts / "commitments-board-phone.png"), full_page=True)
    board.goto(f"{live_server.url}/community/421281001001/board?lang=en")
    expect(board.locator("#collected")).to_have_text("119")
    expect(board.locator("#committed")).to_have_text("98")
    expect(board.locator("#solved")).to_have_text("93")
    board.screenshot(path=str(artifacts / "commitments-board-published-en.png"))
    with_planner = api(live_server, "planner")
    stats = with_planner.get(
        "/api/v1/stats/commitments", params={"quarter": "2026Q3", "level": "city"}
    ).json()
    assert (stats[0]["collected"], stats[0]["committed"], stats[0]["solved"]) == (119, 98, 93)
    with pytest.raises(StopIteration):
        next(gen)  # closes the phone's context: nothing reached outside, no script errors
    assert not re.search(r"\d{11}", text)  # no phone number anywhere on the board
