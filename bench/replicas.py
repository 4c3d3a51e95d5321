"""Reads on a streaming replica vs on the primary under a write load; intake at 1 and 2 workers.

    .venv/bin/python bench/replicas.py [--seconds 15] [--readers 8] [--writers 8] [--warmup 3]

Builds its own deployment in `.gridcase/bench-replicas-*` (removed at the end): a managed primary
with the whole Chibi demo (the quarter's cases, so stats and dashboards have work to do), and a
streaming replica made by `pg_basebackup -R` (geo/store/standby.py). Then, each against a fresh
`gridcase serve` process:

1. reads on the replica: 1 worker, `GRIDCASE_READ_DATABASE_URL` = the replica; `--readers`
   clients loop over `/api/v1/dashboard/summary`, `/api/v1/dashboard/live-cases` and
   `/api/v1/stats` (a quarter by unit) while `--writers` clients file JSON reports;
2. reads on the primary: the same, without the replica;
3. intake alone at 1 and then 2 workers (`--workers`), `--writers` × 2 clients.

Prints requests/s of each kind, the ratios, and the load average (the machine is shared: read the
figures with it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from geo.demo import DEMO_PASSWORD, load_demo  # noqa: E402
from geo.settings import Settings  # noqa: E402
from geo.store import Store  # noqa: E402
from geo.store.cluster import LocalCluster, free_port  # noqa: E402
from geo.store.db import create_database  # noqa: E402
from geo.store.standby import LocalReplica  # noqa: E402

GRIDCASE = str(Path(sys.executable).parent / "gridcase")
SCREEN_KEY = "bench-replicas-screen"
DATABASE = "gridcase"
READS = (
    ("/api/v1/dashboard/summary", {}),
    ("/api/v1/dashboard/live-cases", {"limit": "500"}),
    ("/api/v1/stats", {"from": "2026-07-01", "to": "2026-09-30", "group_by": "unit"}),
)


@dataclass
class Tally:
    """What the clients did in one phase."""

    reads: int = 0
    writes: int = 0
    errors: int = 0
    sources: dict[str, int] = field(default_factory=dict)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def serve(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [GRIDCASE, "serve", "--workers", str(workers), "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.3)
    # Every worker answers before measuring (each started on its own).
    seen: set[str] = set()
    while len(seen) < workers and time.monotonic() < deadline:
        with httpx.Client() as client:
            seen.add(client.get(f"{url}/healthz", timeout=30).headers["x-gridcase-worker"])
    return process, url


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def reader(url: str, until: float, tally: Tally, token: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"X-Screen-Key": SCREEN_KEY}) as client:
        i = 0
        while time.monotonic() < until:
            path, params = READS[i % len(READS)]
            i += 1
            headers = {"Authorization": f"Bearer {token}"} if path == "/api/v1/stats" else {}
            answer = await client.get(path, params=params, headers=headers)
            if answer.status_code == 200:
                tally.reads += 1
                source = answer.headers.get("x-gridcase-read", "?")
                tally.sources[source] = tally.sources.get(source, 0) + 1
            else:
                tally.errors += 1


async def writer(url: str, until: float, tally: Tally, point: dict[str, float], token: str) -> None:
    # Each client its own cookies: a writer's read-your-writes cookie must not steer the readers.
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < until:
            body = {"category": "E0102", "description": "bench", **point}
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
            answer = await client.post("/api/v1/cases", json=body, headers=headers)
            client.cookies.clear()
            if answer.status_code == 201:
                tally.writes += 1
            else:
                tally.errors += 1


def _token(url: str, username: str) -> str:
    """A bearer token, fetched before the clock starts (a sign-in costs an Argon2 hash)."""
    answer = httpx.post(
        f"{url}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}, timeout=60
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def a_point(url: str) -> dict[str, float]:
    """The mean of the first current grid's vertices: inside that (compact) grid cell."""
    feature = httpx.get(f"{url}/api/v1/dashboard/grids", timeout=60).json()["features"][0]
    ring = feature["geometry"]["coordinates"][0]
    while isinstance(ring[0][0], list):
        ring = ring[0]
    return {"lon": sum(p[0] for p in ring) / len(ring), "lat": sum(p[1] for p in ring) / len(ring)}


async def phase(url: str, seconds: float, readers: int, writers: int, point: dict[str, float]) -> Tally:
    planner, inspector = _token(url, "planner"), _token(url, "inspector")
    tally = Tally()
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(reader(url, until, tally, planner) for _ in range(readers)),
        *(writer(url, until, tally, point, inspector) for _ in range(writers)),
    )
    return tally


def build(root: Path) -> tuple[LocalCluster, LocalReplica, str]:
    primary = LocalCluster(root)
    primary.start()
    url = primary.url(DATABASE)
    create_database(url)
    store = Store(Settings(state_dir=root, database_url=url), url=url)
    store.migrate()
    print("loading the Chibi demo with its quarter of cases…", flush=True)
    load_demo(store)
    store.dispose()
    replica = LocalReplica(root, "bench")
    replica.create(primary)
    return primary, replica, url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=3, help="seconds of the same load, not counted")
    args = parser.parse_args()
    root = REPO / ".gridcase" / f"bench-replicas-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    primary: LocalCluster | None = None
    replica: LocalReplica | None = None
    try:
        primary, replica, url = build(root)
        base = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCASE_") and k != "DATABASE_URL"}
        base.update(DATABASE_URL=url, GRIDCASE_STATE_DIR=str(root), GRIDCASE_SCREEN_KEYS=SCREEN_KEY)
        results: dict[str, Tally] = {}
        for name, extra in (
            ("replica", {"GRIDCASE_READ_DATABASE_URL": replica.url(DATABASE)}),
            ("primary", {}),
        ):
            process, server = serve({**base, **extra}, workers=1)
            try:
                point = a_point(server)
                asyncio.run(phase(server, args.warmup, args.readers, args.writers, point))
                print(f"reads on the {name}, under a write load ({load()})…", flush=True)
                results[name] = asyncio.run(phase(server, args.seconds, args.readers, args.writers, point))
            finally:
                stop(process)
        intake: dict[int, Tally] = {}
        for workers in (1, 2):
            process, server = serve(base, workers=workers)
            try:
                point = a_point(server)
                asyncio.run(phase(server, args.warmup, 0, 2 * args.writers, point))
                print(f"intake at {workers} worker(s) ({load()})…", flush=True)
                intake[workers] = asyncio.run(phase(server, args.seconds, 0, 2 * args.writers, point))
            finally:
                stop(process)
        print()
        print(f"| reads on | reads/s | writes/s | errors | read from | {load()} |")
        for name, t in results.items():
            print(
                f"| {name} | {t.reads / args.seconds:.1f} | {t.writes / args.seconds:.1f} | {t.errors} | "
                f"{', '.join(f'{k} {v}' for k, v in sorted(t.sources.items()))} |"
            )
        on_replica, on_primary = results["replica"].reads, results["primary"].reads
        print(f"reads replica ÷ primary: {on_replica / max(1, on_primary):.2f}×")
        print(
            "writes during the reads, replica ÷ primary: "
            f"{results['replica'].writes / max(1, results['primary'].writes):.2f}×"
        )
        for workers, t in intake.items():
            print(f"intake, {workers} worker(s): {t.writes / args.seconds:.1f} reports/s, {t.errors} errors")
        print(f"intake 2 ÷ 1 workers: {intake[2].writes / max(1, intake[1].writes):.2f}×  ({load()})")
    finally:
        if replica is not None and replica.initialised:
            replica.stop()
        if primary is not None:
            primary.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
