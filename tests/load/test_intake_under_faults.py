"""64 inspectors report with photos while the database restarts and the server is killed.

The server runs as a process (`gridcase serve`) on its own PostgreSQL cluster (so restarting it
disturbs no other test). Every inspector retries each report with the same Idempotency-Key until
it is acknowledged, as the phone page's outbox does. Then: every acknowledged key is exactly one
case, nothing acknowledged is lost, no answer was a 500, 503s came only while the database was
away. The latency of acknowledged reports outside the outages is measured and written to
test-artifacts/intake-under-faults.txt; the brief keeps speed goals out of timed assertions (they
are flaky on a shared 2-core machine), so its 2 s p99 goal is reported there and in the README.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import func, select

from geo.accounts import add_account
from geo.demo import DEMO_PASSWORD, load_demo
from geo.settings import Settings
from geo.store import Store
from geo.store.cluster import LocalCluster, free_port
from geo.store.db import create_database
from geo.store.models import Case
from tests.conftest import FIXTURES, REPO
from tests.test_cli import GRIDCASE

ARTIFACTS = REPO / "test-artifacts"

INSPECTORS = 64
REPORTS_EACH = 6
RUN_LIMIT_S = 150  # the whole run, faults included, must end well inside this
PHOTO = (FIXTURES / "photos" / "canal_report.jpg").read_bytes()  # geotagged: located by EXIF


@dataclass
class Outage:
    """A window in which errors of one kind are expected (monotonic seconds)."""

    what: str
    start: float
    end: float | None = None

    def covers(self, t: float, margin: float) -> bool:
        return self.start - margin <= t <= (self.end if self.end is not None else float("inf")) + margin


@dataclass
class Run:
    """What the inspectors saw."""

    acknowledged: dict[str, int] = field(default_factory=dict)  # key -> case id
    answers: list[tuple[float, int]] = field(default_factory=list)  # (time answered, status)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds) of acks
    outages: list[Outage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Server:
    """`gridcase serve` as a process, restartable on the same port."""

    def __init__(self, env: dict[str, str], port: int):
        self.env, self.port = env, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [GRIDCASE, "serve", "--workers", "1", "--port", str(self.port)],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, "the server died at start-up"
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # uvicorn still draining: the test is over anyway
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory) -> Iterator[tuple[LocalCluster, Store]]:
    """A PostgreSQL cluster of this test's own, with the Chibi reference data and 64 inspectors."""
    state = tmp_path_factory.mktemp("load-state")
    cluster = LocalCluster(state)
    cluster.start()
    url = cluster.url("gridcase_load")
    create_database(url)
    store = Store(Settings(state_dir=state, database_url=url), url=url)
    store.migrate()
    load_demo(store, cases=False)
    with store.transaction() as session:
        for i in range(INSPECTORS):
            add_account(session, f"load_inspector_{i:02d}", DEMO_PASSWORD, "inspector")
    yield cluster, store
    store.dispose()
    cluster.stop()


def inspector(server: Server, run: Run, token: str, seed: int, stop_at: float) -> None:
    """One inspector: reports one by one, each retried with its key until acknowledged."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(REPORTS_EACH):
            key = str(uuid.uuid4())
            backoff = 0.2
            while time.monotonic() < stop_at:
                started = time.monotonic()
                try:
                    response = client.post(
                        "/api/v1/cases",
                        data={"category": "E0102", "description": "渠边垃圾"},
                        files=[("photos", ("report.jpg", PHOTO, "image/jpeg"))],
                        headers={**headers, "Idempotency-Key": key},
                    )
                except httpx.TransportError:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                with run.lock:
                    run.answers.append((time.monotonic(), response.status_code))
                if response.status_code in (200, 201):
                    with run.lock:
                        run.acknowledged[key] = response.json()["id"]
                        run.latencies.append((started, time.monotonic() - started))
                    break
                if response.status_code == 503:
                    time.sleep(float(response.headers.get("Retry-After", "1")) * rng.uniform(0.2, 0.5))
                    continue
                raise AssertionError(f"report refused: {response.status_code} {response.text}")
            time.sleep(rng.uniform(0.2, 0.8))  # the next problem is a few steps away


def test_no_report_is_lost_or_doubled_through_a_restart_and_a_kill(own_cluster, tmp_path):
    cluster, store = own_cluster
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"DATABASE_URL": store.url, "GRIDCASE_STATE_DIR": str(tmp_path)}
    server = Server(env, free_port())
    server.start()
    tokens = []
    with httpx.Client(base_url=server.url) as client:
        for i in range(INSPECTORS):
            answer = client.post(
                "/api/v1/auth/token", data={"username": f"load_inspector_{i:02d}", "password": DEMO_PASSWORD}
            )
            assert answer.status_code == 200, answer.text
            tokens.append(answer.json()["access_token"])
    run = Run()
    began = time.monotonic()
    stop_at = began + RUN_LIMIT_S
    threads = [
        threading.Thread(target=inspector, args=(server, run, token, i, stop_at), daemon=True)
        for i, token in enumerate(tokens)
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(4)
        # The database restarts (15 s in the trial; here as long as a restart takes).
        db_down = Outage("database", time.monotonic())
        run.outages.append(db_down)
        cluster.stop()
        time.sleep(3)
        cluster.start()
        db_down.end = time.monotonic()
        time.sleep(4)
        # The server is killed mid-request and comes back on the same port.
        killed = Outage("server", time.monotonic())
        run.outages.append(killed)
        server.kill()
        server.start()
        killed.end = time.monotonic()
        for thread in threads:
            thread.join(timeout=max(1.0, stop_at - time.monotonic()))
    finally:
        server.stop()
    statuses = [status for _, status in run.answers]
    seen = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"\n{len(run.acknowledged)} acknowledged in {time.monotonic() - began:.0f} s; answers {seen}")
    assert not any(t.is_alive() for t in threads), "the inspectors did not finish in time"

    expected = INSPECTORS * REPORTS_EACH
    assert len(run.acknowledged) == expected, f"{expected - len(run.acknowledged)} reports never acknowledged"
    with store.transaction() as session:
        per_key = dict(
            session.execute(
                select(Case.idempotency_key, func.count())
                .where(Case.idempotency_key.is_not(None))
                .group_by(Case.idempotency_key)
            ).all()
        )
        total = session.scalar(select(func.count()).select_from(Case))
    stored = {key.split(":", 1)[1]: n for key, n in per_key.items()}
    assert set(stored) == set(run.acknowledged), "acknowledged keys and stored cases differ"
    assert all(n == 1 for n in stored.values()), "a key made more than one case"
    assert total == expected, f"{total} cases for {expected} reports"
    assert 500 not in statuses and all(s in (200, 201, 503) for s in statuses), sorted(set(statuses))
    # A 503 only while the database was away (answered from its stop until the pool has
    # reconnected, a second after it is back): never from an overloaded pool.
    unexpected = [t - began for t, s in run.answers if s == 503 and not db_down.covers(t, margin=1.0)]
    assert unexpected == [], (
        f"{len(unexpected)} 503s outside the database outage ({db_down.start - began:.1f}–"
        f"{(db_down.end or 0) - began:.1f} s): at {unexpected}"
    )
    quiet = sorted(
        seconds
        for start, seconds in run.latencies
        if not any(o.covers(start, margin=1.0) for o in run.outages)
    )
    p99 = quiet[int(0.99 * (len(quiet) - 1))]
    summary = (
        f"{expected} reports by {INSPECTORS} inspectors in {time.monotonic() - began:.0f} s through a "
        f"database restart and a server kill: 0 lost, 0 doubled, no 500; {statuses.count(503)} answers "
        f"503 during the outage; p50 {quiet[len(quiet) // 2]:.2f} s, p99 {p99:.2f} s outside the "
        f"outages ({len(quiet)} reports; goal 2 s; load average {os.getloadavg()[0]:.1f})"
    )
    print("\n" + summary)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "intake-under-faults.txt").write_text(summary + "\n")
    assert quiet, "no report was acknowledged outside the outages"
