"""A real server and a real browser: uvicorn in a thread on its own demo database, Debian's Chromium.

Every browser context blocks requests to any host but this machine and records them, so a page
that reaches for a CDN fails its test.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Route
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.app import create_app
from geo.demo import load_demo
from geo.settings import Settings
from geo.store import Store
from tests.conftest import REPO, _test_url

ARTIFACTS = REPO / "test-artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
}
SCREEN = {"viewport": {"width": 1920, "height": 1080}, "locale": "zh-CN"}
# What the loaded demo depends on: when any of these change, the cached template is rebuilt.
DEMO_INPUTS = [
    "data/chibi",
    "geo/demo.py",
    "geo/community",
    "geo/importing.py",
    "geo/validation.py",
    "geo/accounts.py",
    "geo/store/models.py",
    "geo/migrations/versions",
]


@dataclass
class LiveServer:
    """Where the test server listens, and its database."""

    url: str
    store: Store
    screen_key: str  # the big screen's kiosk key (api/screen.py)


@dataclass
class Offline:
    """A browser context with the network closed, and what its pages tried to reach outside."""

    context: BrowserContext
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def page(self, **viewport: int) -> Page:
        """A new page whose script errors are recorded."""
        page = self.context.new_page()
        if viewport:
            page.set_viewport_size(viewport)  # type: ignore[arg-type]
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _demo_fingerprint() -> str:
    digest = hashlib.sha256()
    for entry in DEMO_INPUTS:
        root = REPO / entry
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _database_from_demo_template(settings: Settings, name: str) -> str:
    """A fresh database copied from a cached, fully loaded demo (built once per demo version).

    Loading the seeded quarter takes half a minute or more on a busy machine; copying a template
    database takes a second, and load_demo on the copy (idempotent) confirms it is complete.
    """
    url = _test_url(settings, name)
    target = make_url(url)
    # Names are derived, not resolved: resolving a name creates an empty database.
    template_db = f"{target.database}_template_{_demo_fingerprint()}"
    building_db = f"{template_db}_building"
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template_db}):
                stale = conn.scalars(
                    text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
                    {"prefix": f"{target.database}\\_template\\_%"},
                ).all()
                for old in stale:  # earlier demo versions, and half-built leftovers
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{building_db}"'))
                building = Store(
                    settings, url=target.set(database=building_db).render_as_string(hide_password=False)
                )
                building.migrate()
                load_demo(building)
                building.dispose()
                # Published under its final name only once complete.
                conn.execute(text(f'ALTER DATABASE "{building_db}" RENAME TO "{template_db}"'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}" TEMPLATE "{template_db}"'))
    finally:
        admin.dispose()
    return url


@pytest.fixture(scope="session")
def browser_store(settings: Settings) -> Iterator[Store]:
    """The full Chibi demo (seeded quarter and demo accounts) in a database of our own."""
    store = Store(settings, url=_database_from_demo_template(settings, "browser"))
    report = load_demo(store)  # idempotent: nothing to write on a complete copy
    assert report.cases_created == 0 and report.counts["cases"] >= 7534, report.summary()
    yield store
    store.dispose()


@contextmanager
def serving(app) -> Iterator[str]:
    """uvicorn serving an app in a background thread on a free 127.0.0.1 port; its address."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert thread.is_alive(), "the server thread died at start-up"
        assert time.monotonic() < deadline, "the server did not answer /healthz within 30 s"
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(
    settings: Settings, browser_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """uvicorn serving create_app() in a background thread on a free 127.0.0.1 port."""
    state = tmp_path_factory.mktemp("browser-state")
    app = create_app(settings.model_copy(update={"state_dir": state}), store=browser_store)
    with serving(app) as url:
        yield LiveServer(url=url, store=browser_store, screen_key=app.state.screen_keys[0])


def _offline(browser: Browser, options: dict, enforce_csp: bool = False) -> Iterator[Offline]:
    # Playwright's own wait_for_function polls with eval(), which gridcase's Content-Security-
    # Policy rightly forbids: the page tests bypass it; tests/browser/test_security_in_browser.py
    # loads every page with the policy enforced and records each violation.
    context = browser.new_context(**options, bypass_csp=not enforce_csp)
    context.set_default_timeout(15_000)
    offline = Offline(context)

    def gate(route: Route) -> None:
        if urlparse(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            offline.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", gate)
    yield offline
    context.close()
    assert offline.blocked == [], f"pages tried to reach the network: {offline.blocked}"
    assert offline.errors == [], f"script errors: {offline.errors}"


@pytest.fixture
def phone(browser: Browser) -> Iterator[Offline]:
    """A phone-sized, touch, Chinese-locale context with only this machine reachable."""
    yield from _offline(browser, PHONE)


@pytest.fixture
def screen(browser: Browser) -> Iterator[Offline]:
    """A 1920×1080 big-screen context with only this machine reachable."""
    yield from _offline(browser, SCREEN)


@pytest.fixture
def strict_screen(browser: Browser) -> Iterator[Offline]:
    """The big-screen context with the pages' Content-Security-Policy enforced."""
    yield from _offline(browser, SCREEN, enforce_csp=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
