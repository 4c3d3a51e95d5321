"""The lookup endpoints over HTTP: `--baseline`'s (today's main) against this tree's, in the same run.

Run: `.venv/bin/python bench/route_http.py` (about 6 minutes on a quiet machine), or `--quick`
(3 s runs, one repeat: about 2 minutes); options: `--connections 16 --seconds 6 --repeats 3
--processes 1,2 --batch-points 1000 --batch-connections 4 --designs main,fast,fast+log`.

The Chibi demo's reference data and accounts (no cases: a lookup reads none) are loaded into
`gridcase_bench_route` of the managed cluster. For each design and number of server processes,
`uvicorn` serves the app with `--workers N` (N processes accepting on the one socket uvicorn's
parent binds, as `gridcase serve --workers N` will; no access log, httptools and uvloop as uvicorn
picks them when installed) and `--connections` keep-alive connections (raw asyncio sockets on
uvloop sending prepared requests, so the client costs a few µs per request) ask, for `--seconds`
after a warm-up:
- `GET /api/v1/route`: a point inside a demo grid, every other one with a category (its rules
  then run): requests/s;
- `POST /api/v1/route/batch`: `--batch-points` such points as CSV, signed in as the demo planner:
  points/s.

Designs: `main`, the tree of `--baseline` (`git archive`, served from there on the same database:
the endpoint decides on the event loop, behind FastAPI's routing and dependencies); `fast`, this
tree (`api/route_fast.py`: a plain lookup is answered by an ASGI middleware; the router dependency
async, so no worker-thread hop per request; the loaded index frozen out of the garbage
collector's full passes); `fast+log`, this tree with uvicorn's access log on at `gridcase
serve`'s level (info), written to a file. Before the measured runs, every design answers the
same 200 lookups and one batch: bodies must be equal byte for byte, and so must the headers
(less `date` and the answering worker's pid).

Designs alternate within each repeat, so a change in the machine's load meets both. Printed: the
load average before each run, then per run requests/s (points/s), p50/p99 latency, errors, the
server's CPU per request (per point: user + system of uvicorn's processes, from /proc) and the
client's; at the end the ratios fast ÷ main (median over the repeats) and 2 ÷ 1 processes. The
client, the server and PostgreSQL share this machine's cores: on a busy machine every figure is low.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import intake  # noqa: E402 - the intake bench's `git archive` export, app factory and /proc CPU helpers

DATABASE = "gridcase_bench_route"
BASELINE = "0947b97"  # main before the fast path (the endpoint on the event loop, behind FastAPI)
DESIGNS = ("main", "fast", "fast+log")
QUIET = ["--log-level", "warning", "--no-access-log"]


# -- requests -----------------------------------------------------------------------------------
def route_requests(points: list[tuple[float, float]]) -> list[bytes]:
    """GETs for each point, every other one with a category (the rules for it then run)."""
    out = []
    for n, (lon, lat) in enumerate(points):
        query = f"lon={lon:.6f}&lat={lat:.6f}" + ("&category=E0102" if n % 2 else "")
        out.append(f"GET /api/v1/route?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return out


def batch_request(points: list[tuple[float, float]], token: str) -> bytes:
    """One POST of the points as CSV, every other one with a category."""
    rows = "".join(f"{lon:.6f},{lat:.6f},{'E0102' if n % 2 else ''}\n" for n, (lon, lat) in enumerate(points))
    body = f"lon,lat,category\n{rows}".encode()
    return (
        f"POST /api/v1/route/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: text/csv\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def grid_points(store, n: int = 2000) -> list[tuple[float, float]]:  # noqa: ANN001
    """Points inside the demo's grids (each grid's point on surface, nudged)."""
    from sqlalchemy import text

    with store.sessions() as s:
        rows = s.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM area "
                "WHERE level = 'grid') g"
            )
        ).all()
    return [(float(x) + (i % 7) * 1e-6, float(y)) for i in range(n) for x, y in [rows[i % len(rows)]]]


# -- the client ---------------------------------------------------------------------------------
async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """Status, head and body of one HTTP/1.1 answer (by Content-Length, or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    if b"content-length:" in lowered:
        length = int(lowered.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        return status, head, await reader.readexactly(length)
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
        chunks.append(await reader.readexactly(size + 2))
        if size == 0:
            return status, head, b"".join(c[:-2] for c in chunks)


@dataclass
class Load:
    ok: int = 0
    errors: int = 0
    total: int = 0  # answers during warm-up and measurement
    latencies: list[float] = field(default_factory=list)


async def load(port: int, prepared: list[bytes], connections: int, seconds: float, warmup: float) -> Load:
    """`connections` keep-alive connections sending for warmup + seconds; the answers completed in
    the measured seconds are counted (a batch sent during the warm-up and answered after it too)."""
    result = Load()
    t0 = time.perf_counter()
    start, stop = t0 + warmup, t0 + warmup + seconds

    async def client(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        i = n
        while (sent := time.perf_counter()) < stop:
            writer.write(prepared[i % len(prepared)])
            i += connections
            status, _, _ = await read_answer(reader)
            done = time.perf_counter()
            result.total += 1
            if start <= done <= stop:
                if status == 200:
                    result.ok += 1
                    result.latencies.append(done - sent)
                else:
                    result.errors += 1
            elif status != 200:
                result.errors += 1
        writer.close()

    await asyncio.gather(*(client(n) for n in range(connections)))
    return result


#: Headers that differ between two answers of the same design: the time, and the process that
#: answered (`X-Gridcase-Worker`, a pid, since the workers change).
PER_ANSWER = (b"date:", b"x-gridcase-worker:")


async def answers(port: int, prepared: list[bytes]) -> list[tuple[int, bytes, bytes]]:
    """Each request's status, headers (less `PER_ANSWER`) and body, on one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    out = []
    for request in prepared:
        writer.write(request)
        status, head, body = await read_answer(reader)
        kept = (line for line in head.lower().split(b"\r\n") if line and not line.startswith(PER_ANSWER))
        lines = sorted(kept)
        out.append((status, b"\n".join(lines), body))
    writer.close()
    return out


def run_loop(coroutine):  # noqa: ANN001, ANN201
    """On uvloop when installed (as the server's loop is): the client's own cost stays small."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# -- the server ---------------------------------------------------------------------------------
def serve(url: str, design: str, processes: int, state: Path, baseline: Path) -> tuple[subprocess.Popen, int]:
    """uvicorn with `--workers processes` on a free port, this tree's code or the baseline's."""
    import httpx

    port = intake.free_port()
    env = {**os.environ, "DATABASE_URL": url, "GRIDCASE_STATE_DIR": str(state), "BENCH_DESIGN": design}
    ours = design.startswith("fast")
    if not ours:
        env["BENCH_CODE"] = str(baseline)  # intake.make_app imports the app from there
    # `fast+log`: uvicorn's access log at `gridcase serve`'s level, written to a file (as to a
    # journal); the others log only warnings and have no access log.
    logging = ["--log-level", "info"] if design == "fast+log" else QUIET
    log = (state / f"uvicorn-{design}-{processes}.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "intake:make_app", "--factory", "--app-dir", str(REPO / "bench")]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", str(processes), *logging],
        env=env,
        cwd=REPO if ours else baseline,
        stdout=log,
        stderr=log if design == "fast+log" else None,
    )
    log.close()
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def token_for(port: int) -> str:
    import httpx

    from geo.demo import DEMO_PASSWORD

    answer = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/auth/token",
        data={"username": "planner", "password": DEMO_PASSWORD},
        timeout=30,
    )
    return answer.json()["access_token"]


@dataclass
class Run:
    design: str
    processes: int
    kind: str  # "route" (requests) or "batch" (points)
    per_request: int  # points per request
    rate: float
    p50: float
    p99: float
    errors: int
    server_us: float  # per request (route) or per point (batch)
    client_us: float
    load: float

    def line(self) -> str:
        unit = "requests/s" if self.kind == "route" else "points/s"
        per = "request" if self.kind == "route" else "point"
        return (
            f"| {self.kind} | {self.design} | {self.processes} | {self.rate:,.0f} {unit} | {self.p50:.1f} | "
            f"{self.p99:.1f} | {self.errors} | {self.server_us:.0f} µs/{per} | {self.client_us:.0f} | "
            f"{self.load:.1f} |"
        )


def measure(kind, design, processes, server, port, prepared, per_request, connections, args) -> Run:  # noqa: ANN001
    load_average = os.getloadavg()[0]
    seconds = args.seconds
    server_cpu0 = intake.cpu_of(intake.tree(server.pid))
    client0 = time.process_time()
    result = run_loop(load(port, prepared, connections, seconds, args.warmup))
    client = time.process_time() - client0
    server_cpu = intake.cpu_since(server_cpu0, intake.tree(server.pid))
    latencies = sorted(result.latencies) or [float("nan")]
    work = max(result.total, 1) * per_request  # CPU is counted over warm-up and measurement alike
    return Run(
        design,
        processes,
        kind,
        per_request,
        result.ok * per_request / seconds,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        result.errors,
        server_cpu / work * 1e6,
        client / work * 1e6,
        load_average,
    )


def same_answers(port: int, lookups: list[bytes], batch: bytes, reference: dict) -> str:  # noqa: ANN001
    """Check this server's answers against the first design's (identical bytes, headers less date)."""
    got = run_loop(answers(port, lookups[:200] + [batch]))
    if "answers" not in reference:
        reference["answers"] = got
        assert all(status == 200 for status, _, _ in got), [a for a in got if a[0] != 200][:1]
        return "reference answers taken"
    for n, (mine, theirs) in enumerate(zip(got, reference["answers"], strict=True)):
        assert mine == theirs, f"answer {n} differs:\n{theirs}\n{mine}"
    return "answers identical to the first design's (bodies and headers, less date)"


def serve_and_measure(url, design, processes, args, state, baseline, points, checks) -> list[Run]:  # noqa: ANN001
    """One server: its answers checked (once per design), then the lookup and the batch loads."""
    server, port = serve(url, design, processes, state, baseline)
    try:
        lookups = route_requests(points)
        batch = batch_request(points[: args.batch_points], token_for(port))
        if design not in checks.setdefault("designs", set()):
            checks["designs"].add(design)
            print(f"{design}: {same_answers(port, lookups, batch, checks)}", flush=True)
        else:  # the snapshot loaded and the first batch served before the clock starts
            run_loop(answers(port, lookups[:20] + [batch]))
        runs = []
        for kind, prepared, per, connections in (
            ("route", lookups, 1, args.connections),
            ("batch", [batch], args.batch_points, args.batch_connections),
        ):
            runs.append(measure(kind, design, processes, server, port, prepared, per, connections, args))
            print(runs[-1].line(), flush=True)
        return runs
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--batch-points", type=int, default=1000)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--baseline", default=BASELINE, help="the commit the `main` design is served from")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.repeats = 3.0, 1.0, 1

    from geo.demo import load_demo
    from geo.settings import Settings
    from geo.store import Store
    from geo.store.db import create_database, drop_database, resolve_database_url

    settings = Settings()
    url = resolve_database_url(settings, database=DATABASE)
    drop_database(url)
    create_database(url)
    store = Store(settings, url=url)
    store.migrate()
    load_demo(store, cases=False)
    points = grid_points(store)
    store.dispose()
    print(
        f"{len(points)} lookups, batches of {args.batch_points} points; {args.connections} connections; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    runs: list[Run] = []
    checks: dict = {}  # the first design's answers, and the designs checked against them
    header = (
        "| endpoint | design | processes | rate | p50 ms | p99 ms | errors | server CPU | "
        "client CPU µs | load average |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as old:
        baseline = intake.export(args.baseline, Path(old))
        for _ in range(args.repeats):
            for processes in (int(p) for p in args.processes.split(",")):
                for design in args.designs.split(","):
                    where = (Path(state), baseline)
                    runs += serve_and_measure(url, design, processes, args, *where, points, checks)
    summarise(runs)


@dataclass
class Median:
    rate: float
    p99: float
    server_us: float


def summarise(runs: list[Run]) -> None:
    """The medians over the repeats, then their ratios: fast ÷ main, 2 ÷ 1 processes, the log's cost."""
    print("\nmedians over the repeats:\n| endpoint | design | processes | rate | p99 ms | server CPU µs |")
    print("| --- | --- | --- | --- | --- | --- |")
    median: dict[tuple[str, str, int], Median] = {}
    for key in sorted({(r.kind, r.design, r.processes) for r in runs}, key=lambda k: (k[0] != "route", k)):
        group = [r for r in runs if (r.kind, r.design, r.processes) == key]
        m = Median(*(statistics.median(getattr(r, a) for r in group) for a in ("rate", "p99", "server_us")))
        median[key] = m
        unit = "requests/s" if key[0] == "route" else "points/s"
        print(f"| {key[0]} | {key[1]} | {key[2]} | {m.rate:,.0f} {unit} | {m.p99:.1f} | {m.server_us:.0f} |")
    for kind in ("route", "batch"):
        per = "request" if kind == "route" else "point"
        for processes in sorted({p for k, _, p in median if k == kind}):
            new, old = median.get((kind, "fast", processes)), median.get((kind, "main", processes))
            if new and old and old.rate > 0:
                print(
                    f"{kind}, {processes} process(es): fast ÷ main = {new.rate / old.rate:.2f}× rate; "
                    f"server CPU {new.server_us:.0f} vs {old.server_us:.0f} µs per {per}"
                )
        for design in DESIGNS:
            one, two = median.get((kind, design, 1)), median.get((kind, design, 2))
            if one and two and one.rate > 0:
                print(f"{kind}, {design}: 2 ÷ 1 processes = {two.rate / one.rate:.2f}×")
        logged, quiet = median.get((kind, "fast+log", 1)), median.get((kind, "fast", 1))
        if logged and quiet:
            extra = logged.server_us - quiet.server_us
            print(f"{kind}, 1 process: the access log costs {extra:.0f} µs of server CPU per {per}")


if __name__ == "__main__":
    main()
