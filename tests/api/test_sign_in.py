"""Sign-in and tokens: throttled guesses (429), sign-out and password changes revoke tokens."""

from __future__ import annotations

import os
import subprocess

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.accounts import add_account
from geo.demo import DEMO_PASSWORD
from tests.test_cli import GRIDCASE, REPO


@pytest.fixture(scope="module")
def client(settings, cases_store, tmp_path_factory):
    """A fresh app (fresh throttles) on the cases database."""
    app = create_app(
        settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("s")}), store=cases_store
    )
    with TestClient(app) as client:
        yield client


def sign_in(client, username, password):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_wrong_passwords_are_throttled_per_account(client, cases_store):
    with cases_store.transaction() as session:
        add_account(session, "throttled_op", DEMO_PASSWORD, "operator")
    answers = [sign_in(client, "throttled_op", f"wrong-{i}-password").status_code for i in range(8)]
    assert answers[:5] == [401] * 5
    assert answers[5:] == [429] * 3  # before: 200 wrong passwords in 41 s, all 401
    refused = sign_in(client, "throttled_op", DEMO_PASSWORD)
    assert refused.status_code == 429  # even the right one, until the window passes
    assert int(refused.headers["Retry-After"]) > 0
    detail = refused.json()["detail"][0]
    assert detail["field"] == "username" and "try again in" in detail["message"]
    # Another account is not locked by this one's guesses.
    assert sign_in(client, "operator", DEMO_PASSWORD).status_code == 200


def test_wrong_passwords_are_throttled_per_address(client):
    client.app.state.throttles.sign_in_address.reset("testclient")  # TestClient's address
    answers = [sign_in(client, f"nobody{i}", "wrong-password").status_code for i in range(32)]
    assert answers.count(401) == 30 and answers[-1] == 429
    assert sign_in(client, "nobody99", "wrong-password").json()["detail"][0]["field"] == "client"


def test_sign_out_revokes_the_token(client):
    client.app.state.throttles.sign_in_address.reset("testclient")
    headers = {"Authorization": f"Bearer {sign_in(client, 'planner', DEMO_PASSWORD).json()['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    after = client.get("/api/v1/auth/me", headers=headers)
    assert after.status_code == 401 and after.json()["detail"][0]["field"] == "authorization"


def test_a_password_change_revokes_every_token(client, cases_store):
    client.app.state.throttles.sign_in_address.reset("testclient")
    with cases_store.transaction() as session:
        add_account(session, "pw_change", DEMO_PASSWORD, "dispatcher")
    tokens = [sign_in(client, "pw_change", DEMO_PASSWORD).json()["access_token"] for _ in range(2)]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"DATABASE_URL": cases_store.url}
    changed = subprocess.run(
        [GRIDCASE, "user", "password", "pw_change"],
        input="a-new-password-1\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert changed.returncode == 0, changed.stderr
    for token in tokens:
        assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert sign_in(client, "pw_change", "a-new-password-1").status_code == 200


def test_tracking_code_guesses_are_throttled(client):
    # The count lives in PostgreSQL for every worker: other tests' unknown codes from the same
    # test-client address within the minute are forgotten first.
    guesses = client.app.state.throttles.tracking_address
    guesses.clear()
    try:
        answers = [client.get(f"/api/v1/track/GC261201GUESS{i:03d}").status_code for i in range(32)]
    finally:
        guesses.clear()  # nor do this test's guesses hold back the tests after it
    assert answers[:30] == [404] * 30 and answers[30:] == [429, 429]
