"""Public commitments (三方联动): collect, commit, solve with evidence, evaluate; the board; the demo."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError

from geo.accounts import actor_of
from geo.community import commitments
from geo.community import register_figures as figures
from geo.community.commitments import CommitmentIn, ProblemIn
from geo.community.register_models import Commitment
from geo.community.register_seed import COMMITMENT_COMMUNITY, COMMITMENT_QUARTER, PUBLISHED
from geo.errors import ActionForbidden, InvalidInput, InvalidTransition
from geo.storage import LocalBlobStore
from geo.store.models import Account
from tests.conftest import FIXTURES, rolled_back

CHINA = ZoneInfo("Asia/Shanghai")
COMMUNITY = "421281003002"
NOW = datetime(2026, 11, 10, 10, 0, tzinfo=CHINA)


@pytest.fixture
def db(cases_store):
    with rolled_back(cases_store) as session:
        yield session


def account(session, name):
    return actor_of(session.scalar(select(Account).where(Account.username == name)))


def test_quarters():
    assert commitments.quarter_of(date(2026, 9, 30)) == "2026Q3"
    assert commitments.quarter_days("2026Q4") == (date(2026, 10, 1), date(2026, 12, 31))
    assert figures.quarters_between(date(2026, 9, 1), date(2026, 10, 31)) == ["2026Q3", "2026Q4"]
    with pytest.raises(InvalidInput) as refused:
        commitments.quarter_days("2026Q5")
    assert refused.value.field == "quarter"


def test_collect_commit_solve_evaluate_and_the_board(db, tmp_path):
    staff = account(db, "community_staff")
    ids = [
        commitments.collect_problem(
            db, staff, ProblemIn(COMMUNITY, "2026Q4", "resident", f"问题{i}"), now=NOW
        ).id
        for i in range(3)
    ]
    promise = commitments.publish(
        db,
        staff,
        CommitmentIn(
            COMMUNITY,
            "2026Q4",
            "property_company",
            "某某物业公司",
            "修好路灯",
            date(2026, 11, 30),
            tuple(ids[:2]),
        ),
        now=NOW,
    )
    with pytest.raises(InvalidInput) as refused:  # a problem is committed to once
        commitments.publish(
            db,
            staff,
            CommitmentIn(COMMUNITY, "2026Q4", "community", "居委会", "x", date(2026, 12, 1), (ids[0],)),
        )
    assert refused.value.field == "problem_ids"
    board = commitments.board(db, COMMUNITY, now=NOW)
    assert (board.quarter, board.collected, board.committed, board.solved) == ("2026Q4", 3, 2, 0)
    assert board.items[0].state == "in_progress" and board.waiting == ["问题2"]
    late = commitments.board(db, COMMUNITY, now=datetime(2026, 12, 2, tzinfo=CHINA))
    assert late.items[0].state == "overdue"
    commitments.record_progress(db, staff, promise.id, "已订购灯具")
    with pytest.raises(InvalidInput) as refused:  # solved needs its evidence
        commitments.solve(db, staff, promise.id, "")
    assert refused.value.field == "note"
    photo = (FIXTURES / "photos" / "canal_after.jpg").read_bytes()
    commitments.solve(db, staff, promise.id, "", photo, blobs=LocalBlobStore(tmp_path), now=NOW)
    with pytest.raises(InvalidTransition):
        commitments.solve(db, staff, promise.id, "again")
    commitments.evaluate(db, staff, promise.id, "satisfied", "亮了", "居民代表张三", now=NOW)
    board = commitments.board(db, COMMUNITY, now=NOW)
    assert (board.collected, board.committed, board.solved, board.evaluated) == (3, 2, 2, 1)
    item = board.items[0]
    assert item.state == "solved" and item.has_photo and item.verdicts == {"satisfied": 1}
    assert "张三" not in repr(board)  # the representative's name is never on the board
    assert commitments.photo_of(db, item.photo_key or "")
    (row,) = [r for r in figures.commitment_figures(db, ["2026Q4"], "community") if r.code == COMMUNITY]
    assert (row.collected, row.committed, row.solved, row.commitments, row.evaluated) == (3, 2, 2, 1, 1)
    assert row.share_satisfied == 1.0
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(delete(Commitment).where(Commitment.id == promise.id))


def test_only_community_staff_enter_commitments(db):
    with pytest.raises(ActionForbidden):
        commitments.collect_problem(
            db, account(db, "operator"), ProblemIn(COMMUNITY, "2026Q4", "resident", "x")
        )
    with pytest.raises(InvalidInput) as refused:
        commitments.collect_problem(
            db,
            account(db, "community_staff"),
            ProblemIn(COMMUNITY, "2026Q4", "resident", "x", case_tracking_code="NOPE"),
        )
    assert refused.value.field == "case_tracking_code"


def test_the_demo_carries_the_published_quarter(demo_store):
    """Shiyan's published figures (119 collected, 98 committed, 93 solved) on the demo community."""
    with rolled_back(demo_store) as session:
        board = commitments.board(session, COMMITMENT_COMMUNITY, COMMITMENT_QUARTER)
        assert {
            "collected": board.collected,
            "committed": board.committed,
            "solved": board.solved,
        } == PUBLISHED
        assert {i.party_kind for i in board.items} == {"community", "owners_committee", "property_company"}
        (city,) = figures.commitment_figures(session, [COMMITMENT_QUARTER], "city")
        assert (city.collected, city.committed, city.solved) == (119, 98, 93)
        assert 0 < city.evaluated <= city.commitments
        # The register: every community, some unanswered past due; most answered.
        today = datetime.now(CHINA).date()
        (reg,) = figures.reception_figures(session, date(2026, 1, 1), today, "city")
        assert reg.registered > 300 and reg.overdue > 0
        assert reg.share_answered is not None and 0.8 < reg.share_answered < 1
        assert len(figures.reception_figures(session, date(2026, 1, 1), today, "community")) == 27
