"""Handling times in their own fact table; the daily rollup keeps counts only; events by time.

0003 kept the hours of every handle event in an array on each rollup row, so that means and
percentiles stayed exact. Those arrays made a rebuild slow (one array aggregate per day and group:
162 s at 1,000,000 cases, so about 27 minutes at 10,000,000) and made a month's by-grid query
unnest every value. Now:

- `stats_daily` holds counts only: a rebuild is plain hashed GROUP BYs (measured at 1,000,000
  cases and 10,000 grids: 74 s instead of 162 s; 566 s at 10,000,000);
- `stats_handling` holds one row per handle event that follows a dispatch: its China-time day,
  the hours from the case's latest dispatch or re-dispatch, and the groups of the event (unit)
  and of its case. Mean and p90 come from the period's rows through the day index, exactly as
  before (same values, same rows: the handle event's id is the key);
- `case_event.at` gets an index: "events in a period" (the raw-log path, timelines) no longer
  reads the whole log.

The statement trigger of 0003 now fills both tables; `stats_daily_rebuild()` recomputes both.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:00:00
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _revision_0003():  # noqa: ANN202 - a module
    """0003's definitions (counts, tests, dimensions; its functions, for the downgrade)."""
    path = Path(__file__).with_name("0003_stats_daily_rollup.py")
    spec = importlib.util.spec_from_file_location("gridcase_revision_0003", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V3 = _revision_0003()
KEY, COUNTS, DIMS, ACTIONS = V3.KEY, V3.COUNTS, V3.DIMS, V3.ACTIONS
GROUP_COLUMNS = ("unit_code", "grid_code", "community_code", "street_code", "category_code", "inspector")
DISPATCHES = "('dispatch', 'redispatch')"


def facts_select(source: str) -> str:
    """One row per counted event of `source`: its China-time day, groups and 0/1 flags.

    The unit is the one named on the event (the unit holding the case then), falling back to the
    case's unit for events written before routing.
    """
    actions = ", ".join(f"'{a}'" for a in ACTIONS)
    # coalesce: a handle event of a case without a deadline is not on time (NULL would make
    # the day's sum NULL).
    flags = ",\n               ".join(f"coalesce({t}, false)::int AS {n}" for n, t in V3.TESTS.items())
    return f"""
        SELECT (e.at AT TIME ZONE 'Asia/Shanghai')::date AS day,
               coalesce(e.unit_code, c.unit_code) AS unit_code,
               c.grid_code, c.community_code, c.street_code, c.category_code,
               c.reported_by AS inspector,
               {flags}
        FROM {source} e
        JOIN cases c ON c.id = e.case_id
        WHERE e.action IN ({actions})"""


def _sums() -> str:
    return ", ".join(f"sum({n}) AS {n}" for n in COUNTS)


def handling_select(source: str, *, window: bool) -> str:
    """One `stats_handling` row per handle event of `source` that follows a dispatch.

    Hours run from the case's latest dispatch or re-dispatch at or before the handle event:
    looked up in the log for a trigger's small batch (the batch's own events are in it already:
    the trigger runs after the statement), a window over the case's dispatch and handle events
    for a rebuild.
    """
    if window:
        events = f"""(
            SELECT e.*, max(e.at) FILTER (WHERE e.action IN {DISPATCHES})
                        OVER (PARTITION BY e.case_id ORDER BY e.at) AS last_dispatch
            FROM {source} e WHERE e.action IN ('handle', {DISPATCHES[1:-1]})
        ) e"""
        lateral = ""
    else:
        events = f"{source} e"
        lateral = f"""
        CROSS JOIN LATERAL (
            SELECT max(d.at) AS last_dispatch FROM case_event d
            WHERE d.case_id = e.case_id AND d.action IN {DISPATCHES} AND d.at <= e.at
        ) d"""
    return f"""
        SELECT e.id, (e.at AT TIME ZONE 'Asia/Shanghai')::date,
               (extract(epoch FROM e.at - last_dispatch) / 3600)::real,
               coalesce(e.unit_code, c.unit_code), c.grid_code, c.community_code,
               c.street_code, c.category_code, c.reported_by
        FROM {events}
        JOIN cases c ON c.id = e.case_id{lateral}
        WHERE e.action = 'handle' AND last_dispatch IS NOT NULL"""


HANDLING = f"event_id, day, hours, {', '.join(GROUP_COLUMNS)}"


def create_functions() -> None:
    """The trigger function (both tables, per statement) and the rebuild."""
    cols = ", ".join(COUNTS)
    updates = ",\n".join(f"        {c} = stats_daily.{c} + EXCLUDED.{c}" for c in COUNTS)
    op.execute(f"""
    CREATE OR REPLACE FUNCTION stats_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO stats_daily ({KEY}, {cols})
        {V3.rollup_select("new_events", facts=facts_select("new_events"), sums=_sums())}
        ON CONFLICT ON CONSTRAINT uq_stats_daily_key DO UPDATE SET
{updates};
        INSERT INTO stats_handling ({HANDLING})
        {handling_select("new_events", window=False)};
        RETURN NULL;
    END $$""")
    # A rebuild drops the key indexes and builds them again at the end: much faster than
    # maintaining them row by row over tens of millions of rows. Rows go in day order, so a
    # period's rows sit together on disk.
    op.execute(f"""
    CREATE OR REPLACE FUNCTION stats_daily_rebuild() RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE stats_daily, stats_handling IN EXCLUSIVE MODE;
        TRUNCATE stats_daily, stats_handling;
        ALTER TABLE stats_daily DROP CONSTRAINT uq_stats_daily_key;
        ALTER TABLE stats_handling DROP CONSTRAINT stats_handling_pkey;
        DROP INDEX ix_stats_handling_day;
        DROP TABLE IF EXISTS stats_facts;
        CREATE TEMP TABLE stats_facts ON COMMIT DROP AS {facts_select("case_event")};
        {V3.rebuild_inserts(columns=cols, sums=_sums())}
        DROP TABLE stats_facts;
        INSERT INTO stats_handling ({HANDLING})
        {handling_select("case_event", window=True)}
        ORDER BY 2;
        ALTER TABLE stats_daily ADD CONSTRAINT uq_stats_daily_key
            UNIQUE NULLS NOT DISTINCT ({KEY});
        ALTER TABLE stats_handling ADD PRIMARY KEY (event_id);
        CREATE INDEX ix_stats_handling_day ON stats_handling (day);
        RETURN (SELECT count(*) FROM stats_daily);
    END $$""")


def upgrade() -> None:
    op.execute("ALTER TABLE stats_daily DROP COLUMN handling_hours")
    groups = ",\n".join(f"        {c} varchar(64)" for c in GROUP_COLUMNS)
    op.execute(f"""
    CREATE TABLE stats_handling (
        event_id bigint PRIMARY KEY,
        day date NOT NULL,
        hours real NOT NULL,
{groups}
    )""")
    op.execute("CREATE INDEX ix_stats_handling_day ON stats_handling (day)")
    op.execute("CREATE INDEX ix_case_event_at ON case_event (at)")
    create_functions()
    op.execute("SELECT stats_daily_rebuild()")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_case_event_at")
    op.execute("DROP TABLE stats_handling")
    op.execute("ALTER TABLE stats_daily ADD COLUMN handling_hours real[] NOT NULL DEFAULT '{}'")
    V3.create_functions()
    op.execute("SELECT stats_daily_rebuild()")
