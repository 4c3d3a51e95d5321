"""The admin desk and the calendar warning in a real Chromium (network closed, CSP enforced): an
administrator disables an account (its open page session ends), moves an inspector's grids, adds a
unit with its grid, changes a time limit, and reads every change in the log; a refusal names the
field; a deadline past the calendar shows as provisional. Screenshots in test-artifacts/admin-*.png."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from geo import admin
from geo.accounts import add_account
from geo.demo import DEMO_PASSWORD
from geo.store.models import Account, AdminLog, Category
from tests.browser.conftest import LiveServer
from tests.browser.test_desks_in_browser import CANAL, SERVER, Desk, _server, desk, open_case
from tests.browser.test_pages_in_browser import api

__all__ = ["_server", "desk"]  # the fixtures this module uses from the desks' tests

GRID_A, GRID_B = "421281001007003", "421281001007004"
SLOW = "E0602"  # illegal fish farming (WATER, 5 working days): made 30 working days for a while


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"admin-{name}.png"), full_page=True)


def _accounts(live_server: LiveServer) -> None:
    with live_server.store.transaction() as session:
        for name, role, extra in [
            ("adm_clerk", "operator", {}),
            ("adm_walker", "inspector", {"grid_codes": [GRID_A]}),
        ]:
            if session.scalar(select(Account.id).where(Account.username == name)) is None:
                add_account(session, name, DEMO_PASSWORD, role, **extra)


def _edit(page: Page, row: str) -> None:
    """Open the change forms of a row (a <details>)."""
    page.click(f"{row} details > summary")


def test_an_administrator_changes_accounts_units_and_limits_and_reads_the_log(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    _accounts(live_server)
    clerk = desk("adm_clerk")
    expect(clerk.locator("h1").first).to_be_visible()
    boss = desk("admin")
    boss.goto(f"{SERVER['url']}/desk/admin")
    expect(boss.locator("h1")).to_have_text("系统管理")
    expect(boss.locator("#account-adm_clerk")).to_have_attribute("data-active", "yes")
    shot(boss, artifacts, "accounts-zh")

    # Disable the clerk: their open page session ends at once.
    _edit(boss, "#account-adm_clerk")
    boss.click("#account-adm_clerk button.disable")
    expect(boss.locator("#done")).to_contain_text("停用账号")
    expect(boss.locator("#account-adm_clerk")).to_have_attribute("data-active", "no")
    clerk.goto(f"{SERVER['url']}/desk/intake")
    expect(clerk.locator("h1")).to_have_text("登录工作台")

    # Move the inspector to another grid.
    _edit(boss, "#account-adm_walker")
    boss.fill("#account-adm_walker .change-account textarea[name=grids]", f"{GRID_B}")
    boss.click("#account-adm_walker .change-account button[type=submit]")
    expect(boss.locator("#account-adm_walker")).to_contain_text(GRID_B)

    # A refusal is a page that names the field.
    _edit(boss, "#account-adm_walker")
    boss.fill("#account-adm_walker .reset-password input[name=new_password]", "short")
    boss.click("#account-adm_walker .reset-password button[type=submit]")
    expect(boss.locator("#error")).to_have_attribute("data-kind", "err_422")
    expect(boss.locator("#error")).to_contain_text("密码：至少 8 个字符")
    shot(boss, artifacts, "refusal-password")

    # A new unit responsible for a grid.
    boss.goto(f"{SERVER['url']}/desk/admin/units")
    boss.click("#new-unit > summary")
    boss.fill("#new-unit input[name=code]", "ADMB1")
    boss.fill("#new-unit input[name=name]", "北渠物业")
    boss.select_option("#new-unit select[name=kind]", "property_company")
    boss.fill("#new-unit textarea[name=grids]", GRID_A)
    boss.click("#new-unit button[type=submit]")
    expect(boss.locator("#unit-ADMB1")).to_contain_text(GRID_A)
    shot(boss, artifacts, "units")

    # A category's time limit, changed and changed back.
    with live_server.store.transaction() as session:
        original = float(session.get(Category, "E0604").time_limit)
    boss.goto(f"{SERVER['url']}/desk/admin/categories")
    row = "#category-E0604"
    boss.fill(f"{row} input[name=time_limit]", "3")
    boss.click(f"{row} button[type=submit]")
    expect(boss.locator("#done")).to_contain_text("修改类别时限")
    expect(boss.locator(f"{row} input[name=time_limit]")).to_have_value("3")
    boss.fill(f"{row} input[name=time_limit]", f"{original:g}")
    boss.click(f"{row} button[type=submit]")
    expect(boss.locator(f"{row} input[name=time_limit]")).to_have_value(f"{original:g}")

    # Every change is in the log, on the page and in the table.
    log = boss.locator("#admin-log tbody")
    for what in ["停用账号", "修改账号", "保存单位与包保网格", "修改类别时限"]:
        expect(log).to_contain_text(what)
    expect(log).to_contain_text(f"grids={GRID_B}")
    expect(log).to_contain_text("time_limit=3.0")
    shot(boss, artifacts, "categories-and-log")
    with live_server.store.transaction() as session:
        entries = session.scalars(
            select(AdminLog).where(AdminLog.actor == "admin", AdminLog.via == "web")
        ).all()
        subjects = {(e.action, e.subject) for e in entries}
    assert {
        ("disable_account", "adm_clerk"),
        ("change_account", "adm_walker"),
        ("save_unit", "ADMB1"),
        ("change_category", "E0604"),
    } <= subjects
    assert [e.action for e in entries if e.subject == "adm_walker"] == [
        "change_account"
    ]  # the refusal is not

    boss.goto(f"{SERVER['url']}/desk/admin/accounts?lang=en")
    expect(boss.locator("h1")).to_have_text("Administration")
    shot(boss, artifacts, "accounts-en")
    # Leave the shared demo as other tests expect it.
    with live_server.store.transaction() as session:
        admin.save_unit(
            session, admin.Admin("test", "cli"), "ADMB1", name="北渠物业", kind="property_company", grids=[]
        )


def test_the_calendar_warning_and_a_provisional_deadline(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    """The seeded calendar ends 2026-12-31; this run is within 60 days of it (the clock says 2026-12),
    so the duty chief and the big screen say so; a 30-working-day case dispatched now is provisional."""
    chief = desk("operator")
    chief.goto(f"{SERVER['url']}/desk/chief")
    expect(chief.locator("#calendar-warning")).to_contain_text("工作日历将于 2026-12-31 到期")
    expect(chief.locator("#calendar-warning")).to_contain_text("2027")
    shot(chief, artifacts, "chief-calendar-warning")

    screen = chief.context.new_page()
    screen.goto(f"{SERVER['url']}/command-center?key={live_server.screen_key}")
    expect(screen.locator("#calendar-warning")).to_contain_text("gridcase calendar import")
    screen.screenshot(path=str(artifacts / "admin-screen-calendar-warning.png"))
    screen.close()

    by = admin.Admin("test", "cli")
    with live_server.store.transaction() as session:
        before = session.get(Category, SLOW)
        limit, unit, department = float(before.time_limit), before.time_limit_unit, before.department_code
        admin.change_category(
            session, by, SLOW, time_limit=30, time_limit_unit="working_days", department_code="WATER"
        )
    try:
        mid = CANAL.interpolate(0.42, normalized=True)
        with api(live_server, "inspector") as inspector:
            report = {"category": SLOW, "description": "渠里有人拉网养鱼", "lon": mid.x, "lat": mid.y}
            answer = inspector.post("/api/v1/cases", json=report)
            assert answer.status_code == 201, answer.text
            code = answer.json()["tracking_code"]
        with api(live_server, "operator") as client:
            for action in ("verify", "file", "dispatch"):
                answer = client.post(f"/api/v1/cases/{code}/actions/{action}", json={})
                assert answer.status_code == 200, answer.text
            view = client.get(f"/api/v1/cases/{code}").json()
    finally:
        with live_server.store.transaction() as session:
            admin.change_category(
                session, by, SLOW, time_limit=limit, time_limit_unit=unit, department_code=department
            )
    # Thirty working days from December 2026 end in 2027, whose holidays are not loaded.
    assert view["deadline_at"] > "2027-01-01" and view["deadline_provisional"] is True
    open_case(chief, code)
    expect(chief.locator("#deadline-provisional")).to_contain_text("暂定")
    shot(chief, artifacts, "case-provisional")
