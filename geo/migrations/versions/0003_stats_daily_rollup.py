"""Daily rollup of the case event log for the indicators, kept by a trigger; due-date index.

`stats_daily` holds, per China-time day and per value of each grouping (unit, grid, community,
street, category, inspector, and the whole city), the count of each workflow event that matters to
an indicator, and the dispatch → handle hours of every handle event (an array, so means and
percentiles stay exact). A statement-level AFTER INSERT trigger on
`case_event` adds each inserted batch (one set-based upsert per statement, whatever path wrote the
events); `stats_daily_rebuild()` recomputes it from the whole log after a bulk load. The covering
index on `cases.deadline_at` answers the "due" figures (cases whose deadline falls in a period)
with an index-only scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY = "dim, day, key"
# Dimension → the column of the case (or event) it groups by; "all" is the whole city.
DIMS = {
    "unit": "unit_code",
    "grid": "grid_code",
    "community": "community_code",
    "street": "street_code",
    "category": "category_code",
    "inspector": "inspector",
}
COUNTS = (
    "reported",
    "verified",
    "filed",
    "dispatched",
    "handled",
    "handled_on_time",
    "closed",
    "returned",
    "reworked",
    "extended",
)
ACTIONS = (
    "report",
    "verify",
    "file",
    "dispatch",
    "redispatch",
    "handle",
    "close",
    "return",
    "check_fail",
    "approve_extension",
)
TESTS = {
    "reported": "e.action = 'report'",
    "verified": "e.action = 'verify'",
    "filed": "e.action = 'file'",
    "dispatched": "e.action IN ('dispatch', 'redispatch')",
    "handled": "e.action = 'handle'",
    "handled_on_time": "e.action = 'handle' AND e.at <= c.deadline_at",
    "closed": "e.action = 'close'",
    "returned": "e.action = 'return'",
    "reworked": "e.action = 'check_fail'",
    "extended": "e.action = 'approve_extension'",
}


def facts_select(source: str, *, window: bool) -> str:
    """One row per counted event of `source`, with its groups, 0/1 flags and handling hours.

    The unit is the one named on the event (the unit holding the case then), falling back to the
    case's unit for events written before routing; the day is the event's date in China time.
    Handling hours run from the case's latest dispatch or re-dispatch to the handle event: looked
    up in the log for a trigger's small batch, a window over the case's events for a rebuild.
    """
    actions = ", ".join(f"'{a}'" for a in ACTIONS)
    flags = ",\n               ".join(f"({t})::int AS {n}" for n, t in TESTS.items())
    if window:
        hours = (
            "CASE WHEN e.action = 'handle' THEN (extract(epoch FROM e.at - max(e.at) "
            "FILTER (WHERE e.action IN ('dispatch', 'redispatch')) OVER (PARTITION BY "
            "e.case_id ORDER BY e.at)) / 3600)::real END AS h"
        )
        lateral = ""
    else:
        hours = "hd.h"
        lateral = """
        LEFT JOIN LATERAL (
            SELECT (extract(epoch FROM e.at - max(d.at)) / 3600)::real AS h
            FROM case_event d
            WHERE e.action = 'handle' AND d.case_id = e.case_id
              AND d.action IN ('dispatch', 'redispatch') AND d.at <= e.at
        ) hd ON true"""
    return f"""
        SELECT (e.at AT TIME ZONE 'Asia/Shanghai')::date AS day,
               coalesce(e.unit_code, c.unit_code) AS unit_code,
               c.grid_code, c.community_code, c.street_code, c.category_code,
               c.reported_by AS inspector,
               {flags},
               {hours}
        FROM {source} e
        JOIN cases c ON c.id = e.case_id{lateral}
        WHERE e.action IN ({actions})"""


def _sums() -> str:
    return ",\n           ".join(f"sum({n}) AS {n}" for n in COUNTS) + (
        ",\n           coalesce(array_agg(h) FILTER (WHERE h IS NOT NULL), '{}') AS handling_hours"
    )


def rollup_select(source: str, *, facts: str | None = None, sums: str | None = None) -> str:
    """The rollup rows of a trigger's batch: one row per day and value of each dimension
    (GROUPING SETS: unit, grid, community, street, category, inspector, and "all").

    `facts` and `sums` default to this revision's; 0004 passes its own (counts only)."""
    dim = " ".join(f"WHEN GROUPING({col}) = 0 THEN '{d}'" for d, col in DIMS.items())
    key = " ".join(f"WHEN GROUPING({col}) = 0 THEN {col}" for col in DIMS.values())
    sets = ", ".join(f"(day, {col})" for col in DIMS.values()) + ", (day)"
    return f"""
    SELECT CASE {dim} ELSE 'all' END AS dim, day, CASE {key} END AS key,
           {sums or _sums()}
    FROM ({facts or facts_select(source, window=False)}) ev
    GROUP BY GROUPING SETS ({sets})
    """


def rebuild_inserts(*, columns: str | None = None, sums: str | None = None) -> str:
    """A rebuild: the facts of the whole log once, then one hashed GROUP BY per dimension.

    `columns` (after the key) and `sums` default to this revision's; 0004 passes its own."""
    columns = columns or ", ".join(COUNTS) + ", handling_hours"
    sums = sums or _sums()
    parts = [
        f"""
        INSERT INTO stats_daily ({KEY}, {columns})
        SELECT '{d}', day, {col}, {sums}
        FROM stats_facts GROUP BY day, {col} ORDER BY day;"""
        for d, col in DIMS.items()
    ]
    parts.append(f"""
        INSERT INTO stats_daily ({KEY}, {columns})
        SELECT 'all', day, NULL, {sums}
        FROM stats_facts GROUP BY day ORDER BY day;""")
    return "".join(parts)


def create_functions() -> None:
    """The trigger function and the rebuild of this revision (0004's downgrade restores them)."""
    cols = ", ".join(COUNTS)
    updates = ",\n".join(f"        {c} = stats_daily.{c} + EXCLUDED.{c}" for c in COUNTS)
    op.execute(f"""
    CREATE OR REPLACE FUNCTION stats_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO stats_daily ({KEY}, {cols}, handling_hours)
        {rollup_select("new_events")}
        ON CONFLICT ON CONSTRAINT uq_stats_daily_key DO UPDATE SET
{updates},
        handling_hours = stats_daily.handling_hours || EXCLUDED.handling_hours;
        RETURN NULL;
    END $$""")
    # A full rebuild drops the key index and builds it again at the end: much faster than
    # maintaining it row by row over tens of millions of rows.
    op.execute(f"""
    CREATE OR REPLACE FUNCTION stats_daily_rebuild() RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE stats_daily IN EXCLUSIVE MODE;
        TRUNCATE stats_daily;
        ALTER TABLE stats_daily DROP CONSTRAINT uq_stats_daily_key;
        DROP TABLE IF EXISTS stats_facts;
        CREATE TEMP TABLE stats_facts ON COMMIT DROP AS
        {facts_select("case_event", window=True)};
        {rebuild_inserts()}
        DROP TABLE stats_facts;
        ALTER TABLE stats_daily ADD CONSTRAINT uq_stats_daily_key
            UNIQUE NULLS NOT DISTINCT ({KEY});
        RETURN (SELECT count(*) FROM stats_daily);
    END $$""")


def upgrade() -> None:
    counts = ",\n".join(f"    {c} integer NOT NULL DEFAULT 0" for c in COUNTS)
    op.execute(f"""
    CREATE TABLE stats_daily (
        dim varchar(16) NOT NULL,
        day date NOT NULL,
        key varchar(64),
    {counts},
        handling_hours real[] NOT NULL DEFAULT '{{}}',
        CONSTRAINT uq_stats_daily_key UNIQUE NULLS NOT DISTINCT ({KEY})
    )""")
    create_functions()
    op.execute("""
    CREATE TRIGGER case_event_stats_daily AFTER INSERT ON case_event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION stats_daily_add()""")
    # Rows from existing events (an upgrade of a database that already has cases).
    op.execute("SELECT stats_daily_rebuild()")
    op.execute("""
    CREATE INDEX ix_cases_deadline_stats ON cases (deadline_at)
    INCLUDE (state, closed_at, unit_code, grid_code, community_code, street_code, category_code,
             reported_by)""")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_cases_deadline_stats")
    op.execute("DROP TRIGGER IF EXISTS case_event_stats_daily ON case_event")
    op.execute("DROP FUNCTION IF EXISTS stats_daily_rebuild()")
    op.execute("DROP FUNCTION IF EXISTS stats_daily_add()")
    op.execute("DROP TABLE IF EXISTS stats_daily")
