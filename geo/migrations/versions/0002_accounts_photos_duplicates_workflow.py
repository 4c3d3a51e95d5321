"""Accounts and tokens, case photos, duplicate links, and the workflow fields of cases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:23:38.743107
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("grid_codes", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "role IN ('inspector','resident','operator','dispatcher','unit_handler','admin','planner')",
            name=op.f("ck_account_role"),
        ),
        sa.ForeignKeyConstraint(["unit_code"], ["unit.code"], name=op.f("fk_account_unit_code_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("username", name=op.f("uq_account_username")),
    )
    op.create_table(
        "api_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_api_token_account_id_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_token")),
    )
    op.create_table(
        "case_link",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("other_case_id", sa.BigInteger(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("hours_apart", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_link_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["other_case_id"], ["cases.id"], name=op.f("fk_case_link_other_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_link")),
        sa.UniqueConstraint("case_id", "other_case_id", name="pair"),
    )
    op.create_index(op.f("ix_case_link_case_id"), "case_link", ["case_id"], unique=False)
    op.create_index(op.f("ix_case_link_other_case_id"), "case_link", ["other_case_id"], unique=False)
    op.create_table(
        "case_photo",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("original_key", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("public_content_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_photo_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["case_event.id"], name=op.f("fk_case_photo_event_id_case_event")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_photo")),
        sa.UniqueConstraint("case_id", "original_key", name="case_original"),
    )
    op.create_index(op.f("ix_case_photo_case_id"), "case_photo", ["case_id"], unique=False)
    op.create_index(op.f("ix_case_photo_public_key"), "case_photo", ["public_key"], unique=False)
    op.add_column("cases", sa.Column("idempotency_fingerprint", sa.String(length=64), nullable=True))
    op.add_column("cases", sa.Column("reporter_account_id", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("time_limit", sa.Numeric(precision=8, scale=2), nullable=True))
    op.add_column("cases", sa.Column("time_limit_unit", sa.String(length=16), nullable=True))
    op.add_column("cases", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("parked_from_state", sa.String(length=24), nullable=True))
    op.add_column("cases", sa.Column("extensions", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column(
        "cases", sa.Column("extension_requested", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("cases", sa.Column("supervised_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("claimed_by_account_id", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("merged_into_id", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_cases_reporter_account_id"), "cases", ["reporter_account_id"], unique=False)
    op.create_foreign_key(
        op.f("fk_cases_claimed_by_account_id_account"), "cases", "account", ["claimed_by_account_id"], ["id"]
    )
    op.create_foreign_key(op.f("fk_cases_merged_into_id_cases"), "cases", "cases", ["merged_into_id"], ["id"])
    op.create_foreign_key(
        op.f("fk_cases_reporter_account_id_account"), "cases", "account", ["reporter_account_id"], ["id"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_cases_reporter_account_id_account"), "cases", type_="foreignkey")
    op.drop_constraint(op.f("fk_cases_merged_into_id_cases"), "cases", type_="foreignkey")
    op.drop_constraint(op.f("fk_cases_claimed_by_account_id_account"), "cases", type_="foreignkey")
    op.drop_index(op.f("ix_cases_reporter_account_id"), table_name="cases")
    op.drop_column("cases", "merged_into_id")
    op.drop_column("cases", "claimed_by_account_id")
    op.drop_column("cases", "supervised_at")
    op.drop_column("cases", "extension_requested")
    op.drop_column("cases", "extensions")
    op.drop_column("cases", "parked_from_state")
    op.drop_column("cases", "parked_at")
    op.drop_column("cases", "dispatched_at")
    op.drop_column("cases", "time_limit_unit")
    op.drop_column("cases", "time_limit")
    op.drop_column("cases", "reporter_account_id")
    op.drop_column("cases", "idempotency_fingerprint")
    op.drop_index(op.f("ix_case_photo_public_key"), table_name="case_photo")
    op.drop_index(op.f("ix_case_photo_case_id"), table_name="case_photo")
    op.drop_table("case_photo")
    op.drop_index(op.f("ix_case_link_other_case_id"), table_name="case_link")
    op.drop_index(op.f("ix_case_link_case_id"), table_name="case_link")
    op.drop_table("case_link")
    op.drop_table("api_token")
    op.drop_table("account")
