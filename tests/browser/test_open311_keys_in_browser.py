"""Open311 API keys on the admin desk in a real Chromium (network closed, CSP enforced): an
administrator makes a key for a FixMyStreet installation, sees it once, the key files a request
through /open311/v2, the page never shows it again, the key is revoked and refused, and both
changes are in the admin log. Screenshots in test-artifacts/admin-open311-*.png."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from geo.store.models import AdminLog
from tests.browser.conftest import LiveServer
from tests.browser.test_desks_in_browser import SERVER, Desk, _server, desk

__all__ = ["_server", "desk"]  # the fixtures this module uses from the desks' tests
CANAL = (113.9002, 29.7250)  # by the North Canal: the water bureau's for E0106


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"admin-open311-{name}.png"), full_page=True)


def post_request(key: str, description: str) -> httpx.Response:
    """What a FixMyStreet installation sends: a form-encoded POST to requests.xml."""
    return httpx.post(
        f"{SERVER['url']}/open311/v2/requests.xml",
        data={
            "api_key": key,
            "service_code": "E0106",
            "lat": str(CANAL[1]),
            "long": str(CANAL[0]),
            "description": description,
        },
    )


def test_an_administrator_makes_a_key_sees_it_once_and_revokes_it(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    boss = desk("admin")
    boss.goto(f"{SERVER['url']}/desk/admin")
    boss.click("#admin-tabs >> text=Open311 密钥")
    expect(boss.locator("#open311 h2")).to_contain_text("Open311 密钥")
    expect(boss.locator("#open311-endpoint")).to_contain_text("/open311/v2/discovery.xml")

    boss.fill("#new-open311-key input[name=name]", "fixmystreet-chibi")
    boss.click("#new-open311-key button[type=submit]")
    expect(boss.locator("#done")).to_contain_text("创建 Open311 密钥")
    secret = boss.locator("#new-key-value").inner_text().strip()
    assert secret.startswith("o311_") and len(secret) > 30
    row = boss.locator("#open311-keys tr", has_text="fixmystreet-chibi")
    expect(row).to_have_attribute("data-live", "yes")
    expect(row).to_contain_text(secret[:12])
    shot(boss, artifacts, "created-zh")

    filed = post_request(secret, "浏览器测试：FixMyStreet 提交")
    assert filed.status_code == 200, filed.text
    assert "<service_request_id>" in filed.text

    boss.goto(f"{SERVER['url']}/desk/admin/open311")
    expect(boss.locator("#new-key")).to_have_count(0)
    assert secret not in boss.content()  # shown once, never again

    row.locator("button.disable").click()
    expect(boss.locator("#done")).to_contain_text("撤销 Open311 密钥")
    revoked_row = boss.locator("#open311-keys tr", has_text="fixmystreet-chibi")
    expect(revoked_row).to_have_attribute("data-live", "no")
    expect(boss.locator("#admin-log")).to_contain_text("撤销 Open311 密钥")
    expect(boss.locator("#admin-log")).to_contain_text("创建 Open311 密钥")
    shot(boss, artifacts, "revoked-zh")
    refused = post_request(secret, "浏览器测试：撤销后")
    assert refused.status_code == 403 and "<errors>" in refused.text

    # A refusal is a page that names the field.
    boss.fill("#new-open311-key input[name=name]", " ")
    boss.evaluate("document.querySelector('#new-open311-key input[name=name]').removeAttribute('required')")
    boss.click("#new-open311-key button[type=submit]")
    expect(boss.locator("#error")).to_have_attribute("data-kind", "err_422")
    expect(boss.locator("#error")).to_contain_text("使用方名称")
    shot(boss, artifacts, "refusal-zh")

    boss.goto(f"{SERVER['url']}/desk/admin/open311?lang=en")
    expect(boss.locator("#open311 h2")).to_contain_text("Open311 keys")
    shot(boss, artifacts, "keys-en")
    with live_server.store.transaction() as session:
        logged = session.scalars(
            select(AdminLog.action).where(AdminLog.subject == "fixmystreet-chibi").order_by(AdminLog.id)
        ).all()
    assert logged == ["create_open311_key", "revoke_open311_key"]
