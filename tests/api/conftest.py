"""A demo database without the seeded quarter, served by a real app, for the case API tests."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.accounts import add_account
from geo.demo import DEMO_PASSWORD, load_demo
from tests.conftest import fresh_store

EXTRA_ACCOUNTS = [
    ("handler_cgj", "unit_handler", {"unit_code": "CGJ"}),
    ("inspector_far", "inspector", {"grid_codes": ["421281003009001"]}),
    ("resident2", "resident", {}),
]


@pytest.fixture(scope="session")
def cases_store(settings):
    """Chibi reference data, demo accounts and a few more; no seeded cases."""
    store = fresh_store(settings, "cases")
    load_demo(store, cases=False)
    with store.transaction() as session:
        for name, role, extra in EXTRA_ACCOUNTS:
            add_account(session, name, DEMO_PASSWORD, role, **extra)
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def case_client(settings, cases_store, tmp_path_factory):
    """The app on the cases database; photos go to a temporary state folder."""
    state = tmp_path_factory.mktemp("state")
    app = create_app(settings.model_copy(update={"state_dir": state}), store=cases_store)
    with TestClient(app) as client:
        yield client


_tokens: dict[str, str] = {}


def auth(client: TestClient, username: str) -> dict[str, str]:
    """Authorization header for a demo account (tokens cached per run)."""
    if username not in _tokens:
        response = client.post("/api/v1/auth/token",
                               data={"username": username, "password": DEMO_PASSWORD})
        assert response.status_code == 200, response.text
        _tokens[username] = response.json()["access_token"]
    return {"Authorization": f"Bearer {_tokens[username]}"}
