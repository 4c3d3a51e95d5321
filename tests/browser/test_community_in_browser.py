"""Community governance in a real Chromium with the network closed and the CSP enforced: a compound's
round table prepared from its open problems, an item claimed and closed off with a photo, another
escalated to the big round table and claimed there by a co-building unit, a small wish claimed by a
registered party member, and the strip on the big screen. Screenshots in test-artifacts/community-*.png."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select, text

from geo.accounts import actor_of
from geo.cases.intake import ReportIn
from geo.cases.service import CaseContext, submit_report
from geo.routing import Router
from geo.storage import LocalBlobStore
from geo.store.models import Account
from tests.browser import test_desks_in_browser as desks
from tests.browser.conftest import LiveServer, Offline
from tests.conftest import AFTER_PHOTO

COMPOUND = "421281001001C001"  # 教师家园, the demo secretary's compound
Desk = desks.Desk
desk = desks.desk  # the fixture: a page signed in as someone, in a context of its own
_server = desks._server  # autouse: where the desks' sign-in goes


def _two_reports_in_the_compound(server: LiveServer, tmp_path: Path) -> None:
    """An inspector reports the same problem twice inside the compound: a repeated problem."""
    router = Router(server.store.sessions)
    try:
        with server.store.transaction() as session:
            inspector = actor_of(session.scalar(select(Account).where(Account.username == "inspector")))
            points = session.execute(
                text(
                    "SELECT ST_X(d.geom), ST_Y(d.geom) FROM area a, "
                    "LATERAL ST_Dump(ST_GeneratePoints(a.geom, 2, 3)) d "
                    "WHERE a.code = :code AND a.level = 'compound' ORDER BY d.path"
                ),
                {"code": COMPOUND},
            ).all()
            context = CaseContext(router=router, blobs=LocalBlobStore(tmp_path))
            now = datetime.now(UTC)
            for k, (lon, lat) in enumerate(points):
                report = ReportIn(category="C0302", description="垃圾箱破损", lon=lon, lat=lat)
                submit_report(session, context, inspector, report, now=now + timedelta(milliseconds=k))
    finally:
        router.close()


def _decide(page: Page, item, outcome: str, **choices: str) -> None:
    item.locator("summary").click()
    form = item.locator("form.cg-decide")
    form.locator("select[name=outcome]").select_option(outcome)
    for name, value in choices.items():
        field = form.locator(f"[name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(label=value) if name in ("unit", "member") else field.select_option(value)
        else:
            field.fill(value)
    form.locator("button[type=submit]").click()
    expect(page.locator("#done")).to_be_visible()


def test_a_round_table_from_open_problems_to_the_big_round_table(
    live_server: LiveServer, desk: Desk, tmp_path: Path, artifacts: Path
) -> None:
    _two_reports_in_the_compound(live_server, tmp_path)
    tomorrow = (datetime.now(UTC) + timedelta(hours=8)).date() + timedelta(days=1)

    # The secretary prepares the compound's round table: the agenda is proposed from its open problems.
    secretary = desk("branch_secretary")
    expect(secretary.locator("h1")).to_contain_text("社区治理")
    expect(secretary.locator("#cg-where")).to_have_text("教师家园")
    secretary.screenshot(path=str(artifacts / "community-home.png"), full_page=True)
    secretary.fill("#prepare-form input[name=held_on]", tomorrow.isoformat())
    secretary.fill("#prepare-form input[name=chair]", "教师家园党支部书记")
    secretary.click("#prepare-submit")
    expect(secretary.locator("#meeting-title")).to_have_text("教师家园 · 圆桌会")
    repeated = secretary.locator("li.cg-agenda-item[data-source=repeated_cases]").filter(has_text="垃圾箱")
    expect(repeated).to_have_count(1)
    expect(repeated).to_contain_text("2 件未办结案件")
    expect(secretary.locator("li.cg-agenda-item").first).to_have_attribute(
        "data-source", "carried"
    )  # September's
    secretary.screenshot(path=str(artifacts / "community-agenda.png"), full_page=True)

    # The repeated problem is claimed by the branch, then closed off with a photo.
    _decide(
        secretary, repeated, "claimed", claimer="branch", due_on=(tomorrow + timedelta(days=14)).isoformat()
    )
    expect(repeated).to_contain_text("认领：教师家园党支部")
    repeated.get_by_role("link", name="需求清单").click()
    expect(secretary.locator("#item-claimer")).to_contain_text("教师家园党支部")
    secretary.set_input_files("#close-photo", str(AFTER_PHOTO))
    secretary.fill("#close-note", "垃圾箱已更换")
    secretary.click("#close-submit")
    expect(secretary.locator("#done")).to_have_text("已销号。")
    expect(secretary.locator("#item-evidence img")).to_be_visible()
    assert secretary.locator("#item-evidence img").evaluate("img => img.naturalWidth") > 0
    secretary.screenshot(path=str(artifacts / "community-closed-off.png"), full_page=True)

    # Another item goes to the community's big round table.
    secretary.go_back()
    secretary.go_back()
    secretary.reload()
    demand = (
        secretary.locator("li.cg-agenda-item:not(.decided)")
        .filter(has=secretary.locator("a", has_text="需求清单"))
        .first
    )
    title = demand.locator(".cg-agenda-title").inner_text()
    _decide(secretary, demand, "escalated", note="小区解决不了")
    escalated = secretary.locator("li.cg-agenda-item").filter(has_text=title).first
    expect(escalated).to_contain_text("提交大圆桌会")

    # The community's staff hold the big round table; a co-building unit claims the item there.
    staff = desk("community_staff")
    staff.goto(staff.url.split("/desk")[0] + "/desk/community")
    staff.select_option("#prepare-area", label="大圆桌会（金鸡山社区）")
    staff.fill("#prepare-form input[name=held_on]", (tomorrow + timedelta(days=1)).isoformat())
    staff.fill("#prepare-form input[name=chair]", "包联市领导")
    staff.click("#prepare-submit")
    expect(staff.locator("#meeting-title")).to_have_text("金鸡山社区 · 大圆桌会")
    item = staff.locator("li.cg-agenda-item[data-source=escalated]").filter(has_text=title).first
    unit = (item.locator("select[name=unit] option").nth(1).text_content() or "").strip()
    _decide(
        staff, item, "claimed", claimer="unit", unit=unit, due_on=(tomorrow + timedelta(days=30)).isoformat()
    )
    expect(item).to_contain_text(f"认领：{unit}")
    staff.screenshot(path=str(artifacts / "community-big-round-table.png"), full_page=True)


def test_a_small_wish_claimed_by_a_registered_party_member(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    staff = desk("community_staff")
    base = staff.url.split("/desk")[0]
    staff.goto(f"{base}/desk/community/members?compound={COMPOUND}")
    expect(staff.locator("#three-parties")).to_contain_text("教师家园党支部")
    staff.fill("#register-form input[name=name]", "周晓梅")
    staff.fill("#register-form input[name=workplace]", "市实验小学")
    staff.check("#register-form input[value=youth]")
    staff.click("#register-submit")
    expect(staff.locator("#members")).to_contain_text("周晓梅")
    staff.screenshot(path=str(artifacts / "community-members.png"), full_page=True)

    secretary = desk("branch_secretary")
    secretary.goto(f"{base}/desk/community/items?list=wish")
    secretary.locator("#cg-new summary").click()
    secretary.fill("#new-item-form input[name=title]", "孩子想要一套课外书（浏览器测试）")
    secretary.fill("#new-item-form input[name=raised_by]", "3栋住户")
    secretary.select_option("#new-item-form select[name=kind]", "children")
    secretary.click("#new-item-submit")
    expect(secretary.locator("#item-title")).to_have_text("孩子想要一套课外书（浏览器测试）")
    secretary.select_option("#claim-kind", "member")
    secretary.select_option("#claim-member", label="周晓梅（市实验小学）")
    secretary.fill("#claim-form input[name=due_on]", (date.today() + timedelta(days=10)).isoformat())
    secretary.click("#claim-submit")
    expect(secretary.locator("#done")).to_have_text("已认领。")
    expect(secretary.locator("#item-claimer")).to_have_text("周晓梅（报到党员）")
    secretary.screenshot(path=str(artifacts / "community-wish-claimed.png"), full_page=True)
    # A secretary on a phone: the same page in one column, nothing wider than the screen.
    secretary.set_viewport_size({"width": 390, "height": 844})
    secretary.reload()
    assert secretary.evaluate("document.documentElement.scrollWidth <= innerWidth + 1")
    secretary.screenshot(path=str(artifacts / "community-wish-phone.png"), full_page=True)
    secretary.set_viewport_size({"width": 1440, "height": 1000})
    # Found again by searching the list.
    secretary.goto(f"{base}/desk/community/items?list=wish&state=claimed&q=课外书（浏览器")
    expect(secretary.locator("#cg-items tbody tr")).to_have_count(1)
    expect(secretary.locator("#cg-items")).to_contain_text("周晓梅")
    secretary.goto(f"{base}/desk/community/items?list=wish&lang=en")
    expect(secretary.locator("h1")).to_contain_text("Small wishes")


def test_the_big_screen_shows_the_governance_strip(
    live_server: LiveServer, screen: Offline, artifacts: Path
) -> None:
    page = screen.page()
    page.goto(f"{live_server.url}/command-center?key={live_server.screen_key}&month=2026-09")
    strip = page.locator("#community-governance")
    expect(strip.locator("[data-cg=meetings]")).to_have_text("383 / 383")
    expect(strip.locator("[data-cg=raised]")).not_to_have_text("–")
    claimed = int(strip.locator("[data-cg=claimed]").inner_text().replace(",", ""))
    assert claimed >= 1512 + 1608
    page.screenshot(path=str(artifacts / "community-screen.png"))
