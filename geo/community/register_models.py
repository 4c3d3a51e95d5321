"""The tables of public commitments (三方联动) and the reception room (会客室), migration 0013.

Nothing here is ever deleted: a trigger refuses DELETE and TRUNCATE on every one of these tables,
and every insert and update of a problem, commitment or walk-in request is copied, whole, into the
append-only `community_history` (triggers too, so no code path can skip it).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.store.models import Base

PARTY_KINDS = ("community", "owners_committee", "property_company")
PROBLEM_SOURCES = ("resident", "meeting", "case")
VERDICTS = ("satisfied", "basically_satisfied", "unsatisfied")
REQUEST_KINDS = ("consultation", "help", "complaint", "dispute", "suggestion")
REQUEST_STATES = ("open", "referred", "case", "answered")
FOLLOW_KINDS = ("note", "referral", "case", "answer")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


class CommitmentProblem(Base):
    """A problem collected in a community or compound for the quarter's commitments (征集问题)."""

    __tablename__ = "commitment_problem"
    __table_args__ = (
        CheckConstraint(_in("source", PROBLEM_SOURCES), name="source"),
        Index("ix_commitment_problem_community_quarter", "community_code", "quarter"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    community_code: Mapped[str] = mapped_column(String(32))
    compound_code: Mapped[str | None] = mapped_column(String(32))
    quarter: Mapped[str] = mapped_column(String(7))  # 2026Q3
    source: Mapped[str] = mapped_column(String(16))  # from residents, a meeting, or a case
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    description: Mapped[str] = mapped_column(Text)
    collected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    # The commitment that takes it on (承诺); none while it is only collected.
    commitment_id: Mapped[int | None] = mapped_column(ForeignKey("commitment.id"), index=True)


class Commitment(Base):
    """A public commitment of one of a compound's three parties for a quarter (公开承诺)."""

    __tablename__ = "commitment"
    __table_args__ = (
        CheckConstraint(_in("party_kind", PARTY_KINDS), name="party_kind"),
        CheckConstraint(
            "solved_at IS NULL OR (solution_note <> '' OR solution_photo_key IS NOT NULL)",
            name="solved_with_evidence",
        ),
        Index("ix_commitment_community_quarter", "community_code", "quarter"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    community_code: Mapped[str] = mapped_column(String(32))
    compound_code: Mapped[str | None] = mapped_column(String(32))
    quarter: Mapped[str] = mapped_column(String(7))
    # Which party commits, and the organisation's name (kept here, by name: 居委会, 业委会, 物业公司).
    party_kind: Mapped[str] = mapped_column(String(24))
    party_name: Mapped[str] = mapped_column(Text)
    promise: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    progress: Mapped[str] = mapped_column(Text, default="", server_default="")
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    solved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    solution_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    solution_photo_key: Mapped[str | None] = mapped_column(String(64))  # the public copy's blob key
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class CommitmentEvaluation(Base):
    """Residents' representatives' verdict on a commitment (满意/基本满意/不满意), as recorded."""

    __tablename__ = "commitment_evaluation"
    __table_args__ = (CheckConstraint(_in("verdict", VERDICTS), name="verdict"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    commitment_id: Mapped[int] = mapped_column(ForeignKey("commitment.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    representative: Mapped[str] = mapped_column(Text, default="", server_default="")  # never public
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(64))


class ReceptionRequest(Base):
    """A walk-in request registered in the reception room by the member on duty (来访登记)."""

    __tablename__ = "reception_request"
    __table_args__ = (
        CheckConstraint(_in("kind", REQUEST_KINDS), name="kind"),
        CheckConstraint(_in("state", REQUEST_STATES), name="state"),
        CheckConstraint("(state = 'answered') = (answered_at IS NOT NULL)", name="answered"),
        CheckConstraint("answered_at IS NULL OR answer <> ''", name="answer_recorded"),
        Index("ix_reception_request_open_due", "due_at", postgresql_where="answered_at IS NULL"),
        Index("ix_reception_request_community", "community_code", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reference: Mapped[str] = mapped_column(String(24), unique=True)  # JD20261201-003: no names
    community_code: Mapped[str] = mapped_column(String(32))
    compound_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    taken_by: Mapped[str] = mapped_column(String(64))  # the member on duty's account
    visitor: Mapped[str] = mapped_column(Text, default="", server_default="")  # private
    visitor_contact: Mapped[str | None] = mapped_column(Text)  # private, optional
    kind: Mapped[str] = mapped_column(String(16))
    asked: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    referred_unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    answer: Mapped[str] = mapped_column(Text, default="", server_default="")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class ReceptionFollow(Base):
    """One step of following a request: a note, a referral, a case, the answer (跟进记录)."""

    __tablename__ = "reception_follow"
    __table_args__ = (CheckConstraint(_in("kind", FOLLOW_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("reception_request.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class CommunityHistory(Base):
    """Every insert and update of a problem, commitment or request, as the whole row (append-only)."""

    __tablename__ = "community_history"
    __table_args__ = (Index("ix_community_history_row", "table_name", "row_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    table_name: Mapped[str] = mapped_column(String(32))
    row_id: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    row: Mapped[dict[str, Any]] = mapped_column(JSONB)
