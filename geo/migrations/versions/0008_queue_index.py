"""The queues' index: cases of a state, oldest report first.

The intake and dispatch queues ask for the oldest 100 cases in one state (`state = 'filed' ORDER BY
reported_at, id LIMIT 100`). With only `ix_cases_reported_at`, PostgreSQL walked the whole history in
report order and skipped the closed cases (open cases are the newest few percent of it): 300 ms at
110,000 cases (bench/desks.py). With the state first, the queue is the first 100 entries of the
index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:10:00
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_state_reported", "cases", ["state", "reported_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_state_reported", table_name="cases")
