"""The public channel: people who follow a case, the notices outbox, residents' ratings.

- `case_follower`: an e-mail address or a phone number that wants to hear when a case moves (the
  reporter, or a resident who found their problem already reported and follows it instead).
- `notice`: the outbox. A trigger on the event log writes one row per follower for every event
  that changes a case's state, in the transaction that appends the event, so a notice exists
  exactly when its change was committed; senders work the table (`geo/notices.py`) and mark each
  row sent, or count the attempt and set the next one. Nothing lives in a process's memory, so a
  restart loses nothing: the next worker picks up what is unsent.
- `case_callback`: each call back to a reporter after closing (回访): reached or not, by whom.
- `case_rating`: the resident's (or the callback's, 回访) verdict on a closed case: 满意, 基本满意,
  不满意, with a comment. `cases.review_requested_at` flags an unsatisfied case for the centre.
- the account `public`: who files the reports of people who are not signed in (inactive: nobody
  signs in as it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NOTICE_TRIGGER = """
CREATE OR REPLACE FUNCTION notice_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One notice per follower for every event that moves a case to another state (the report
    -- itself moves nothing the reporter does not know).
    INSERT INTO notice (case_id, event_id, follower_id, kind, address)
    SELECT e.case_id, e.id, f.id, f.kind, f.address
    FROM new_events e
    JOIN case_follower f ON f.case_id = e.case_id
    WHERE e.action <> 'report' AND e.from_state IS DISTINCT FROM e.to_state
    ORDER BY e.id, f.id;
    RETURN NULL;
END $$;
CREATE TRIGGER case_event_notice AFTER INSERT ON case_event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION notice_enqueue();
"""


def upgrade() -> None:
    op.create_table(
        "case_follower",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "case_id", sa.BigInteger(), sa.ForeignKey("cases.id", name="fk_case_follower_case_id_cases")
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        # The reporter holds the tracking code (and may rate); a follower of someone else's
        # report hears the state, never the code.
        sa.Column("is_reporter", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('email','phone')", name="ck_case_follower_kind"),
        sa.UniqueConstraint("case_id", "kind", "address", name="uq_case_follower_case_id"),
    )
    op.create_table(
        "notice",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "case_id",
            sa.BigInteger(),
            sa.ForeignKey("cases.id", name="fk_notice_case_id_cases"),
            nullable=False,
        ),
        sa.Column(
            "event_id",
            sa.BigInteger(),
            sa.ForeignKey("case_event.id", name="fk_notice_event_id_case_event"),
            nullable=False,
        ),
        sa.Column(
            "follower_id",
            sa.BigInteger(),
            sa.ForeignKey("case_follower.id", name="fk_notice_follower_id_case_follower"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("given_up_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
    )
    # What a worker looks for: unsent, not given up, due; the index holds only those rows.
    op.create_index(
        "ix_notice_due",
        "notice",
        ["next_attempt_at"],
        postgresql_where=sa.text("sent_at IS NULL AND given_up_at IS NULL"),
    )
    op.create_table(
        "case_rating",
        sa.Column(
            "case_id",
            sa.BigInteger(),
            sa.ForeignKey("cases.id", name="fk_case_rating_case_id_cases"),
            primary_key=True,
        ),
        sa.Column("rating", sa.String(length=24), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "rating IN ('satisfied','basically_satisfied','unsatisfied')", name="ck_case_rating_rating"
        ),
        sa.CheckConstraint("source IN ('resident','callback')", name="ck_case_rating_source"),
    )
    op.create_table(
        "case_callback",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "case_id",
            sa.BigInteger(),
            sa.ForeignKey("cases.id", name="fk_case_callback_case_id_cases"),
            nullable=False,
            index=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
    )
    op.add_column("cases", sa.Column("review_requested_at", sa.DateTime(timezone=True)))
    op.execute(NOTICE_TRIGGER)
    op.execute(
        "INSERT INTO account (username, password_hash, role, grid_codes, display_name, active) "
        "VALUES ('public', '!', 'resident', '{}', '市民（未登录）', false) ON CONFLICT (username) DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_event_notice ON case_event")
    op.execute("DROP FUNCTION IF EXISTS notice_enqueue()")
    op.drop_column("cases", "review_requested_at")
    op.drop_table("case_callback")
    op.drop_table("case_rating")
    op.drop_index("ix_notice_due", table_name="notice")
    op.drop_table("notice")
    op.drop_table("case_follower")
    # The public account stays if it filed reports (their cases point at it).
    op.execute(
        "DELETE FROM account WHERE username = 'public' "
        "AND NOT EXISTS (SELECT 1 FROM cases WHERE reporter_account_id = account.id)"
    )
