"""Two workers, a streaming replica and PgBouncer on loopback (fixtures in tests/scale/conftest.py).

The tests run in file order on one deployment; the last one stops the replica.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import re
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from geo.demo import DEMO_PASSWORD
from geo.store.replicas import lsn_value
from tests.conftest import REPO
from tests.s3 import S3Server, s3_server  # noqa: F401  (the S3 server fixture)
from tests.scale.conftest import (
    SCREEN_KEY,
    Deployment,
    Server,
    _run_gridcase,
    listening_workers,
    serve_app,
    token,
)

ARTIFACTS = REPO / "test-artifacts"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _report(client: httpx.Client, headers: dict[str, str], description: str) -> dict:
    body = {"category": "E0102", "description": description, **_a_routable_point(client)}
    answer = client.post(
        "/api/v1/cases", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


_POINT: dict[str, float] = {}


def _a_routable_point(client: httpx.Client) -> dict[str, float]:
    """A point the router places in a grid (the centre of the first grid of the screen's map)."""
    if not _POINT:
        grids = client.get("/api/v1/dashboard/grids").json()["features"]
        ring = grids[0]["geometry"]["coordinates"][0]
        while isinstance(ring[0][0], list):  # a MultiPolygon: its first ring
            ring = ring[0]
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        # the mean of the ring's vertices lies inside the demo's convex-ish grid cells
        _POINT.update(lon=sum(xs) / len(xs), lat=sum(ys) / len(ys))
    return dict(_POINT)


def _replayed(deployment: Deployment) -> int:
    with deployment.connect(deployment.replica_url) as conn:
        return lsn_value(conn.execute("SELECT pg_last_wal_replay_lsn()").fetchone()[0]) or 0


def _wait_replayed(deployment: Deployment, position: int, limit_s: float = 10) -> None:
    deadline = time.monotonic() + limit_s
    while _replayed(deployment) < position:
        assert time.monotonic() < deadline, "the replica did not replay the write"
        time.sleep(0.05)


def _wait_replica_used(server: Server, workers: int = 2) -> None:
    """Until every worker's watcher sees the replica caught up (each samples every 0.5 s on its
    own: one worker's /healthz says nothing of the other's)."""
    deadline = time.monotonic() + 10
    using: set[int] = set()
    while len(using) < workers:
        health = httpx.get(f"{server.url}/healthz", timeout=10).json()  # a fresh connection each time
        if health["replicas"] and all(r["used"] for r in health["replicas"]):
            using.add(health["worker"])
        else:
            using.discard(health["worker"])
        assert time.monotonic() < deadline, health["replicas"]
        time.sleep(0.05)


def test_the_app_works_through_pgbouncer_in_transaction_mode(deployment: Deployment, app_server: Server):
    with psycopg.connect(deployment.bouncer_admin, autocommit=True) as admin:
        mode = {row[0]: row[1] for row in admin.execute("SHOW CONFIG").fetchall()}["pool_mode"]
        before = _bouncer_transactions(admin)
        with httpx.Client(base_url=app_server.url, timeout=30) as client:
            headers = token(app_server, "operator")
            # The same statements many times: psycopg would prepare them after 5 runs, and the next
            # transaction would land on a server connection that does not know them.
            for _ in range(12):
                assert client.get("/api/v1/cases", headers=headers).status_code == 200
                assert client.get("/api/v1/categories").status_code == 200
        after = _bouncer_transactions(admin)
    assert mode == "transaction"
    assert after - before >= 12, (before, after)  # the app's transactions went through PgBouncer
    _wait_replica_used(app_server)
    health = httpx.get(f"{app_server.url}/healthz", timeout=10).json()
    assert not [w for w in health["warnings"] if "replica" in w], health
    assert [r["name"] for r in health["replicas"]] == ["replica1"]
    assert health["replicas"][0]["lag_seconds"] < 5


def _bouncer_transactions(admin: psycopg.Connection) -> int:
    cursor = admin.execute("SHOW STATS")
    columns = [c.name for c in cursor.description or []]
    rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return sum(int(r["total_xact_count"]) for r in rows if r["database"] == "gridcase")


def test_a_report_is_read_back_from_the_replica_once_replicated(deployment: Deployment, app_server: Server):
    _wait_replica_used(app_server)
    screen = {"X-Screen-Key": SCREEN_KEY}
    reporter = httpx.Client(base_url=app_server.url, timeout=30)  # keeps its cookies throughout
    with (
        httpx.Client(base_url=app_server.url, timeout=30) as someone_else,
        deployment.connect(deployment.replica_url) as replica,
    ):
        inspector, operator = token(app_server, "inspector"), token(app_server, "operator")
        _a_routable_point(someone_else)
        replica.execute("SELECT pg_wal_replay_pause()")  # the replica now keeps its view
        try:
            case = _report(reporter, inspector, "replica read-back")
            assert reporter.cookies.get("gridcase_lsn"), "the write's answer carries its WAL position"
            # The reporter reads their own write at once: from the primary, since the replica has
            # not replayed it.
            own = reporter.get(f"/api/v1/cases/{case['id']}", headers=inspector)
            assert own.status_code == 200 and own.headers["x-gridcase-read"] == "primary"
            # Anyone else reads the replica, which does not have it yet: proof it is the replica.
            other = someone_else.get(f"/api/v1/cases/{case['id']}", headers=operator)
            assert other.headers["x-gridcase-read"] == "replica1"
            assert other.status_code == 404
            live = someone_else.get("/api/v1/dashboard/live-cases", headers=screen)
            assert live.status_code == 200 and live.headers["x-gridcase-read"] == "replica1"
            assert case["tracking_code"] not in live.text
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
    _wait_replayed(deployment, lsn_value(reporter.cookies["gridcase_lsn"]) or 0)
    _wait_replica_used(app_server)
    with httpx.Client(base_url=app_server.url, timeout=30) as someone_else:
        back = someone_else.get(f"/api/v1/cases/{case['id']}", headers=operator)
        assert back.status_code == 200 and back.headers["x-gridcase-read"] == "replica1"
        assert back.json()["tracking_code"] == case["tracking_code"]
        live = someone_else.get("/api/v1/dashboard/live-cases", headers=screen)
        assert live.headers["x-gridcase-read"] == "replica1" and case["tracking_code"] in live.text
        summary = someone_else.get("/api/v1/dashboard/summary", headers=screen)
        assert summary.status_code == 200 and summary.headers["x-gridcase-read"] == "replica1"
    # The reporter's reads go to the replica again once the worker knows it replayed their write
    # (each worker samples the replica's replay position every 0.5 s: within a few samples).
    deadline = time.monotonic() + 5
    while True:
        mine = reporter.get(f"/api/v1/cases/{case['id']}", headers=inspector)
        assert mine.status_code == 200
        if mine.headers["x-gridcase-read"] == "replica1" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert mine.headers["x-gridcase-read"] == "replica1"
    reporter.close()


def test_a_reference_import_reaches_both_workers_within_a_second(deployment: Deployment, app_server: Server):
    workers = listening_workers(deployment)
    assert len(workers) == 2, workers
    catalogue = (REPO / "data" / "chibi" / "categories.csv").read_text(encoding="utf-8")
    added = deployment.state / "categories-more.csv"
    added.write_text(
        catalogue.rstrip("\n") + "\nE9901,event,99,01,测试新类,Scale test,ZLS,24,urgent_hours,,\n"
    )
    with httpx.Client(base_url=app_server.url, timeout=30) as client:
        before = client.get("/api/v1/route", params={**_a_routable_point(client), "category": "E9901"})
        assert before.status_code == 422
    with deployment.connect(deployment.primary_url) as listening:
        listening.execute("LISTEN gridcase_reference")
        listening.execute("LISTEN gridcase_reference_applied")
        env = {**deployment.env, "DATABASE_URL": deployment.primary_url}
        importing = threading.Thread(target=_run_gridcase, args=(env, "import", "categories", str(added)))
        importing.start()
        committed: float | None = None
        applied: dict[int, float] = {}
        for note in listening.notifies(timeout=120):
            if note.channel == "gridcase_reference" and committed is None:
                committed = time.monotonic()
            elif note.channel == "gridcase_reference_applied":
                pid, _ = note.payload.split()
                if int(pid) in workers and committed is not None:
                    applied[int(pid)] = time.monotonic() - committed
            if set(applied) == workers:
                break
        importing.join()
    assert set(applied) == workers, applied
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "scale-reference.txt").write_text(
        "".join(
            f"worker {pid}: reference version in force {s:.3f} s after the commit\n"
            for pid, s in applied.items()
        )
    )
    assert max(applied.values()) < 1.0, applied
    with httpx.Client(base_url=app_server.url, timeout=30) as client:
        point = _a_routable_point(client)
        for _ in range(10):
            fresh = httpx.get(
                f"{app_server.url}/api/v1/route", params={**point, "category": "E9901"}, timeout=30
            )
            assert fresh.status_code == 200, fresh.text
            assert int(fresh.headers["x-gridcase-worker"]) in workers


def _desk_client(server: Server, username: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30)
    form = client.get("/desk/sign-in")
    token_ = CSRF.search(form.text)
    assert token_, form.text[:500]
    answer = client.post(
        "/desk/sign-in",
        data={
            "username": username,
            "password": DEMO_PASSWORD,
            "csrf_token": token_.group(1),
            "next": "/desk",
        },
    )
    assert answer.status_code == 303, answer.text
    return client


def _on_another_worker(server: Server, not_this: int) -> httpx.Client:
    """A client whose (kept-alive) connection is served by another worker than `not_this`."""
    for _ in range(100):
        client = httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=1))
        if int(client.get("/healthz").headers["x-gridcase-worker"]) != not_this:
            return client
        client.close()
    raise AssertionError("no connection reached the other worker in 100 tries")


def test_a_case_changed_through_one_worker_reaches_a_feed_served_by_the_other(app_server: Server):
    desk = _desk_client(app_server, "operator")
    lines: queue.Queue[str] = queue.Queue()
    opened: queue.Queue[int] = queue.Queue()

    def listen() -> None:
        # Ends when the test closes the client under it.
        with (
            contextlib.suppress(httpx.HTTPError),
            desk.stream("GET", "/desk/events", timeout=httpx.Timeout(60, read=60)) as feed,
        ):
            opened.put(int(feed.headers["x-gridcase-worker"]))
            for line in feed.iter_lines():
                lines.put(line)

    threading.Thread(target=listen, daemon=True).start()
    feed_worker = opened.get(timeout=30)
    hello = [lines.get(timeout=30) for _ in range(3)]
    assert "event: hello" in hello, hello
    other = _on_another_worker(app_server, feed_worker)
    try:
        inspector = token(app_server, "inspector")
        started = time.monotonic()
        case = _report(other, inspector, "seen on the other worker's feed")
        assert int(other.get("/healthz").headers["x-gridcase-worker"]) != feed_worker
    finally:
        other.close()
    # Heard through NOTIFY: well before the feed's own look at the log (15 s while LISTEN works).
    previous = ""
    while True:
        line = lines.get(timeout=10)
        if previous == "event: changed" and line.startswith("data: "):
            break
        previous = line
    assert time.monotonic() - started < 5
    assert int(line[6:]) > int(hello[hello.index("event: hello") + 1][6:]), (hello, line)
    assert case["id"]
    desk.close()


def test_photos_round_trip_through_s3_from_either_worker(
    deployment: Deployment,
    s3_server: S3Server,  # noqa: F811
):
    """With GRIDCASE_BLOB_URL on the S3 server, a photo report filed through one worker is kept as
    one object named by its hash, and both workers serve the original back byte for byte (no
    worker keeps photos on its own disk)."""
    photo = (REPO / "tests" / "fixtures" / "photos" / "canal_report.jpg").read_bytes()
    server = serve_app(deployment, s3_server.env("scale"))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as writer:
            answer = writer.post(
                "/api/v1/cases",
                data={"category": "E0102", "description": "北渠边有垃圾（对象存储）", "channel": "inspector"},
                files=[("photos", ("canal_report.jpg", photo, "image/jpeg"))],
                headers={**token(server, "inspector"), "Idempotency-Key": str(uuid.uuid4())},
            )
            assert answer.status_code == 201, answer.text
            case = answer.json()
            cookies = writer.cookies  # read-your-writes: the reads below see the new case
        stored = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix="scale/")
        names = {o["Key"] for o in stored.get("Contents", [])}
        assert f"scale/{hashlib.sha256(photo).hexdigest()}" in names
        original = f"/api/v1/cases/{case['id']}/photos/{case['photos'][0]['id']}/original"
        operator = token(server, "operator")
        served_by: set[str] = set()
        for _ in range(40):  # fresh connections until both workers have answered
            with httpx.Client(base_url=server.url, timeout=60, cookies=cookies) as reader:
                got = reader.get(original, headers=operator)
            assert got.status_code == 200, got.text
            assert got.content == photo
            served_by.add(got.headers["x-gridcase-worker"])
            if len(served_by) == 2:
                break
        assert len(served_by) == 2, served_by
    finally:
        server.stop()


def test_stopping_the_replica_moves_reads_to_the_primary(deployment: Deployment, app_server: Server):
    screen = {"X-Screen-Key": SCREEN_KEY}
    deployment.replica.stop()
    try:
        with httpx.Client(base_url=app_server.url, timeout=30) as client:
            for path in (
                "/api/v1/dashboard/summary",
                "/api/v1/dashboard/live-cases",
                "/api/v1/dashboard/units",
            ):
                for _ in range(4):
                    answer = httpx.get(f"{app_server.url}{path}", headers=screen, timeout=30)
                    assert answer.status_code == 200, answer.text
                    assert answer.headers["x-gridcase-read"] == "primary"
            stats = client.get(
                "/api/v1/stats",
                params={"from": "2026-07-01", "to": "2026-09-30"},
                headers=token(app_server, "planner"),
            )
            assert stats.status_code == 200 and stats.headers["x-gridcase-read"] == "primary"
            deadline = time.monotonic() + 10  # each worker looks twice a second
            while (health := client.get("/healthz").json())["replicas"][0]["up"]:
                assert time.monotonic() < deadline, health
                time.sleep(0.1)
            assert health["replicas"][0]["used"] is False and health["status"] == "warning"
            assert any("replica1 is down" in w for w in health["warnings"]), health
    finally:
        deployment.replica.start()


def test_the_replica_is_a_streaming_standby(deployment: Deployment):
    with deployment.connect(deployment.replica_url) as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    with deployment.connect(deployment.primary_url) as primary:
        slots = primary.execute("SELECT slot_name, active FROM pg_replication_slots").fetchall()
    assert ("gridcase_r1", True) in slots or any(name == "gridcase_r1" for name, _ in slots)
    assert Path(deployment.replica.data_dir / "standby.signal").exists()
