"""The intake writer (group commit): reports filed together, answered after their commit, each once.

On a database of its own with the Chibi reference data, committing for real: what one
transaction does must be seen by the others, as in the app.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from geo import stats
from geo.accounts import Actor, actor_of
from geo.cases.intake import Filed, IntakeWriter, Prepared, ReportIn, new_case, prepare_report
from geo.cases.views import case_detail, new_case_view
from geo.demo import load_demo
from geo.errors import IdempotencyConflict
from geo.photos import PhotoLimits
from geo.routing import Router
from geo.storage import LocalBlobStore
from geo.store.models import Account, Case, CaseEvent, CaseLink
from tests.conftest import fresh_store

# Points inside the demo's grids (near the canal, in the old town) with a little spread each.
SPOTS = [(113.9000, 29.7200), (113.8850, 29.7260), (113.9120, 29.7150)]


@pytest.fixture(scope="module")
def intake_store(settings):
    store = fresh_store(settings, "intake")
    load_demo(store, cases=False)
    yield store
    store.dispose()


@pytest.fixture(scope="module")
def router(intake_store):
    with Router(intake_store.sessions) as router:
        yield router


@pytest.fixture(scope="module")
def inspector(intake_store) -> Actor:
    with intake_store.sessions() as s:
        return actor_of(s.scalars(select(Account).where(Account.username == "inspector")).one())


def prepared(router, inspector, tmp_path, n: int, key: str | None = None, description: str = "") -> Prepared:
    lon, lat = SPOTS[n % len(SPOTS)]
    report = ReportIn(
        category="E0102", description=description, lon=lon + (n % 7) * 1e-5, lat=lat + (n % 5) * 1e-5
    )
    return prepare_report(
        router, LocalBlobStore(tmp_path), PhotoLimits(), inspector, report, [], key, datetime.now(UTC)
    )


def test_concurrent_reports_share_transactions_and_each_is_counted_once(
    intake_store, router, inspector, tmp_path
):
    """8 reporters × 25 reports through 2 writer threads while the rollup folds in a loop."""
    with intake_store.sessions() as s:
        before = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "report"))
    writer = IntakeWriter(intake_store.sessions, writers=2)
    folder = stats.RollupFolder(intake_store.transaction, interval_s=0.05).start()
    answers: list[Filed] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def reporter(r: int) -> None:
        start.wait()
        futures = [writer.submit(prepared(router, inspector, tmp_path, r * 25 + n)) for n in range(25)]
        found = [f.result(timeout=60) for f in futures]
        with lock:
            answers.extend(found)

    threads = [threading.Thread(target=reporter, args=(r,)) for r in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folder.stop()
    writer.close()
    with intake_store.transaction() as s:
        stats.fold_rollup(s)
    assert len(answers) == 200 and all(a.created for a in answers)
    ids = [a.case.id for a in answers]
    assert len(set(ids)) == 200
    assert writer.filed == 200 and writer.batches < 200  # reports did share transactions
    with intake_store.sessions() as s:
        stored = s.scalar(select(func.count()).select_from(Case).where(Case.id.in_(ids)))
        events = s.scalar(
            select(func.count())
            .select_from(CaseEvent)
            .where(CaseEvent.case_id.in_(ids), CaseEvent.action == "report")
        )
        reported = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "report"))
        rolled = s.scalar(text("SELECT sum(reported) FROM stats_daily WHERE dim = 'all'"))
        left = s.scalar(text("SELECT count(*) FROM stats_delta"))
        assert (stored, events) == (200, 200)
        assert reported == before + 200 and rolled == reported and left == 0
        # The answer built from the rows written equals what a reader gets from the database,
        # duplicates included (reports at the same spots link to the open ones before them).
        linked = [a for a in answers if a.links]
        assert linked, "reports at the same spots should have suggested duplicates"
        for answer in answers[:20] + linked[:20]:
            assert answer.event is not None
            memory = new_case_view(inspector, answer.case, answer.event, answer.photos, answer.links)
            read = case_detail(s, inspector, answer.case.id)
            assert memory.model_dump(exclude={"overdue"}) == read.model_dump(exclude={"overdue"})
        # Of two reports filed together, only the later links to the earlier: never both ways.
        # (A case may link to one with a higher id that another transaction committed before this
        # one searched: that one did not see this case, so the pair is still linked once.)
        reverse = CaseLink.__table__.alias("reverse")
        both_ways = s.scalar(
            select(func.count())
            .select_from(CaseLink)
            .join(
                reverse,
                (reverse.c.case_id == CaseLink.other_case_id) & (reverse.c.other_case_id == CaseLink.case_id),
            )
            .where(CaseLink.case_id.in_(ids))
        )
        assert both_ways == 0
        within = s.scalar(select(func.count()).select_from(CaseLink).where(CaseLink.case_id.in_(ids)))
        assert within > 0


def _wait_for_lock_wait(store, timeout: float = 30) -> None:
    """Until some backend waits on a lock (the writer's INSERT behind an uncommitted key)."""
    deadline = time.monotonic() + timeout
    with store.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ).scalar()
            if waiting:
                return
            conn.rollback()
            time.sleep(0.02)
    raise AssertionError("the writer never waited for the other transaction's key")


def _hold_key(store, report: Prepared):
    """Another transaction takes the report's key and keeps it uncommitted (a racing retry)."""
    conn = store.engine.connect()
    tx = conn.begin()
    case = new_case(report)
    values = {
        c.key: getattr(case, c.key) for c in Case.__table__.columns if c.key != "id" and c.key in vars(case)
    }
    case_id = conn.execute(Case.__table__.insert().values(**values).returning(Case.id)).scalar_one()
    return conn, tx, case_id


def test_a_key_taken_by_another_transaction_meanwhile_fails_no_other_report(
    intake_store, router, inspector, tmp_path
):
    """The batch's INSERT meets a key another transaction committed after the batch looked: the
    batch's reports are filed again one by one; the raced one answers with the winner's case."""
    writer = IntakeWriter(intake_store.sessions, writers=1)
    try:
        plug = prepared(router, inspector, tmp_path, 1, key="plug")
        raced = prepared(router, inspector, tmp_path, 2, key="raced")
        plug_conn, plug_tx, plug_winner = _hold_key(intake_store, plug)
        raced_conn, raced_tx, raced_winner = _hold_key(intake_store, raced)
        first = writer.submit(plug)  # the writer takes it alone and waits behind plug_tx
        _wait_for_lock_wait(intake_store)
        # Queued meanwhile, so taken together: the raced key, two new reports, and a retry of the
        # raced key with a different report (a conflict: refused alone).
        batch: list[Future[Filed]] = [
            writer.submit(raced),
            writer.submit(prepared(router, inspector, tmp_path, 3)),
            writer.submit(prepared(router, inspector, tmp_path, 4)),
            writer.submit(prepared(router, inspector, tmp_path, 5, key="raced", description="other")),
        ]
        plug_tx.commit()
        plug_conn.close()
        assert first.result(timeout=30).case.id == plug_winner
        _wait_for_lock_wait(intake_store)  # the batch of four, behind raced_tx
        raced_tx.commit()
        raced_conn.close()
        replay, new1, new2 = (f.result(timeout=30) for f in batch[:3])
        assert (replay.created, replay.case.id) == (False, raced_winner)
        assert new1.created and new2.created and new1.case.id != new2.case.id
        with pytest.raises(IdempotencyConflict):
            batch[3].result(timeout=30)
    finally:
        writer.close()
    with intake_store.sessions() as s:
        for filed in (new1, new2):
            events = select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == filed.case.id)
            assert s.scalar(events) == 1
