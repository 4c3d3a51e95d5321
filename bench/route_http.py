"""`GET /api/v1/route` over HTTP: the endpoint of `--baseline` against this tree's, in the same run.

Run: `.venv/bin/python bench/route_http.py [--connections 16] [--seconds 15] [--processes 1,2]`

The Chibi demo is loaded into `gridcase_bench_route` of the managed cluster (reference data only,
no cases: a lookup reads none). For each design and number of server processes `uvicorn` serves
the app (`--workers N`, no access log) and `--connections` keep-alive connections (raw asyncio
sockets sending prepared requests, as `bench/intake.py` does) ask for points inside the demo's
grids, with and without a category, for `--seconds` after a warm-up:
- `threadpool`: the baseline's sync endpoint: each request handed to a worker thread and back;
- `loop`: this tree's: the decision made on the event loop when the cached index answers (it
  does, unless reference data changed in the last second), serialised once.

Printed per run: requests/s, p50/p99 latency, errors, and server CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import intake  # noqa: E402 - the intake bench's server, client and CPU helpers

DATABASE = "gridcase_bench_route"
BASELINE = "4e950c7"  # main before the endpoint left the threadpool


def route_requests(points: list[tuple[float, float]]) -> list[bytes]:
    """GETs for each point, every other one with a category (the rules for it then run)."""
    out = []
    for n, (lon, lat) in enumerate(points):
        query = f"lon={lon:.6f}&lat={lat:.6f}" + ("&category=E0102" if n % 2 else "")
        out.append(f"GET /api/v1/route?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return out


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


def run(url: str, design: str, processes: int, args, prepared, state: Path, baseline: Path):  # noqa: ANN001, ANN201
    code = "batched" if design == "loop" else "request"  # this tree, or the baseline's as it is
    server, _, port = intake.serve(url, code, processes, state, baseline)
    try:
        cpu0 = intake.cpu_of(intake.tree(server.pid))
        ok, errors, latencies, seconds, _ = asyncio.run(
            intake.load(port, prepared, args.connections, args.seconds, args.warmup, expect=200)
        )
        cpu = intake.cpu_since(cpu0, intake.tree(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=60)
    latencies.sort()
    total = ok + errors
    line = (
        f"| {design} | {processes} | {ok / seconds:,.0f} | {latencies[len(latencies) // 2] * 1000:.1f} | "
        f"{latencies[int(0.99 * (len(latencies) - 1))] * 1000:.1f} | {errors} | "
        f"{cpu / max(total, 1) * 1e6 * (args.seconds / (args.seconds + args.warmup)):.0f} |"
    )
    return ok / seconds, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--baseline", default=BASELINE, help="the commit of the threadpool endpoint")
    args = parser.parse_args()

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
    prepared = route_requests(grid_points(store))
    store.dispose()
    print(f"{len(prepared)} points; {args.connections} connections", flush=True)
    rates: dict[tuple[str, int], float] = {}
    lines = []
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as old:
        baseline = intake.export(args.baseline, Path(old))
        for processes in (int(p) for p in args.processes.split(",")):
            for design in ("threadpool", "loop"):
                rate, line = run(url, design, processes, args, prepared, Path(state), baseline)
                rates[(design, processes)] = rate
                lines.append(line)
                print(line, flush=True)
    print("\n| endpoint | processes | requests/s | p50 ms | p99 ms | errors | server CPU µs/request |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(lines))
    for processes in sorted({p for _, p in rates}):
        if ("loop", processes) in rates and ("threadpool", processes) in rates:
            ratio = rates[("loop", processes)] / rates[("threadpool", processes)]
            print(f"{processes} process(es): loop ÷ threadpool = {ratio:.2f}× requests/s")


if __name__ == "__main__":
    main()
