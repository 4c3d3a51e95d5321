"""The stored work calendar, provisional deadlines, and the administrators' change log.

- `work_calendar_year`: the years whose official holidays and make-up days are loaded (a year is
  loaded whole, from the State Council notice), with where they came from.
- `work_calendar_day`: those days (holiday = a day off, workday = a weekend day worked).
- `cases.deadline_provisional`: the deadline was counted past the loaded calendar (as if the
  unknown year had no holidays) and is recomputed when that year is loaded.
- `admin_log`: every change an administrator makes (who, when, what, before and after).

The 2025 and 2026 days are loaded here from data/calendar/china-2025-2026.csv, so a database keeps
the calendar it had before the calendar was stored.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 23:50:00
"""

import csv
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SEED = Path(__file__).resolve().parents[3] / "data" / "calendar" / "china-2025-2026.csv"


def _seed_rows() -> list[dict]:
    with SEED.open(encoding="utf-8", newline="") as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    return [
        {
            "day": date.fromisoformat(r["date"].strip()),
            "kind": r["kind"].strip(),
            "name": (r.get("name") or ""),
        }
        for r in csv.DictReader(lines)
    ]


def upgrade() -> None:
    year = op.create_table(
        "work_calendar_year",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("loaded_by", sa.String(length=64), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_work_calendar_year")),
    )
    day = op.create_table(
        "work_calendar_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.CheckConstraint("kind IN ('holiday','workday')", name=op.f("ck_work_calendar_day_kind")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_work_calendar_day")),
    )
    op.add_column(
        "cases",
        sa.Column("deadline_provisional", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "admin_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("before", JSONB(), nullable=True),
        sa.Column("after", JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_log")),
    )
    op.create_index(op.f("ix_admin_log_at"), "admin_log", ["at"])
    rows = _seed_rows()
    years = sorted({r["day"].year for r in rows})
    op.bulk_insert(day, rows)
    op.bulk_insert(year, [{"year": y, "source": f"data/calendar/{SEED.name}"} for y in years])
    # Open cases already due past the seeded years were counted without that year's holidays.
    op.execute(
        sa.text(
            "UPDATE cases SET deadline_provisional = true WHERE deadline_at >= CAST(:past AS timestamptz) "
            "AND time_limit_unit IN ('working_hours', 'working_days') "
            "AND state NOT IN ('closed', 'rejected', 'voided')"
        ).bindparams(past=f"{years[-1] + 1}-01-01 00:00:00+08")
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_log_at"), table_name="admin_log")
    op.drop_table("admin_log")
    op.drop_column("cases", "deadline_provisional")
    op.drop_table("work_calendar_day")
    op.drop_table("work_calendar_year")
