"""Report intake over HTTP: the designs before this one against this one, measured in the same run.

Run: `.venv/bin/python bench/intake.py [--clients 16] [--seconds 20] [--processes 1,2]
[--designs filed,request,batched] [--baseline REV]`

The database `gridcase_bench_intake_template` of the managed cluster is recreated, migrated and
loaded with the Chibi demo (reference data, accounts and the seeded quarter of 7,534 cases); every
run starts on a fresh copy of it (`CREATE DATABASE ... TEMPLATE`), so no run inherits the cases
of the one before (the duplicate search reads the last 24 hours' cases). For each design and
number of server processes, `uvicorn` serves the app (`--workers N`) on a free port and
`--clients` concurrent HTTP/1.1 keep-alive connections post reports for `--seconds` after a short
warm-up, signed in as the demo inspector:

- JSON reports (`POST /api/v1/cases`, a point in the demo's grids, category 暴露垃圾 E0102);
- photo reports (multipart, one 2000×1500 JPEG of about 1 MB with GPS in its EXIF and no lon/lat:
  the position comes from the photo).

The client is raw asyncio streams sending prepared requests (a few µs of work per request), so
the cores go to the server and PostgreSQL, not to the load generator.

Designs (the older two are the code of `--baseline`, default the main of stop 18, exported with
`git archive` and served from there, on the same database):
- `filed`: as the issue measured it: the statement trigger upserts `stats_daily` in the request's
  transaction (0004's `stats_daily_add`, `ON CONFLICT DO UPDATE`); the public photo copy is the
  full-size image, decoded in full; the duplicate search casts every candidate to geography.
- `request`: the baseline as it is: deltas appended (0005) and folded every 2 s, JPEGs decoded at
  the public size, the duplicate search through the GiST index, but one transaction per report
  with about 14 round trips (token, account, category, savepoint, case, event, duplicates,
  commit, and 5 queries to read the case back for the answer).
- `batched`: this tree: the token checked from memory when it was checked in the last 2 s, the
  report prepared without the database (routing from the cached index), then filed by the
  intake writer together with every report that arrived meanwhile (one statement per table and
  one duplicate query per batch, one commit), and answered from the rows written.

Printed per run: reports/s acknowledged (HTTP 201), p50/p99 latency, errors, commits per report
(from `pg_stat_database`), and the CPU seconds of the server processes, of PostgreSQL and of the
client, per report. After each run every acknowledged report must be in `stats_daily` exactly
once (after a last fold). At the end, the ratios batched ÷ the others. Everything runs on this
machine: client, server and database share its 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

DATABASE = "gridcase_bench_intake"
TEMPLATE = "gridcase_bench_intake_template"
VERSIONS = REPO / "geo" / "migrations" / "versions"
BASELINE = "1a769f6"  # main at stop 18: per-request transactions (the `filed` and `request` designs)


# -- the two designs, inside the server process ------------------------------------------------
def make_app():  # noqa: ANN201 - the uvicorn factory: `bench/intake.py` is the server target too
    """The app for uvicorn (`--factory`), with the filed design's photo and duplicate code when asked."""
    if code := os.environ.get("BENCH_CODE"):
        # The baseline's packages, not this tree's: the editable install's finder goes first.
        sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
        sys.path.insert(0, code)
    import api.app
    from api.app import create_app

    print(f"bench: {os.environ.get('BENCH_DESIGN')} design served from {api.app.__file__}", file=sys.stderr)
    if os.environ.get("BENCH_DESIGN") == "filed":
        _install_filed()
    return create_app()


def _install_filed() -> None:
    """The public photo copy at full size and the duplicate search casting each row to geography
    (patched into the baseline's code, whose functions these replace)."""
    import functools
    from datetime import timedelta

    from sqlalchemy import func, select

    import api.app
    from geo.cases import service
    from geo.cases.workflow import OPEN
    from geo.photos import PhotoLimits
    from geo.store.models import Case, CaseLink

    api.app.PhotoLimits = functools.partial(PhotoLimits, public_max_edge=10**9)  # type: ignore[misc]

    def suggest_duplicates(session, ctx, case, category, now) -> None:  # noqa: ANN001
        radius = category.duplicate_radius_m or ctx.duplicate_radius_m
        window = category.duplicate_window_h or ctx.duplicate_window_h
        here = func.geography(
            func.ST_SetSRID(func.ST_MakePoint(case.routing["lon"], case.routing["lat"]), 4326)
        )
        rows = session.execute(
            select(
                Case.id, Case.reported_at, func.ST_Distance(func.geography(Case.location), here).label("m")
            ).where(
                Case.category_code == case.category_code,
                Case.id != case.id,
                Case.state.in_([s.value for s in OPEN]),
                Case.reported_at >= now - timedelta(hours=window),
                func.ST_DWithin(func.geography(Case.location), here, radius),
            )
        ).all()
        for other_id, reported_at, metres in rows:
            session.add(
                CaseLink(
                    case_id=case.id,
                    other_case_id=other_id,
                    distance_m=float(metres),
                    hours_apart=abs((now - reported_at).total_seconds()) / 3600,
                )
            )
        session.flush()

    service._suggest_duplicates = suggest_duplicates


def _revision(stem: str):  # noqa: ANN202 - a migration module
    spec = importlib.util.spec_from_file_location(f"bench_{stem}", VERSIONS / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trigger_function_sql(design: str) -> str:
    """The `stats_daily_add()` of 0004 (filed: upserts `stats_daily`) or of 0005 (appends)."""
    module = _revision("0004_stats_handling_facts" if design == "filed" else "0005_stats_cohort_append_only")
    statements: list[str] = []

    class Op:
        @staticmethod
        def execute(sql: str) -> None:
            statements.append(sql)

    module.op = Op
    module.create_functions()
    # Only the trigger function: the rebuild and the fold stay 0005's.
    return next(sql for sql in statements if "FUNCTION stats_daily_add()" in sql)


def use_trigger(store, design: str) -> None:  # noqa: ANN001
    """Install the design's trigger function."""
    from sqlalchemy import text

    with store.transaction() as s:
        s.execute(text(trigger_function_sql(design)))


# -- load ---------------------------------------------------------------------------------------
def photo_jpeg() -> bytes:
    """A 2000×1500 JPEG of about 1 MB (a textured scene: phone photos do not compress to nothing)
    with GPS EXIF inside the demo's grids."""
    import numpy as np
    from PIL import ExifTags, Image
    from PIL.TiffImagePlugin import IFDRational

    rng = np.random.default_rng(421281)
    x = np.linspace(0, 1, 2000)[None, :]
    y = np.linspace(0, 1, 1500)[:, None]
    scene = np.stack(
        [np.sin(x * 40 + y * 13) * 60 + 120 + 0 * y, np.cos(y * 30) * 50 + 110 + 0 * x, x * y * 200 + 30], -1
    )
    pixels = (scene + rng.normal(0, 10, scene.shape)).clip(0, 255).astype("uint8")
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (IFDRational(29), IFDRational(43), IFDRational(29)),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (IFDRational(113), IFDRational(54), IFDRational(0)),
        }
    )
    for quality in (92, 90, 88, 85, 80):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, exif=exif)
        if buffer.tell() <= 1_100_000:
            break
    return buffer.getvalue()


def points(store, n: int = 2000) -> list[tuple[float, float]]:  # noqa: ANN001
    """Report positions: the demo's case locations (all inside a grid)."""
    from sqlalchemy import text

    with store.sessions() as s:
        rows = s.execute(
            text("SELECT ST_X(location), ST_Y(location) FROM cases ORDER BY id LIMIT :n"), {"n": n}
        ).all()
    return [(float(x), float(y)) for x, y in rows]


@dataclass
class Result:
    design: str
    processes: int
    kind: str
    seconds: float
    ok: int
    errors: int
    latencies: list[float]
    server_cpu: float
    db_cpu: float
    client_cpu: float
    commits_per_report: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def per_report(self, cpu: float) -> float:
        """CPU milliseconds per acknowledged report."""
        return cpu / max(self.ok, 1) * 1000

    def line(self) -> str:
        """One console line."""
        return (
            f"{self.kind:5s} {self.design:7s} {self.processes} process(es): {self.rate:7.1f} reports/s, "
            f"p50 {self.pct(0.5):6.0f} ms, p99 {self.pct(0.99):6.0f} ms, {self.errors} errors, "
            f"{self.commits_per_report:.2f} commits/report; CPU ms "
            f"per report: server {self.per_report(self.server_cpu):5.1f}, PostgreSQL "
            f"{self.per_report(self.db_cpu):5.1f}, client {self.per_report(self.client_cpu):5.1f}"
        )

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def requests_for(token: str, kind: str, pts, photo: bytes | None) -> list[bytes]:  # noqa: ANN001
    """Every request a client will send, prepared once: HTTP/1.1 keep-alive POSTs."""
    head = (
        "POST /api/v1/cases HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: {kind}\r\nContent-Length: {length}\r\n\r\n"
    )
    if photo is not None:
        boundary = "benchboundary7MA4YWxkTrZu0gW"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="category"\r\n\r\nE0102\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nbench\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="p.jpg"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + photo
            + f"\r\n--{boundary}--\r\n".encode()
        )
        kind_header = f"multipart/form-data; boundary={boundary}"
        return [head.format(token=token, kind=kind_header, length=len(body)).encode() + body]
    out = []
    for lon, lat in pts:
        body = f'{{"category":"E0102","description":"bench","lon":{lon},"lat":{lat}}}'.encode()
        out.append(head.format(token=token, kind="application/json", length=len(body)).encode() + body)
    return out


async def load(
    port: int, prepared: list[bytes], clients: int, seconds: float, warmup: float, expect: int = 201
) -> tuple[int, int, list[float], float, int]:
    """`clients` keep-alive connections sending for warmup + seconds; counts only after the
    warm-up (the last value: every answer with the `expect`ed status, warm-up included)."""
    ok = errors = total = 0
    latencies: list[float] = []
    t0 = time.perf_counter()
    start, stop = t0 + warmup, t0 + warmup + seconds

    async def client(n: int) -> None:
        nonlocal ok, errors, total
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = n
        while (now := time.perf_counter()) < stop:
            t = time.perf_counter()
            writer.write(prepared[i % len(prepared)])
            i += clients
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            done = time.perf_counter()
            total += status == expect
            if now >= start and done <= stop:
                if status == expect:
                    ok += 1
                    latencies.append(done - t)
                else:
                    errors += 1
            elif status != expect:
                errors += 1
        writer.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return ok, errors, latencies, seconds, total


def cpu_of(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process (and its waited-for children) so far (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
    return out


def cpu_since(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds spent since `before` by `pids` (processes started since count from zero)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in cpu_of(pids).items())


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    out = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            out += tree(int(child))
    return out


def postgres_pids(store) -> list[int]:  # noqa: ANN001
    from sqlalchemy import text

    with store.sessions() as s:
        pid = s.scalar(text("SELECT pid FROM pg_stat_activity WHERE backend_type = 'postmaster' LIMIT 1"))
        if pid is None:  # the postmaster is not listed: the parent of a backend is
            me = s.scalar(text("SELECT pg_backend_pid()"))
            pid = int(Path(f"/proc/{me}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return tree(int(pid))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(
    url: str, design: str, processes: int, state: Path, baseline: Path
) -> tuple[subprocess.Popen, str, int]:
    """Start uvicorn on a free port (the baseline's code for the older designs); wait until
    /healthz answers."""
    import httpx

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "GRIDCASE_STATE_DIR": str(state), "BENCH_DESIGN": design}
    # `python -m` puts its working directory first on sys.path: the baseline's packages are
    # imported from there for the older designs (before this tree, installed editable).
    code = REPO if design == "batched" else baseline
    if design != "batched":
        env["BENCH_CODE"] = str(baseline)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "intake:make_app",
            "--factory",
            "--app-dir",
            str(REPO / "bench"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=code,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return server, base, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def fresh_copy(settings):  # noqa: ANN001, ANN201
    """A new database copied from the loaded template; its store and URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from geo.store import Store
    from geo.store.db import drop_database, resolve_database_url

    url = resolve_database_url(settings, database=DATABASE)
    drop_database(url)
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{DATABASE}" TEMPLATE "{TEMPLATE}"'))
    admin.dispose()
    return Store(settings, url=url), url


def commits(store) -> int:  # noqa: ANN001
    """Transactions committed in the bench database so far."""
    from sqlalchemy import text

    with store.sessions() as s:
        s.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(
            s.scalar(text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))
        )


def run_one(settings, design, processes, kind, args, pts, photo, state, baseline) -> Result:  # noqa: ANN001
    import httpx
    from sqlalchemy import text

    from geo import stats
    from geo.demo import DEMO_PASSWORD

    store, url = fresh_copy(settings)
    with store.sessions() as s:
        reports_before = s.scalar(text("SELECT count(*) FROM case_event WHERE action = 'report'"))
    use_trigger(store, design)
    server, base, port = serve(url, design, processes, state, baseline)
    try:
        token = httpx.post(
            base + "/api/v1/auth/token", data={"username": "inspector", "password": DEMO_PASSWORD}, timeout=30
        ).json()["access_token"]
        prepared = requests_for(token, kind, pts, photo)
        postmaster = postgres_pids(store)[0]
        commits0 = commits(store)
        cpu0 = (cpu_of(tree(server.pid)), cpu_of(tree(postmaster)), time.process_time())
        seconds = args.seconds if kind == "json" else args.photo_seconds
        # CPU is counted over warm-up and measurement alike; divided by the reports of both.
        ok, errors, latencies, measured, total = asyncio.run(
            load(port, prepared, args.clients, seconds, args.warmup)
        )
        cpu1 = (
            cpu_since(cpu0[0], tree(server.pid)),
            cpu_since(cpu0[1], tree(postmaster)),
            time.process_time() - cpu0[2],
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    # Read once the server's backends have exited (a backend reports its counts when it ends).
    committed = commits(store) - commits0 - 1  # less commits()'s own read
    with store.transaction() as s:
        stats.fold_rollup(s)
    with store.sessions() as s:
        reports = s.scalar(text("SELECT count(*) FROM case_event WHERE action = 'report'"))
        rolled = s.scalar(text("SELECT sum(reported) FROM stats_daily WHERE dim = 'all'"))
        left = s.scalar(text("SELECT count(*) FROM stats_delta"))
    store.dispose()
    # Every acknowledged report (and no other) is in the rollup once, whichever design wrote it.
    assert reports - reports_before >= total and rolled == reports and left == 0, (reports, rolled, left)
    share = ok / max(total, 1)  # the measured reports' part of the CPU
    return Result(
        design,
        processes,
        kind,
        measured,
        ok,
        errors,
        latencies,
        cpu1[0] * share,
        cpu1[1] * share,
        cpu1[2] * share,
        committed / max(total, 1),
    )


def export(rev: str, into: Path) -> Path:
    """The tree of a commit, as files (`git archive`), to serve the older designs from."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per JSON run")
    parser.add_argument("--photo-seconds", type=float, default=20.0, help="measured seconds per photo run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--designs", default="filed,request,batched")
    parser.add_argument("--kinds", default="json,photo")
    parser.add_argument("--baseline", default=BASELINE, help="the commit the older designs are served from")
    args = parser.parse_args()

    from geo.demo import load_demo
    from geo.settings import Settings
    from geo.store import Store
    from geo.store.db import create_database, drop_database, resolve_database_url

    settings = Settings()
    template = resolve_database_url(settings, database=TEMPLATE)
    drop_database(template)
    create_database(template)
    store = Store(settings, url=template)
    store.migrate()
    t = time.perf_counter()
    load_demo(store)
    print(f"demo loaded in {time.perf_counter() - t:.0f} s", flush=True)
    pts = points(store)
    store.dispose()
    photo = photo_jpeg()
    print(f"photo: 2000×1500 JPEG, {len(photo):,} bytes; {args.clients} clients", flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as old:
        baseline = export(args.baseline, Path(old))
        for kind in args.kinds.split(","):
            for processes in (int(p) for p in args.processes.split(",")):
                for design in args.designs.split(","):
                    photo_or_none = photo if kind == "photo" else None
                    r = run_one(
                        settings, design, processes, kind, args, pts, photo_or_none, Path(state), baseline
                    )
                    results.append(r)
                    print(r.line(), flush=True)
    print("\nrollup check passed: after each run every acknowledged report is in stats_daily once")
    print(
        "\n| kind | design | processes | reports/s | p50 ms | p99 ms | errors | commits/report "
        "| server CPU ms/report | PostgreSQL CPU ms/report | client CPU ms/report |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r.kind} | {r.design} | {r.processes} | {r.rate:,.1f} | {r.pct(0.5):,.0f} | "
            f"{r.pct(0.99):,.0f} | {r.errors} | {r.commits_per_report:.2f} | "
            f"{r.per_report(r.server_cpu):.1f} | {r.per_report(r.db_cpu):.1f} | "
            f"{r.per_report(r.client_cpu):.2f} |"
        )
    by = {(r.kind, r.design, r.processes): r for r in results}
    for (kind, design, processes), r in by.items():
        for other in ("filed", "request"):
            if design == "batched" and (kind, other, processes) in by:
                before = by[(kind, other, processes)]
                print(
                    f"{kind}, {processes} process(es): batched ÷ {other} = {r.rate / before.rate:.1f}× "
                    f"reports/s, p99 {r.pct(0.99):,.0f} ms vs {before.pct(0.99):,.0f} ms"
                )


if __name__ == "__main__":
    main()
