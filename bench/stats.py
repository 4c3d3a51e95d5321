"""Indicator speed at 1M and 10M cases: the daily rollup vs the same SQL over the raw event log.

Run: `.venv/bin/python bench/stats.py [--sizes 1000000,10000000] [--grids 263,10000] [--repeat 5]`

For each grid count, the database `gridcase_bench_stats` of the managed cluster is recreated and
migrated to head, then filled in steps up to each size. Everything is generated in the database
(INSERT ... SELECT generate_series, values from hashint8 of the case id: deterministic), by two
connections in parallel (one per core), first into an unlogged staging table, then into `cases`
and `case_event`:
- cases spread evenly over ten years (2016–2025), so a month holds 1/120 of the history; each
  case gets a grid (community = 10 grids, street = 10 communities), one of 40 categories, one of
  100 units, an inspector per two grids, a time limit of 1–5 days and an outcome;
- a compact event log of 4.1 events per case on average: report, dispatch, handle, close (94%);
  2% returned and re-dispatched, 1% failing the on-site check and handled again, 3% extended,
  1.5% rejected (report only). Verify and file events are not generated (they would count like
  report and add two rows per case).
Foreign keys and triggers are off while loading (session_replication_role = replica); the
rollups (`stats_daily`, counts per day and group; `stats_handling`, one row per handling) are then
rebuilt from the whole log with `stats_daily_rebuild()` (timed), and the cost of the trigger path
is measured on a batch of new events inserted normally: appending deltas and folding them (this
branch) against upserting the rollup in the writer's transaction (today's design, 0004).

Measured, warm, median of --repeat runs: the monthly ranking (`monthly_ranking`: four indicator
queries) and one month's stats (`indicators`, no grouping and by grid), from the rollup (folded
rows plus unfolded deltas); and the same calls with `source="events"` (the same definitions over
case_event ⋈ cases, through the index on `case_event.at`: the obvious way to write them), run once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from geo import stats  # noqa: E402
from geo.settings import Settings  # noqa: E402
from geo.store import Store  # noqa: E402
from geo.store.db import drop_database, resolve_database_url  # noqa: E402

DATABASE = "gridcase_bench_stats"
SPAN_START = "2016-01-01 00:00+08"
SPAN_DAYS = 3653  # 2016-01-01 .. 2025-12-31
MONTH = date(2025, 6, 1)

STAGE = """
INSERT INTO bench_stage
SELECT i, g, k, u, outcome, reported_at,
       reported_at + make_interval(mins => 20 + (h2 % 90)) AS dispatched_at,
       limit_h,
       -- handled after 20%–125% of the limit: about one in five late
       reported_at + make_interval(mins => 20 + (h2 % 90))
           + make_interval(secs => limit_h * 3600 * (0.2 + (h3 % 1000) / 950.0)) AS handled_at
FROM (
    SELECT i, g, k, (g * 7 + k) % 100 AS u, h1, h2, h3,
           CASE WHEN h1 % 1000 < 15 THEN 'rejected'
                WHEN h1 % 1000 < 955 THEN 'closed'
                WHEN h1 % 1000 < 975 THEN 'handled'
                ELSE 'dispatched' END AS outcome,
           CAST(:span_start AS timestamptz)
               + make_interval(secs => (i - :lo)::float8 / (:hi - :lo + 1) * :span_days * 86400
                               + (h2 % 3600)) AS reported_at,
           24 * (1 + k % 5) AS limit_h
    FROM (
        SELECT i, abs(hashint8(i)) % :grids AS g, abs(hashint8(i + 7919)) % 40 AS k,
               abs(hashint8(i * 31 + 1)) AS h1, abs(hashint8(i * 31 + 2)) AS h2,
               abs(hashint8(i * 31 + 3)) AS h3
        FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i
    ) a
) b
"""

CASES = """
INSERT INTO cases (id, tracking_code, category_code, description, channel, reported_by,
                   reported_at, reported_crs, state, grid_code, community_code, street_code,
                   district_code, unit_code, cooperating_unit_codes, deadline_at, closed_at,
                   dispatched_at, time_limit, time_limit_unit, version, extensions,
                   extension_requested, created_at, updated_at, location)
SELECT i, 'B' || i, 'B' || lpad(k::text, 2, '0'), '', 'inspector', 'insp' || (g / 2),
       reported_at, 'wgs84', outcome, grid, left(grid, 12), left(grid, 9), '421281',
       'U' || lpad(u::text, 3, '0'), '{}',
       CASE WHEN outcome <> 'rejected' THEN dispatched_at
            + make_interval(hours => limit_h * CASE WHEN i % 100 < 3 THEN 2 ELSE 1 END) END,
       CASE WHEN outcome = 'closed' THEN handled_at + interval '2 hours'
                 + CASE WHEN i % 100 = 50 THEN interval '6 hours' ELSE interval '0' END END,
       CASE WHEN outcome <> 'rejected' THEN dispatched_at END,
       limit_h, 'urgent_hours', 1, CASE WHEN i % 100 < 3 THEN 1 ELSE 0 END, false,
       reported_at, reported_at,
       ST_SetSRID(ST_MakePoint(113.85 + (g % 100) * 0.0006, 29.68 + (g / 100) * 0.0006), 4326)
FROM (SELECT s.*, '421281' || lpad((g / 100 + 1)::text, 3, '0')
                  || lpad((g / 10 % 10 + 1)::text, 3, '0') || lpad((g % 10 + 1)::text, 3, '0')
                  AS grid
      FROM bench_stage s WHERE i BETWEEN :lo AND :hi) s
"""

# One row per event; `keep` says which apply to the case. Returned cases are re-dispatched an
# hour later; cases failing the check (i % 100 = 50) are handled again 4 hours later.
EVENTS = """
INSERT INTO case_event (case_id, at, action, from_state, to_state, unit_code)
SELECT s.i, v.at, v.action, v.from_state, v.to_state, 'U' || lpad(s.u::text, 3, '0')
FROM bench_stage s
CROSS JOIN LATERAL (VALUES
    ('report', s.reported_at, NULL, 'reported', true),
    ('reject', s.reported_at + interval '10 minutes', 'reported', 'rejected',
     s.outcome = 'rejected'),
    ('dispatch', s.dispatched_at, 'filed', 'dispatched', s.outcome <> 'rejected'),
    ('return', s.dispatched_at + interval '30 minutes', 'dispatched', 'returned',
     s.outcome <> 'rejected' AND s.i % 50 = 7),
    ('redispatch', s.dispatched_at + interval '90 minutes', 'returned', 'dispatched',
     s.outcome <> 'rejected' AND s.i % 50 = 7),
    ('approve_extension', s.dispatched_at + interval '3 hours', 'dispatched', 'dispatched',
     s.outcome <> 'rejected' AND s.i % 100 < 3),
    ('handle', s.handled_at, 'signed', 'handled', s.outcome IN ('closed', 'handled')),
    ('check_fail', s.handled_at + interval '1 hour', 'handled', 'rework',
     s.outcome = 'closed' AND s.i % 100 = 50),
    ('handle', s.handled_at + interval '6 hours', 'rework', 'handled',
     s.outcome = 'closed' AND s.i % 100 = 50),
    ('close', s.handled_at + interval '2 hours'
              + CASE WHEN s.i % 100 = 50 THEN interval '6 hours' ELSE interval '0' END,
     'checked', 'closed', s.outcome = 'closed')
) AS v(action, at, from_state, to_state, keep)
WHERE s.i BETWEEN :lo AND :hi AND v.keep
"""


Job = list[tuple[str, dict[str, object]]]  # statements and their parameters, in order


def on_two_connections(url: str, setting: str, jobs: tuple[Job, Job]) -> None:
    """Run two jobs at once, each in one transaction on its own connection (two cores), after
    `setting` (a SET statement); the first error of either is raised."""
    errors: list[BaseException] = []

    def run(job: Job) -> None:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(setting))
                for sql, params in job:
                    conn.execute(text(sql), params)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def parallel(url: str, sql: str, lo: int, hi: int, **params: object) -> None:
    """Run `sql` over [lo, hi] split in two halves on two connections at once (two cores)."""
    mid = (lo + hi) // 2
    on_two_connections(
        url,
        "SET session_replication_role = replica",
        ([(sql, {"lo": lo, "hi": mid, **params})], [(sql, {"lo": mid + 1, "hi": hi, **params})]),
    )


def reference_rows(store: Store) -> None:
    """Units and categories the generated cases refer to (labels in reports)."""
    with store.transaction() as s:
        s.execute(
            text(
                "INSERT INTO unit (code, name, kind) SELECT 'U' || lpad(n::text, 3, '0'), "
                "'单位 ' || n, 'bureau' FROM generate_series(0, 99) n ON CONFLICT DO NOTHING"
            )
        )
        s.execute(
            text(
                "INSERT INTO category (code, kind, class_code, subclass_code, name, time_limit, "
                "time_limit_unit) SELECT 'B' || lpad(n::text, 2, '0'), 'event', '01', "
                "lpad(n::text, 2, '0'), '类别 ' || n, 24 * (1 + n % 5), 'urgent_hours' "
                "FROM generate_series(0, 39) n ON CONFLICT DO NOTHING"
            )
        )


def grow(store: Store, url: str, lo: int, hi: int, grids: int) -> dict[str, float]:
    """Generate cases lo..hi with their events; rebuild the rollup. Returns timings (s)."""
    timings: dict[str, float] = {}
    with store.transaction() as s:
        s.execute(text("DROP TABLE IF EXISTS bench_stage"))
        s.execute(
            text(
                "CREATE UNLOGGED TABLE bench_stage (i bigint, g int, k int, u int, "
                "outcome text, reported_at timestamptz, dispatched_at timestamptz, "
                "limit_h int, handled_at timestamptz)"
            )
        )
    # Secondary indexes are dropped while loading and built again after (as a bulk import would).
    with store.transaction() as s:
        indexes = s.execute(
            text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename IN "
                "('cases', 'case_event') AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                "WHERE c.conname = i.indexname)"
            )
        ).all()
        for name, _ in indexes:
            s.execute(text(f'DROP INDEX "{name}"'))
    t = time.perf_counter()
    parallel(url, STAGE, lo, hi, grids=grids, span_start=SPAN_START, span_days=SPAN_DAYS)
    parallel(url, CASES, lo, hi)
    timings["cases"] = time.perf_counter() - t
    t = time.perf_counter()
    parallel(url, EVENTS, lo, hi)
    timings["events"] = time.perf_counter() - t
    t = time.perf_counter()
    half = (len(indexes) + 1) // 2
    on_two_connections(
        url,
        "SET maintenance_work_mem = '1GB'",
        ([(d, {}) for _, d in indexes[:half]], [(d, {}) for _, d in indexes[half:]]),
    )
    timings["indexes"] = time.perf_counter() - t
    with store.transaction() as s:
        s.execute(text("DROP TABLE bench_stage"))
    t = time.perf_counter()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE cases"))
        conn.execute(text("VACUUM ANALYZE case_event"))
    timings["vacuum"] = time.perf_counter() - t
    t = time.perf_counter()
    with store.transaction() as s:
        s.execute(text("SET LOCAL work_mem = '512MB'"))
        rows = stats.rebuild_rollup(s)
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE stats_daily"))
    engine.dispose()
    timings["rollup"] = time.perf_counter() - t
    timings["rollup_rows"] = rows
    return timings


def trigger_cost(store: Store, first_id: int, n: int = 10_000) -> dict[str, float]:
    """µs per event of the action path: n new cases' report+dispatch+handle events inserted
    normally, in one statement per 999 events like a bulk path's batches (the app writes one
    per statement), on three days: with this branch's trigger (appending deltas) and then the
    fold of those deltas, with today's trigger (0004: upserting `stats_daily` in the writer's
    transaction), and with no trigger. Rolled back."""
    from intake import trigger_function_sql

    out: dict[str, float] = {}
    with store.sessions() as s:
        s.execute(
            text(
                "INSERT INTO cases (id, tracking_code, category_code, description, channel, "
                "reported_by, reported_at, reported_crs, state, grid_code, community_code, "
                "street_code, unit_code, cooperating_unit_codes, deadline_at, version, extensions, "
                "extension_requested, location) SELECT i, 'T' || i, 'B00', '', 'inspector', 'insp1', "
                "timestamptz '2025-06-10 09:00+08' + make_interval(mins => (i % 600)::int), "
                "'wgs84', 'handled', '421281001001001', '421281001001', '421281001', 'U001', '{}', "
                "timestamptz '2025-06-12 09:00+08', 1, 0, false, "
                "ST_SetSRID(ST_MakePoint(113.9, 29.7), 4326) "
                "FROM generate_series(CAST(:a AS bigint), CAST(:b AS bigint)) i"
            ),
            {"a": first_id, "b": first_id + n // 3},
        )

        def insert_events(day: str) -> tuple[float, int]:
            """Report, dispatch and handle events of every new case on `day`, 999 a statement."""
            t = time.perf_counter()
            events = 0
            for start in range(first_id, first_id + n // 3, 333):
                result = s.execute(
                    text(
                        "INSERT INTO case_event (case_id, at, action, to_state, unit_code) "
                        "SELECT i, CAST(:day AS timestamptz) + make_interval(mins => "
                        "(i % 600)::int + m), a, a, 'U001' "
                        "FROM generate_series(CAST(:a AS bigint), CAST(:b AS bigint)) i, "
                        "(VALUES ('report', 0), ('dispatch', 30), ('handle', 300)) v(a, m)"
                    ),
                    {"day": day, "a": start, "b": min(start + 332, first_id + n // 3)},
                )
                events += result.rowcount
            return time.perf_counter() - t, events

        elapsed, events = insert_events("2025-06-10 09:00+08")
        out["append"] = elapsed / events * 1e6
        t = time.perf_counter()
        stats.fold_rollup(s)
        out["fold"] = (time.perf_counter() - t) / events * 1e6
        s.execute(text(trigger_function_sql("today")))
        elapsed, _ = insert_events("2025-06-11 09:00+08")
        out["upsert"] = elapsed / events * 1e6
        s.execute(text("ALTER TABLE case_event DISABLE TRIGGER case_event_stats_daily"))
        elapsed, _ = insert_events("2025-06-12 09:00+08")
        out["none"] = elapsed / events * 1e6
        s.rollback()
    return out


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    """Median seconds of `repeat` calls (after one warm-up call)."""
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def measure(
    store: Store, repeat: int, naive: bool, naive_calls: tuple[str, ...] | None = None
) -> dict[str, tuple[float, float | None]]:
    """Rollup and raw-log timings of the three calls, and check they give the same numbers."""
    end = date(2025, 6, 30)
    calls = {
        "monthly ranking": lambda s, src: stats.monthly_ranking(s, MONTH, source=src),
        "one month, totals": lambda s, src: stats.indicators(s, start=MONTH, end=end, source=src),
        "one month, by grid": lambda s, src: stats.indicators(
            s, start=MONTH, end=end, group_by="grid", source=src
        ),
    }
    out: dict[str, tuple[float, float | None]] = {}
    with store.sessions() as s:
        for name, call in calls.items():
            fast = timed(lambda call=call: call(s, "rollup"), repeat)
            slow = None
            if naive and (naive_calls is None or name in naive_calls):
                t = time.perf_counter()
                call(s, "events")
                slow = time.perf_counter() - t
            out[name] = (fast, slow)
        if naive:
            a = stats.indicators(s, start=MONTH, end=end, group_by="unit")
            b = stats.indicators(s, start=MONTH, end=end, group_by="unit", source="events")
            assert a.equals(b), "rollup and raw event log disagree"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--grids", default="10000,263")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-naive", action="store_true", help="skip the raw-log queries")
    parser.add_argument(
        "--naive-max",
        type=int,
        default=10_000_000,
        help="above this size only the one-month totals run on the raw log (the others take minutes)",
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    settings = Settings()
    rows = []
    for grids in (int(x) for x in args.grids.split(",")):
        url = resolve_database_url(settings, database=DATABASE)
        drop_database(url)
        url = resolve_database_url(settings, database=DATABASE)
        store = Store(settings, url=url)
        store.migrate()
        reference_rows(store)
        done = 0
        for size in sizes:
            t = time.perf_counter()
            timings = grow(store, url, done + 1, size, grids)
            done = size
            with store.sessions() as s:
                events = s.scalar(text("SELECT count(*) FROM case_event"))
            print(
                f"\n{grids:,} grids, {size:,} cases, {events:,} events: generated in "
                f"{time.perf_counter() - t:.0f} s (cases {timings['cases']:.0f} s, events "
                f"{timings['events']:.0f} s, indexes {timings['indexes']:.0f} s, vacuum "
                f"{timings['vacuum']:.0f} s, rollup rebuild "
                f"{timings['rollup']:.0f} s → {int(timings['rollup_rows']):,} rows)",
                flush=True,
            )
            cost = trigger_cost(store, size + 1)
            print(
                f"  action path, µs per event: {cost['append']:.0f} appending deltas (+ "
                f"{cost['fold']:.0f} to fold them later), {cost['upsert']:.0f} upserting the rollup "
                f"(today), {cost['none']:.0f} without a trigger",
                flush=True,
            )
            for name, (fast, slow) in measure(
                store,
                args.repeat,
                not args.no_naive,
                None if size <= args.naive_max else ("one month, totals",),
            ).items():
                ratio = f"{slow / fast:,.0f}×" if slow else "-"
                print(
                    f"  {name:20s} rollup {fast * 1000:8.0f} ms   raw log "
                    f"{slow * 1000 if slow else float('nan'):9.0f} ms   ratio {ratio}",
                    flush=True,
                )
                rows.append((grids, size, name, fast, slow))
        store.dispose()
    print("\n| grids | cases | query | rollup ms | raw event log ms | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for grids, size, name, fast, slow in rows:
        print(
            f"| {grids:,} | {size:,} | {name} | {fast * 1000:,.0f} | "
            f"{slow * 1000 if slow else float('nan'):,.0f} | "
            f"{slow / fast if slow else float('nan'):,.0f}× |"
        )


if __name__ == "__main__":
    main()
