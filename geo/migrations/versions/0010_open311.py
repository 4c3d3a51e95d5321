"""Open311 GeoReport v2: the API keys other systems post requests with, and what they posted.

- `open311_key`: a key given to another system (a FixMyStreet installation, a partner's app), kept
  only as its SHA-256 (like bearer tokens); named, revocable, never shown again after creation.
- `open311_request`: what a request posted through /open311/v2 carried beyond the case itself:
  the key it came with, its token (`tokens/{token}`), the attributes of the service definition,
  the media URL as given (never fetched), and the requester's details (private, like the
  reporter's contact).
- the account `open311`: who files those requests (inactive: nobody signs in as it), on the
  channel `open311` (a string column: no schema change for the new channel).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 02:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open311_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        # The first characters of the key, so a person can tell keys apart without the secret.
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("key_hash", name="uq_open311_key_key_hash"),
    )
    # A name is given to one live key at a time (a revoked key's name may be given again).
    op.create_index(
        "ix_open311_key_live_name",
        "open311_key",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "open311_request",
        sa.Column(
            "case_id",
            sa.BigInteger(),
            sa.ForeignKey("cases.id", name="fk_open311_request_case_id_cases"),
            primary_key=True,
        ),
        sa.Column(
            "key_id",
            sa.Integer(),
            sa.ForeignKey("open311_key.id", name="fk_open311_request_key_id_open311_key"),
            nullable=False,
        ),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("attributes", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("media_url", sa.Text()),
        sa.Column("requester", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("address_string", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.UniqueConstraint("token", name="uq_open311_request_token"),
    )
    op.execute(
        "INSERT INTO account (username, password_hash, role, grid_codes, display_name, active) "
        "VALUES ('open311', '!', 'resident', '{}', 'Open311 接口', false) ON CONFLICT (username) DO NOTHING"
    )


def downgrade() -> None:
    op.drop_table("open311_request")
    op.drop_index("ix_open311_key_live_name", table_name="open311_key")
    op.drop_table("open311_key")
    # The account stays if it filed cases (their rows point at it).
    op.execute(
        "DELETE FROM account WHERE username = 'open311' "
        "AND NOT EXISTS (SELECT 1 FROM cases WHERE reporter_account_id = account.id)"
    )
