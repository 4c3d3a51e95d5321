"""Public commitments (三方联动) and the reception room (会客室).

- `commitment_problem`: problems collected per community or compound for a quarter, from
  residents, a meeting or a case; `commitment`: a quarterly commitment of one of the three parties
  (社区党组织·居委会, 业委会, 物业公司: kind and name kept on the row) taking on problems, with a
  due date, progress and, once solved, its evidence; `commitment_evaluation`: the residents'
  representatives' verdict.
- `reception_request`: every walk-in request the member on duty registers, with its due date and
  where it stands; `reception_follow`: each step until the recorded answer.
- None of these may be deleted: a trigger refuses DELETE (and TRUNCATE); `community_history`
  receives the whole row on every insert and update (triggers), and itself refuses UPDATE too.
- (`account.role` accepts `community_staff` since 0012, which added the community side's roles.)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 02:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

KEPT = ("commitment_problem", "commitment", "commitment_evaluation", "reception_request", "reception_follow")
HISTORY = ("commitment_problem", "commitment", "reception_request")

TRIGGERS = """
CREATE FUNCTION community_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is kept for good (件件有下落): % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE FUNCTION community_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'community_history is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE FUNCTION community_history_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO community_history (table_name, row_id, op, row)
    VALUES (TG_TABLE_NAME, NEW.id, TG_OP, to_jsonb(NEW));
    RETURN NULL;
END $$;
CREATE TRIGGER community_history_append_only BEFORE UPDATE OR DELETE ON community_history
    FOR EACH ROW EXECUTE FUNCTION community_history_append_only();
CREATE TRIGGER community_history_no_truncate BEFORE TRUNCATE ON community_history
    FOR EACH STATEMENT EXECUTE FUNCTION community_history_append_only();
"""


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "commitment",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("community_code", sa.String(32), nullable=False),
        sa.Column("compound_code", sa.String(32)),
        sa.Column("quarter", sa.String(7), nullable=False),
        sa.Column("party_kind", sa.String(24), nullable=False),
        sa.Column("party_name", sa.Text(), nullable=False),
        sa.Column("promise", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("progress", sa.Text(), server_default="", nullable=False),
        _ts("published_at"),
        sa.Column("created_by", sa.String(64), nullable=False),
        _ts("solved_at", True),
        sa.Column("solution_note", sa.Text(), server_default="", nullable=False),
        sa.Column("solution_photo_key", sa.String(64)),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            _in("party_kind", ("community", "owners_committee", "property_company")),
            name="ck_commitment_party_kind",
        ),
        sa.CheckConstraint(
            "solved_at IS NULL OR (solution_note <> '' OR solution_photo_key IS NOT NULL)",
            name="ck_commitment_solved_with_evidence",
        ),
    )
    op.create_index("ix_commitment_community_quarter", "commitment", ["community_code", "quarter"])
    op.create_table(
        "commitment_problem",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("community_code", sa.String(32), nullable=False),
        sa.Column("compound_code", sa.String(32)),
        sa.Column("quarter", sa.String(7), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column(
            "case_id", sa.BigInteger(), sa.ForeignKey("cases.id", name="fk_commitment_problem_case_id_cases")
        ),
        sa.Column("description", sa.Text(), nullable=False),
        _ts("collected_at"),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column(
            "commitment_id",
            sa.BigInteger(),
            sa.ForeignKey("commitment.id", name="fk_commitment_problem_commitment_id_commitment"),
        ),
        sa.CheckConstraint(
            _in("source", ("resident", "meeting", "case")), name="ck_commitment_problem_source"
        ),
    )
    op.create_index(
        "ix_commitment_problem_community_quarter", "commitment_problem", ["community_code", "quarter"]
    )
    op.create_index("ix_commitment_problem_commitment_id", "commitment_problem", ["commitment_id"])
    op.create_table(
        "commitment_evaluation",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "commitment_id",
            sa.BigInteger(),
            sa.ForeignKey("commitment.id", name="fk_commitment_evaluation_commitment_id_commitment"),
            nullable=False,
        ),
        sa.Column("verdict", sa.String(24), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("representative", sa.Text(), server_default="", nullable=False),
        _ts("evaluated_at"),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.CheckConstraint(
            _in("verdict", ("satisfied", "basically_satisfied", "unsatisfied")),
            name="ck_commitment_evaluation_verdict",
        ),
    )
    op.create_index("ix_commitment_evaluation_commitment_id", "commitment_evaluation", ["commitment_id"])
    op.create_table(
        "reception_request",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("reference", sa.String(24), nullable=False),
        sa.Column("community_code", sa.String(32), nullable=False),
        sa.Column("compound_code", sa.String(32)),
        _ts("received_at"),
        sa.Column("taken_by", sa.String(64), nullable=False),
        sa.Column("visitor", sa.Text(), server_default="", nullable=False),
        sa.Column("visitor_contact", sa.Text()),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("asked", sa.Text(), nullable=False),
        _ts("due_at"),
        sa.Column("state", sa.String(16), server_default="open", nullable=False),
        sa.Column(
            "referred_unit_code",
            sa.String(32),
            sa.ForeignKey("unit.code", name="fk_reception_request_referred_unit_code_unit"),
        ),
        sa.Column(
            "case_id", sa.BigInteger(), sa.ForeignKey("cases.id", name="fk_reception_request_case_id_cases")
        ),
        sa.Column("answer", sa.Text(), server_default="", nullable=False),
        _ts("answered_at", True),
        sa.Column("answered_by", sa.String(64)),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            _in("kind", ("consultation", "help", "complaint", "dispute", "suggestion")),
            name="ck_reception_request_kind",
        ),
        sa.CheckConstraint(
            _in("state", ("open", "referred", "case", "answered")), name="ck_reception_request_state"
        ),
        sa.CheckConstraint(
            "(state = 'answered') = (answered_at IS NOT NULL)", name="ck_reception_request_answered"
        ),
        sa.CheckConstraint(
            "answered_at IS NULL OR answer <> ''", name="ck_reception_request_answer_recorded"
        ),
        sa.UniqueConstraint("reference", name="uq_reception_request_reference"),
    )
    op.create_index(
        "ix_reception_request_open_due",
        "reception_request",
        ["due_at"],
        postgresql_where=sa.text("answered_at IS NULL"),
    )
    op.create_index("ix_reception_request_community", "reception_request", ["community_code", "received_at"])
    op.create_table(
        "reception_follow",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "request_id",
            sa.BigInteger(),
            sa.ForeignKey("reception_request.id", name="fk_reception_follow_request_id_reception_request"),
            nullable=False,
        ),
        _ts("at"),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint(
            _in("kind", ("note", "referral", "case", "answer")), name="ck_reception_follow_kind"
        ),
    )
    op.create_index("ix_reception_follow_request_id", "reception_follow", ["request_id"])
    op.create_table(
        "community_history",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("row", postgresql.JSONB(), nullable=False),
    )
    op.create_index("ix_community_history_row", "community_history", ["table_name", "row_id"])
    op.execute(TRIGGERS)
    for table in KEPT:
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION community_no_delete()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION community_no_delete()"
        )
    for table in HISTORY:
        op.execute(
            f"CREATE TRIGGER {table}_history AFTER INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION community_history_record()"
        )


def downgrade() -> None:
    for table in (
        "community_history",
        "reception_follow",
        "reception_request",
        "commitment_evaluation",
        "commitment_problem",
        "commitment",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS community_history_record()")
    op.execute("DROP FUNCTION IF EXISTS community_history_append_only()")
    op.execute("DROP FUNCTION IF EXISTS community_no_delete()")
