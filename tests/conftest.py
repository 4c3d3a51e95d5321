"""Shared fixtures: a real PostGIS database (the managed cluster, or GRIDCASE_TEST_DATABASE_URL).

The test database is created fresh for each run and migrated; each test runs in a transaction that
is rolled back, so tests stay independent. Nothing here skips: no database is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Playwright, sync_playwright
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api.app import create_app
from geo.accounts import add_account
from geo.demo import DEMO_PASSWORD, load_demo
from geo.settings import Settings
from geo.store import Store
from geo.store.db import create_database, drop_database, resolve_database_url

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
]


# One Playwright driver and one Chromium per run, for the browser tests and the notebooks' maps
# (a second sync Playwright in the same process refuses to start).
@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless (a Playwright browser download would fail here)."""
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def _test_url(settings: Settings, name: str) -> str:
    if url := os.environ.get("GRIDCASE_TEST_DATABASE_URL"):
        return (
            make_url(url)
            .set(database=f"{make_url(url).database}_{name}")
            .render_as_string(hide_password=False)
        )
    return resolve_database_url(
        settings.model_copy(update={"database_url": None}), database=f"gridcase_test_{name}"
    )


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the test run: the repository's state folder, never a DATABASE_URL server."""
    return Settings(
        state_dir=Path(os.environ.get("GRIDCASE_STATE_DIR", REPO / ".gridcase")), database_url=None
    )


def fresh_store(settings: Settings, name: str) -> Store:
    """A migrated store on a freshly created database."""
    url = _test_url(settings, name)
    drop_database(url)
    create_database(url)
    store = Store(settings, url=url)
    store.migrate()
    return store


@pytest.fixture(scope="session")
def store(settings: Settings) -> Iterator[Store]:
    """An empty, migrated database for this test run."""
    store = fresh_store(settings, "main")
    yield store
    store.dispose()


@contextmanager
def rolled_back(store: Store) -> Iterator[Session]:
    """A session inside a transaction that is rolled back at the end (commits become savepoints)."""
    connection = store.engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def session(store: Store) -> Iterator[Session]:
    """A session on the empty database, rolled back after the test."""
    with rolled_back(store) as session:
        yield session


@pytest.fixture(scope="session")
def demo_store(settings: Settings) -> Iterator[Store]:
    """A database with the Chibi demo loaded once for the run (read-only use in tests)."""
    store = fresh_store(settings, "demo")
    load_demo(store)
    yield store
    store.dispose()


# -- a database for case tests: reference data and accounts, no seeded quarter ----------------

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
        response = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
        assert response.status_code == 200, response.text
        _tokens[username] = response.json()["access_token"]
    return {"Authorization": f"Bearer {_tokens[username]}"}


def add_exposed_garbage(session, time_limit: float = 24, unit: str = "urgent_hours") -> None:
    """The catalogue's event 0102 exposed garbage (暴露垃圾), for tests that build their own data."""
    from sqlalchemy import insert

    from geo.store.models import Category

    session.execute(
        insert(Category).values(
            code="E0102",
            kind="event",
            class_code="01",
            subclass_code="02",
            name="暴露垃圾",
            time_limit=time_limit,
            time_limit_unit=unit,
        )
    )


AFTER_PHOTO = FIXTURES / "photos" / "canal_after.jpg"
#: The staff's steps from a new report to closing, each by the demo account of its role.
TO_CLOSING = (
    ("operator", "verify"),
    ("operator", "file"),
    ("dispatcher", "dispatch"),
    ("unit_handler", "sign"),
    ("unit_handler", "handle"),
    ("inspector", "check_pass"),
    ("operator", "close"),
)


def work_to_closing(store: Store, context, case_id: int, steps=TO_CLOSING) -> None:
    """The command centre, the water bureau and the inspector work a canal case to 结案, each step
    in its own committed transaction (as their desks would); the unit dispatched to is WATER."""
    from sqlalchemy import select

    from geo.accounts import actor_of
    from geo.cases.service import ActionIn, act
    from geo.store.models import Account

    for username, action in steps:
        with store.transaction() as session:
            who = actor_of(session.scalar(select(Account).where(Account.username == username)))
            data = ActionIn(unit="WATER") if action == "dispatch" else ActionIn(note="已清理")
            photos = [AFTER_PHOTO.read_bytes()] if action == "handle" else None
            act(session, context, who, case_id, action, data, photos)
