"""Page sign-in: a cookie session (HttpOnly, SameSite, hashed, idle timeout), CSRF on every post,
and refusals drawn as pages in Chinese (403 for a desk of another role, 404 for a hidden case)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.app import create_app
from geo import stats
from geo.accounts import Actor, Role
from geo.cases import views
from geo.demo import DEMO_PASSWORD
from geo.store.models import WebSession
from tests.api.test_cases import report, to_dispatched

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def app(settings, cases_store, tmp_path_factory):
    """A fresh app (fresh throttles) on the cases database."""
    return create_app(
        settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("d")}), store=cases_store
    )


def browser(app) -> TestClient:
    """A client that keeps cookies and does not follow redirects, like a browser we can inspect."""
    return TestClient(app, follow_redirects=False)


def sign_in(client: TestClient, username: str, password: str = DEMO_PASSWORD, next: str = "/desk"):
    form = client.get("/desk/sign-in")
    assert form.status_code == 200
    token = CSRF.search(form.text).group(1)
    return client.post(
        "/desk/sign-in", data={"username": username, "password": password, "csrf_token": token, "next": next}
    )


def csrf_of(client: TestClient, path: str = "/desk/cases/none") -> str:
    page = client.get("/desk", follow_redirects=True)
    return CSRF.search(page.text).group(1)


def test_pages_send_a_stranger_to_sign_in_and_back(app):
    with browser(app) as client:
        answer = client.get("/desk/intake?lang=en")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/desk/sign-in?lang=en&next=/desk/intake")
        signed = sign_in(client, "operator", next="/desk/intake")
        assert signed.status_code == 303 and signed.headers["location"] == "/desk/intake"
        assert client.get("/desk/intake").status_code == 200


def test_the_session_cookie_is_httponly_samesite_and_stored_only_as_a_hash(app, cases_store):
    with browser(app) as client:
        answer = sign_in(client, "dispatcher")
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("gridcase_desk="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        token = client.cookies["gridcase_desk"]
        with cases_store.transaction() as session:
            hashes = session.scalars(select(WebSession.token_hash)).all()
        assert hashlib.sha256(token.encode()).hexdigest() in hashes
        assert token not in hashes


def test_wrong_password_and_a_form_without_its_token_are_pages(app):
    with browser(app) as client:
        wrong = sign_in(client, "operator", "not-the-password")
        assert wrong.status_code == 401 and "用户名或密码不正确" in wrong.text
        assert "gridcase_desk" not in client.cookies
        forged = client.post("/desk/sign-in", data={"username": "operator", "password": DEMO_PASSWORD})
        assert forged.status_code == 403 and "表单已失效" in forged.text
        assert forged.headers["content-type"].startswith("text/html")


def test_a_post_without_the_csrf_token_is_refused_with_a_page(app, case_client):
    case = report(case_client)
    with browser(app) as client:
        sign_in(client, "operator")
        url = f"/desk/cases/{case.tracking_code}/actions/verify"
        refused = client.post(url, data={"expected_version": case.version})
        assert refused.status_code == 403 and "表单已失效" in refused.text and "刷新后再提交" in refused.text
        wrong = client.post(url, data={"csrf_token": "guess"})
        assert wrong.status_code == 403
        token = csrf_of(client)
        done = client.post(url, data={"csrf_token": token, "expected_version": case.version})
        assert done.status_code == 303, done.text
        # htmx requests send it as a header instead of a form field.
        filed = client.post(f"/desk/cases/{case.tracking_code}/actions/file", headers={"X-CSRF-Token": token})
        assert filed.status_code == 303
        page = client.get(f"/desk/cases/{case.tracking_code}")
        assert "已立案" in page.text


def test_a_role_gets_a_403_page_and_a_hidden_case_a_404_page(app, case_client):
    theirs = to_dispatched(case_client)  # dispatched to the water bureau
    with browser(app) as client:
        sign_in(client, "handler_cgj")  # city management, not water
        desk = client.get("/desk/intake")
        assert desk.status_code == 403 and "您没有使用此页面的权限" in desk.text and "回到工作台" in desk.text
        hidden = client.get(f"/desk/cases/{theirs.tracking_code}")
        assert hidden.status_code == 404 and "找不到这个案件" in hidden.text
        assert client.get("/desk/cases/NO-SUCH-CASE").status_code == 404
        english = client.get("/desk/intake?lang=en")
        assert english.status_code == 403 and "You may not use this page" in english.text
        assert client.get("/desk/nowhere").status_code == 404
    with browser(app) as client:
        sign_in(client, "unit_handler")  # the water bureau's handler opens it
        assert client.get(f"/desk/cases/{theirs.tracking_code}").status_code == 200


def test_an_idle_session_ends_and_sign_out_ends_it_at_once(app, cases_store):
    with browser(app) as client:
        sign_in(client, "operator")
        digest = hashlib.sha256(client.cookies["gridcase_desk"].encode()).hexdigest()
        with cases_store.transaction() as session:
            session.execute(
                update(WebSession)
                .where(WebSession.token_hash == digest)
                .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=31))
            )
        assert client.get("/desk/chief").status_code == 303  # back to sign-in
    with browser(app) as client:
        sign_in(client, "operator")
        token = client.cookies["gridcase_desk"]
        csrf = csrf_of(client)
        out = client.post("/desk/sign-out", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"].startswith("/desk/sign-in")
        client.cookies.set("gridcase_desk", token)
        assert client.get("/desk/chief").status_code == 303
        with cases_store.transaction() as session:
            digest = hashlib.sha256(token.encode()).hexdigest()
            assert session.get(WebSession, digest) is None


FIGURE = re.compile(r'<tr data-figure="(\w+)"><th scope="row">[^<]*</th><td class="this">([^<]*)</td>')


def figures_on(text: str) -> dict[str, str]:
    return dict(FIGURE.findall(text))


def test_a_unit_desk_shows_its_own_months_figures_and_no_other_units(app, case_client, cases_store):
    to_dispatched(case_client)  # to the water bureau
    today = datetime.now(UTC).astimezone(stats.CHINA).date()
    month = stats.month_period(today)
    with cases_store.transaction() as session:
        water = stats.unit_totals(session, "WATER", start=month.start, end=month.end)
        cgj = stats.unit_totals(session, "CGJ", start=month.start, end=month.end)
        overdue = views.count_cases(
            session,
            Actor(0, "unit_handler", Role.unit_handler, "WATER", ()),
            views.CaseFilter(unit="WATER", overdue=True),
        )
    with browser(app) as client:
        sign_in(client, "unit_handler")
        page = client.get("/desk/unit")
    assert page.status_code == 200 and "本单位考核指标" in page.text
    shown = figures_on(page.text)
    assert shown["dispatched"] == f"{water['dispatched']:,}" and water["dispatched"] >= 1
    assert shown["closed"] == f"{water['closed']:,}"
    assert shown["overdue_now"] == f"{overdue:,}"
    for key in ("dispatched", "handled", "closed", "returned", "extended", "overdue_now"):
        assert re.fullmatch(r"[\d,]+", shown[key]), (key, shown[key])  # whole numbers, no decimals
    for key in ("disposal_rate", "on_time_disposal_rate", "return_rate"):
        assert re.fullmatch(r"\d+\.\d\d%|—", shown[key]), (key, shown[key])
    assert "处置率" in page.text and "回退率" in page.text
    # The city management bureau's handler sees only its own unit's numbers.
    with browser(app) as client:
        sign_in(client, "handler_cgj")
        other = figures_on(client.get("/desk/unit").text)
    assert other["dispatched"] == f"{cgj['dispatched']:,}"
    with browser(app) as client:
        sign_in(client, "unit_handler")
        english = client.get("/desk/unit?lang=en").text
    assert "Your unit&#39;s figures" in english or "Your unit's figures" in english
    assert "Disposal rate" in english
