"""Dispatched cases as a cohort, and rollup deltas appended by the trigger, folded later.

Two changes to how the rollup of the case event log is kept (issue 12):

- **Cohort counts.** `stats_daily.dispatched` now counts *cases*, not dispatch events: each case
  that was dispatched counts once, on the China-time day of its latest dispatch or re-dispatch,
  for the unit holding it after that dispatch (no unit while it is returned and waits for a
  re-dispatch: a unit that returns a case that is not its own is not charged with it). The new
  `dispatched_closed` counts those of them that are closed, credited to the same day and unit,
  so that disposal rate = dispatched_closed / dispatched is a cohort share, never above 100%.
  The new `received` keeps the dispatch and re-dispatch events per unit they went to (派遣次数:
  the denominator of the return rate). A return or re-dispatch moves the case's credit with a
  −1 for where it was and a +1 for where it is now.
- **Append-only deltas.** The statement trigger no longer upserts `stats_daily` (every
  concurrent report updated the same "today × city" rows and queued on their row locks until
  commit). It appends one row per effect to `stats_delta` (no index, no key: nothing to wait
  for); `stats_fold()` moves every committed delta into `stats_daily` in one statement
  (DELETE ... RETURNING, then an upsert), so a delta is folded exactly once; readers add the
  unfolded deltas to the folded rows. `stats_handling` is still written by the trigger (one row
  per handle event: distinct keys, no shared row).

`stats_daily_rebuild()` recomputes everything from the log and empties `stats_delta`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:00:00
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _revision(stem: str, name: str):  # noqa: ANN202 - a module
    path = Path(__file__).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V3 = _revision("0003_stats_daily_rollup", "gridcase_revision_0003")
V4 = _revision("0004_stats_handling_facts", "gridcase_revision_0004")
KEY, DIMS, ACTIONS = V3.KEY, V3.DIMS, V3.ACTIONS
GROUP_COLUMNS = (
    V4.GROUP_COLUMNS
)  # unit_code, grid_code, community_code, street_code, category_code, inspector
DISPATCHES = "('dispatch', 'redispatch')"
DAY = "(({t}) AT TIME ZONE 'Asia/Shanghai')::date"
# Flows: events of the period, each counted once on its day, for the unit named on the event.
FLOW_TESTS = {
    "reported": "e.action = 'report'",
    "verified": "e.action = 'verify'",
    "filed": "e.action = 'file'",
    "received": f"e.action IN {DISPATCHES}",
    "handled": "e.action = 'handle'",
    "handled_on_time": "e.action = 'handle' AND e.at <= c.deadline_at",
    "closed": "e.action = 'close'",
    "returned": "e.action = 'return'",
    "reworked": "e.action = 'check_fail'",
    "extended": "e.action = 'approve_extension'",
}
COHORT = ("dispatched", "dispatched_closed")
COUNTS = (*FLOW_TESTS, *COHORT)
FOLD_LOCK = 421281005  # advisory lock: one fold at a time


def _cols(extra: str = "") -> str:
    return ", ".join(COUNTS) + extra


def _case_groups(c: str = "c") -> str:
    return f"{c}.grid_code, {c}.community_code, {c}.street_code, {c}.category_code, {c}.reported_by"


def _cohort_row(day: str, unit: str, dispatched: str, closed: str) -> str:
    zeros = ", ".join(f"0 AS {n}" for n in FLOW_TESTS)
    return (
        f"SELECT {DAY.format(t=day)} AS day, {unit} AS unit_code, {_case_groups()}, {zeros}, "
        f"{dispatched} AS dispatched, {closed} AS dispatched_closed"
    )


def delta_select(source: str) -> str:
    """The delta rows of a batch of new events `source` (the trigger's transition table).

    One flow row per counted event; for cohort moves, rows of ±1 keyed by the day of the case's
    latest dispatch before the event (`l`) and its holder: that dispatch's unit, or none when a
    return followed it. Events are ordered by (at, id), so a batch with several events of one
    case is read in order (the batch is already in `case_event`: the trigger runs after it).
    """
    actions = ", ".join(f"'{a}'" for a in ACTIONS)
    flags = ", ".join(f"coalesce({t}, false)::int AS {n}" for n, t in FLOW_TESTS.items())
    holder = "CASE WHEN l.returned THEN NULL ELSE l.unit_code END"
    # The latest dispatch before each event that moves the cohort, and whether a return followed.
    lateral = f"""
        FROM {source} e
        JOIN cases c ON c.id = e.case_id
        CROSS JOIN LATERAL (
            SELECT d.at, d.unit_code, EXISTS (
                       SELECT 1 FROM case_event r
                       WHERE r.case_id = e.case_id AND r.action = 'return'
                         AND (r.at, r.id) > (d.at, d.id) AND (r.at, r.id) < (e.at, e.id)
                   ) AS returned
            FROM case_event d
            WHERE d.case_id = e.case_id AND d.action IN {DISPATCHES} AND (d.at, d.id) < (e.at, e.id)
            ORDER BY d.at DESC, d.id DESC LIMIT 1
        ) l"""
    return f"""
        SELECT {DAY.format(t="e.at")} AS day, coalesce(e.unit_code, c.unit_code) AS unit_code,
               {_case_groups()}, {flags}, 0 AS dispatched, 0 AS dispatched_closed
        FROM {source} e JOIN cases c ON c.id = e.case_id
        WHERE e.action IN ({actions})
        UNION ALL
        {_cohort_row("e.at", "e.unit_code", "1", "0")}
        FROM {source} e JOIN cases c ON c.id = e.case_id
        WHERE e.action IN {DISPATCHES}
        UNION ALL
        {_cohort_row("l.at", holder, "-1", "0")}{lateral}
        WHERE e.action IN ('dispatch', 'redispatch', 'return')
        UNION ALL
        {_cohort_row("l.at", "NULL::varchar", "1", "0")}{lateral}
        WHERE e.action = 'return'
        UNION ALL
        {_cohort_row("l.at", holder, "0", "1")}{lateral}
        WHERE e.action = 'close'"""


def rebuild_facts() -> str:
    """The facts of the whole log: one flow row per counted event, one cohort row per
    dispatched case (its latest dispatch's day and holder, and whether it is closed)."""
    actions = ", ".join(f"'{a}'" for a in ACTIONS)
    flags = ", ".join(f"coalesce({t}, false)::int AS {n}" for n, t in FLOW_TESTS.items())
    order = "ORDER BY at DESC, id DESC"
    return f"""
        SELECT {DAY.format(t="e.at")} AS day, coalesce(e.unit_code, c.unit_code) AS unit_code,
               {_case_groups()} AS inspector, {flags}, 0 AS dispatched, 0 AS dispatched_closed
        FROM case_event e JOIN cases c ON c.id = e.case_id
        WHERE e.action IN ({actions})
        UNION ALL
        {
        _cohort_row(
            "l.at", "CASE WHEN l.last_move = 'return' THEN NULL ELSE l.unit_code END", "1", "l.closed::int"
        )
    }
        FROM (
            SELECT case_id,
                   (array_agg(at {order}) FILTER (WHERE action IN {DISPATCHES}))[1] AS at,
                   (array_agg(unit_code {order}) FILTER (WHERE action IN {DISPATCHES}))[1]
                       AS unit_code,
                   (array_agg(action {order}) FILTER (WHERE action <> 'close'))[1] AS last_move,
                   bool_or(action = 'close') AS closed
            FROM case_event
            WHERE action IN ('dispatch', 'redispatch', 'return', 'close')
            GROUP BY case_id
        ) l
        JOIN cases c ON c.id = l.case_id
        WHERE l.at IS NOT NULL"""


def _sums(prefix: str = "") -> str:
    return ", ".join(f"sum({prefix}{n}) AS {n}" for n in COUNTS)


DELTA_COLUMNS = "day, " + ", ".join(GROUP_COLUMNS) + ", " + ", ".join(COUNTS)


def create_functions() -> None:
    """The trigger function (append deltas), the fold and the rebuild of this revision."""
    cols = _cols()
    updates = ",\n".join(f"            {c} = stats_daily.{c} + EXCLUDED.{c}" for c in COUNTS)
    zero = " AND ".join(f"{c} = 0" for c in COUNTS)
    dims = ", ".join(f"'{d}'" for d in (*DIMS, "all"))
    op.execute(f"""
    CREATE OR REPLACE FUNCTION stats_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO stats_delta ({DELTA_COLUMNS})
        {delta_select("new_events")};
        INSERT INTO stats_handling ({V4.HANDLING})
        {V4.handling_select("new_events", window=False)};
        RETURN NULL;
    END $$""")
    # One fold at a time (a second caller returns 0 at once). The DELETE sees only committed
    # deltas; a delta committed later stays for the next fold: each is folded exactly once.
    op.execute(f"""
    CREATE OR REPLACE FUNCTION stats_fold() RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        moved bigint;
        days date[];
    BEGIN
        IF NOT pg_try_advisory_xact_lock({FOLD_LOCK}) THEN
            RETURN 0;
        END IF;
        WITH taken AS (DELETE FROM stats_delta RETURNING *),
        added AS (
            INSERT INTO stats_daily ({KEY}, {cols})
            {V3.rollup_select("taken", facts="SELECT * FROM taken", sums=_sums())}
            ON CONFLICT ON CONSTRAINT uq_stats_daily_key DO UPDATE SET
{updates}
        )
        SELECT count(*), array_agg(DISTINCT day) INTO moved, days FROM taken;
        -- A return and its re-dispatch cancel out on the "no unit" row: drop rows left at zero
        -- (a rebuild never writes them).
        DELETE FROM stats_daily
        WHERE dim = ANY(ARRAY[{dims}]) AND day = ANY(days) AND {zero};
        RETURN moved;
    END $$""")
    op.execute(f"""
    CREATE OR REPLACE FUNCTION stats_daily_rebuild() RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE stats_daily, stats_handling, stats_delta IN EXCLUSIVE MODE;
        TRUNCATE stats_daily, stats_handling, stats_delta;
        ALTER TABLE stats_daily DROP CONSTRAINT uq_stats_daily_key;
        ALTER TABLE stats_handling DROP CONSTRAINT stats_handling_pkey;
        DROP INDEX ix_stats_handling_day;
        DROP TABLE IF EXISTS stats_facts;
        CREATE TEMP TABLE stats_facts ON COMMIT DROP AS {rebuild_facts()};
        {V3.rebuild_inserts(columns=cols, sums=_sums())}
        DROP TABLE stats_facts;
        INSERT INTO stats_handling ({V4.HANDLING})
        {V4.handling_select("case_event", window=True)}
        ORDER BY 2;
        ALTER TABLE stats_daily ADD CONSTRAINT uq_stats_daily_key
            UNIQUE NULLS NOT DISTINCT ({KEY});
        ALTER TABLE stats_handling ADD PRIMARY KEY (event_id);
        CREATE INDEX ix_stats_handling_day ON stats_handling (day);
        RETURN (SELECT count(*) FROM stats_daily);
    END $$""")


def upgrade() -> None:
    op.execute(
        "ALTER TABLE stats_daily ADD COLUMN received integer NOT NULL DEFAULT 0, "
        "ADD COLUMN dispatched_closed integer NOT NULL DEFAULT 0"
    )
    groups = ",\n".join(f"        {c} varchar(64)" for c in GROUP_COLUMNS)
    counts = ",\n".join(f"        {c} integer NOT NULL" for c in COUNTS)
    # No index and no key: appending is all the request's transaction does here.
    op.execute(f"""
    CREATE TABLE stats_delta (
        day date NOT NULL,
{groups},
{counts}
    )""")
    create_functions()
    op.execute("SELECT stats_daily_rebuild()")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS stats_fold()")
    op.execute("DROP TABLE stats_delta")
    op.execute("ALTER TABLE stats_daily DROP COLUMN received, DROP COLUMN dispatched_closed")
    V4.create_functions()
    op.execute("SELECT stats_daily_rebuild()")
