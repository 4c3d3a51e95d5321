"""State several server processes share: throttles in a table, changes announced by NOTIFY.

- `throttle_hit`: one row per counted attempt (a wrong password, an unknown tracking code, a public
  report), by throttle and key; a throttle counts the rows of its window. Every worker and every
  host sees the same counts (they used to live in each process's memory).
- `reference_version` rows are bumped by every import and admin change of reference data: a
  trigger sends `NOTIFY gridcase_reference` with the new total, in the bumping transaction (so
  listeners hear it exactly when it commits), and each worker rebuilds its routing index at once.
- `case_event` inserts send `NOTIFY gridcase_case_events` (once per statement, with the newest
  id), which wakes the live feeds of the workstations in every worker.

NOTIFY is transactional and works through PgBouncer in transaction mode; LISTEN needs a direct
connection (`GRIDCASE_LISTEN_DATABASE_URL`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 02:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

REFERENCE_NOTIFY = """
CREATE OR REPLACE FUNCTION reference_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'gridcase_reference',
        (SELECT coalesce(sum(version), 0)::text FROM reference_version)
    );
    RETURN NULL;
END $$;
CREATE TRIGGER reference_notify AFTER INSERT OR UPDATE OR DELETE ON reference_version
    FOR EACH STATEMENT EXECUTE FUNCTION reference_notify();
"""

CASE_EVENTS_NOTIFY = """
CREATE OR REPLACE FUNCTION case_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridcase_case_events', (SELECT coalesce(max(id), 0)::text FROM new_events));
    RETURN NULL;
END $$;
CREATE TRIGGER case_events_notify AFTER INSERT ON case_event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION case_events_notify();
"""


def upgrade() -> None:
    op.create_table(
        "throttle_hit",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("throttle", sa.String(32), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_throttle_hit_key_at", "throttle_hit", ["throttle", "key", "at"])
    op.execute(REFERENCE_NOTIFY)
    op.execute(CASE_EVENTS_NOTIFY)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_events_notify ON case_event")
    op.execute("DROP FUNCTION IF EXISTS case_events_notify()")
    op.execute("DROP TRIGGER IF EXISTS reference_notify ON reference_version")
    op.execute("DROP FUNCTION IF EXISTS reference_notify()")
    op.drop_index("ix_throttle_hit_key_at", table_name="throttle_hit")
    op.drop_table("throttle_hit")
