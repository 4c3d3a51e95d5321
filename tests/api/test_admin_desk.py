"""The admin desk (/desk/admin) over HTTP: only administrators, every change in the admin log with
who, when, before and after; a disabled account's token and page session refused at once; every
4xx a page that names the field."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from geo.accounts import add_account
from geo.demo import DEMO_PASSWORD, load_demo
from geo.store.models import Account, AdminLog, ApiToken, Category, GridResponsibility, WebSession
from tests.conftest import fresh_store

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
GRID = "421281001007003"


@pytest.fixture(scope="module")
def admin_store(settings):
    """Chibi reference data and the demo accounts in a database of this module's own (it commits)."""
    store = fresh_store(settings, "admin")
    load_demo(store, cases=False)
    with store.transaction() as session:
        add_account(session, "clerk_a", DEMO_PASSWORD, "operator")
        add_account(session, "walker_b", DEMO_PASSWORD, "inspector", grid_codes=[GRID])
    yield store
    store.dispose()


@pytest.fixture(scope="module")
def app(settings, admin_store, tmp_path_factory):
    """The app, started once for the module: every client below shares its lifespan."""
    app = create_app(
        settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("admin")}), store=admin_store
    )
    with TestClient(app):
        yield app


def signed_in(app, username: str, password: str = DEMO_PASSWORD) -> tuple[TestClient, str]:
    """A cookie-keeping client signed in to the desks, and its CSRF token."""
    client = TestClient(app, follow_redirects=False)
    form = client.get("/desk/sign-in")
    token = CSRF.search(form.text).group(1)
    answer = client.post(
        "/desk/sign-in",
        data={"username": username, "password": password, "csrf_token": token, "next": "/desk"},
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/desk", follow_redirects=True)
    return client, CSRF.search(page.text).group(1)


def bearer(app, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    client = TestClient(app)
    answer = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def log_of(store, subject: str) -> list[AdminLog]:
    with store.transaction() as session:
        return list(
            session.scalars(select(AdminLog).where(AdminLog.subject == subject).order_by(AdminLog.id))
        )


def test_only_administrators_reach_the_admin_desk(app):
    client, csrf = signed_in(app, "operator")
    refused = client.get("/desk/admin/accounts")
    assert refused.status_code == 403 and 'data-kind="err_403"' in refused.text
    posted = client.post("/desk/admin/accounts/walker_b/disable", data={"csrf_token": csrf})
    assert posted.status_code == 403
    admin, _ = signed_in(app, "admin")
    page = admin.get("/desk/admin/accounts")
    assert page.status_code == 200 and "系统管理" in page.text and 'id="account-walker_b"' in page.text
    assert "Administration" in admin.get("/desk/admin/units?lang=en").text


def test_a_disabled_account_loses_its_token_and_page_session_at_once(app, admin_store):
    headers = bearer(app, "clerk_a")
    clerk, _ = signed_in(app, "clerk_a")
    api = TestClient(app)
    assert api.get("/api/v1/cases", headers=headers).status_code == 200
    assert clerk.get("/desk/intake").status_code == 200
    admin, csrf = signed_in(app, "admin")
    done = admin.post("/desk/admin/accounts/clerk_a/disable?lang=zh", data={"csrf_token": csrf})
    assert done.status_code == 303 and "done=disable_account" in done.headers["location"]
    api = TestClient(app)
    assert api.get("/api/v1/cases", headers=headers).status_code == 401
    again = api.post("/api/v1/auth/token", data={"username": "clerk_a", "password": DEMO_PASSWORD})
    assert again.status_code == 401
    gone = clerk.get("/desk/intake")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/desk/sign-in")
    with admin_store.transaction() as session:
        account = session.scalar(select(Account).where(Account.username == "clerk_a"))
        assert account.active is False
        assert (
            session.scalar(
                select(func.count()).select_from(ApiToken).where(ApiToken.account_id == account.id)
            )
            == 0
        )
        sessions = select(func.count()).select_from(WebSession).where(WebSession.account_id == account.id)
        assert session.scalar(sessions) == 0
    (entry,) = [e for e in log_of(admin_store, "clerk_a") if e.action == "disable_account"]
    assert entry.actor == "admin" and entry.via == "web" and entry.at is not None
    assert entry.before["active"] is True and entry.after["active"] is False and entry.after["ended"] == 2

    admin.post("/desk/admin/accounts/clerk_a/enable", data={"csrf_token": csrf})
    headers = bearer(app, "clerk_a")  # signs in again with the same password
    admin.post(
        "/desk/admin/accounts/clerk_a/password", data={"csrf_token": csrf, "new_password": "new-secret-1"}
    )
    api = TestClient(app)
    assert api.get("/api/v1/cases", headers=headers).status_code == 401  # the password change ended it
    bearer(app, "clerk_a", "new-secret-1")
    actions = [e.action for e in log_of(admin_store, "clerk_a")]
    assert actions[-3:] == ["disable_account", "enable_account", "reset_password"]
    assert "new-secret-1" not in str([(e.before, e.after) for e in log_of(admin_store, "clerk_a")])


def test_every_change_is_in_the_admin_log_with_before_and_after(app, admin_store):
    admin, csrf = signed_in(app, "admin")
    with admin_store.transaction() as session:
        category = session.get(Category, "E0102")
        limit, unit, department = (
            float(category.time_limit),
            category.time_limit_unit,
            category.department_code,
        )
    moved = admin.post(
        "/desk/admin/accounts/walker_b/change",
        data={"csrf_token": csrf, "role": "inspector", "unit": "", "grids": f"{GRID} 421281001007004"},
    )
    assert moved.status_code == 303
    saved = admin.post(
        "/desk/admin/units",
        data={
            "csrf_token": csrf,
            "code": "ADM1",
            "name": "测试物业",
            "kind": "property_company",
            "grids": GRID,
        },
    )
    assert saved.status_code == 303
    changed = admin.post(
        "/desk/admin/categories/E0102",
        data={
            "csrf_token": csrf,
            "time_limit": "6",
            "time_limit_unit": "working_hours",
            "department": "CGJ",
        },
    )
    assert changed.status_code == 303
    admin.post(
        "/desk/admin/categories/E0102",
        data={
            "csrf_token": csrf,
            "time_limit": f"{limit:g}",
            "time_limit_unit": unit,
            "department": department,
        },
    )
    page = admin.get("/desk/admin/accounts")
    (account,) = log_of(admin_store, "walker_b")
    assert account.action == "change_account" and account.before["grids"] == [GRID]
    assert account.after["grids"] == [GRID, "421281001007004"]
    (unit_entry,) = log_of(admin_store, "ADM1")
    assert unit_entry.before is None and unit_entry.after == {
        "name": "测试物业",
        "name_en": None,
        "kind": "property_company",
        "grids": [GRID],
    }
    with admin_store.transaction() as session:
        units = session.scalars(
            select(GridResponsibility.unit_code).where(GridResponsibility.grid_code == GRID)
        )
        assert "ADM1" in set(units)
    first, back = log_of(admin_store, "E0102")[-2:]
    assert first.before["time_limit"] == limit and first.after == {
        "name": "暴露垃圾",
        "department": "CGJ",
        "time_limit": 6.0,
        "time_limit_unit": "working_hours",
    }
    assert back.after["time_limit"] == limit and back.after["time_limit_unit"] == unit
    # The admin page shows the log: who, what, before and after.
    assert page.status_code == 200
    assert "修改账号" in page.text and "保存单位与包保网格" in page.text and "修改类别时限" in page.text
    assert "time_limit=6.0" in page.text


def test_refusals_are_pages_that_name_the_field(app, admin_store):
    admin, csrf = signed_in(app, "admin")
    before = [e.id for e in log_of(admin_store, "walker_b")]
    short = admin.post(
        "/desk/admin/accounts/walker_b/password", data={"csrf_token": csrf, "new_password": "x"}
    )
    assert short.status_code == 422 and "密码：至少 8 个字符" in short.text
    grid = admin.post(
        "/desk/admin/accounts/walker_b/change",
        data={"csrf_token": csrf, "role": "inspector", "grids": "999"},
    )
    assert grid.status_code == 422 and "网格：" in grid.text and "999" in grid.text
    limit = admin.post(
        "/desk/admin/categories/E0102",
        data={"csrf_token": csrf, "time_limit": "soon", "time_limit_unit": "working_hours"},
    )
    assert limit.status_code == 422 and "时限：请填写大于 0 的数字" in limit.text
    kind = admin.post(
        "/desk/admin/units?lang=en", data={"csrf_token": csrf, "code": "X", "name": "x", "kind": "?"}
    )
    assert kind.status_code == 422 and "Kind: choose a kind of unit" in kind.text
    nobody = admin.post("/desk/admin/accounts/nobody/disable", data={"csrf_token": csrf})
    assert nobody.status_code == 404
    itself = admin.post("/desk/admin/accounts/admin/disable", data={"csrf_token": csrf})
    assert itself.status_code == 422 and "账号：" in itself.text
    no_csrf = admin.post("/desk/admin/accounts/walker_b/disable")
    assert no_csrf.status_code == 403
    assert [e.id for e in log_of(admin_store, "walker_b")] == before  # nothing refused was logged


def test_removing_the_demo_accounts(app, admin_store):
    admin, csrf = signed_in(app, "admin")
    done = admin.post("/desk/admin/accounts/remove-demo", data={"csrf_token": csrf})
    assert done.status_code == 303
    with admin_store.transaction() as session:
        left = set(session.scalars(select(Account.username)))
    # The signed-in administrator keeps their account; every other demo account is gone.
    assert "admin" in left and not {"inspector", "operator", "dispatcher", "resident", "planner"} & left
    assert {"clerk_a", "walker_b"} <= left
    (entry,) = log_of(admin_store, "demo")
    assert "operator" in entry.after["removed"]
