"""Notices through the outbox: to a real SMTP sink and a real webhook receiver on loopback.

The outbox is a table written by a trigger in the transaction of each state change; a worker sends
what is due and marks it. These tests run on a database of their own (the workers commit), with
aiosmtpd as the mail server and a small HTTP server as the SMS gateway, both on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.notice_text import composer
from geo import public
from geo.accounts import actor_of
from geo.cases.service import CaseContext, ReportIn, submit_report
from geo.demo import load_demo
from geo.notices import Outbox, OutboxWorker, SmtpSender, WebhookSender
from geo.routing import Router
from geo.storage import LocalBlobStore
from geo.store import Store
from geo.store.models import Account, CaseEvent, Notice
from tests.conftest import fresh_store, work_to_closing
from tests.sinks import Gateway, MailSink, mail_sink, webhook_gateway

CANAL = (113.8999, 29.7249)


@pytest.fixture
def mail() -> Iterator[tuple[MailSink, int]]:
    """An SMTP server on loopback."""
    with mail_sink() as sink:
        yield sink, sink.port


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, str]]:
    """An SMS gateway's webhook on loopback."""
    with webhook_gateway() as state:
        yield state, state.url


@pytest.fixture(scope="module")
def notice_store(settings) -> Iterator[Store]:
    """Chibi's reference data and demo accounts in a database of its own (workers commit)."""
    store = fresh_store(settings, "notices")
    load_demo(store, cases=False)
    yield store
    store.dispose()


@pytest.fixture(scope="module")
def context(notice_store, tmp_path_factory) -> Iterator[CaseContext]:
    router = Router(notice_store.sessions)
    yield CaseContext(router=router, blobs=LocalBlobStore(tmp_path_factory.mktemp("files")))
    router.close()


def _followed_case(store: Store, context: CaseContext, *, email: str | None, phone: str | None) -> int:
    """A canal report (by the inspector) followed by its reporter's e-mail and/or phone."""
    with store.transaction() as session:
        inspector = actor_of(session.scalar(select(Account).where(Account.username == "inspector")))
        case, _ = submit_report(
            session, context, inspector, ReportIn(category="E0102", lon=CANAL[0], lat=CANAL[1])
        )
        public.follow(session, case.id, phone, email, reporter=True)
        return case.id


def _outbox(store: Store, senders: dict, **kw) -> Outbox:
    return Outbox(store.transaction, senders, composer("http://gridcase.test"), **kw)


def _notices(store: Store, case_id: int) -> list[Notice]:
    with store.transaction() as session:
        rows = session.scalars(select(Notice).where(Notice.case_id == case_id).order_by(Notice.id)).all()
        session.expunge_all()
        return list(rows)


def test_a_follower_hears_every_change_of_state_by_email_and_the_last_invites_the_rating(
    notice_store, context, mail
):
    sink, port = mail
    case_id = _followed_case(notice_store, context, email="wang@example.org", phone=None)
    work_to_closing(notice_store, context, case_id)
    worker = OutboxWorker(_outbox(notice_store, {"email": SmtpSender("127.0.0.1", port)}), interval_s=0.1)
    worker.start()
    try:
        messages = sink.wait_for(7)  # verify, file, dispatch, sign, handle, check, close
    finally:
        worker.stop()
    assert len(messages) == 7 and {m["To"] for m in messages} == {"wang@example.org"}
    bodies = [m.get_content() for m in messages]
    assert "已派遣" in bodies[2] and "水利和湖泊局" in bodies[2], bodies[2]
    assert (
        "已结案" in bodies[-1] and "欢迎评价" in bodies[-1] and "http://gridcase.test/track/GC" in bodies[-1]
    )
    assert all(n.sent_at is not None and n.attempts == 1 for n in _notices(notice_store, case_id))
    assert "您关注的问题有新进展" in messages[0]["Subject"]


def test_the_outbox_retries_after_a_failing_sender_and_gives_up_only_after_its_attempts(
    notice_store, context, mail, gateway
):
    sink, port = mail
    sink.refuse = 1  # the mail server refuses the first try (451)
    state, url = gateway
    state.statuses = [503, 500]  # the gateway fails twice
    case_id = _followed_case(notice_store, context, email="li@example.org", phone="13800000001")
    work_to_closing(notice_store, context, case_id, steps=(("operator", "verify"),))
    senders = {"email": SmtpSender("127.0.0.1", port), "phone": WebhookSender(url)}
    outbox = _outbox(notice_store, senders, first_pause_s=30)
    t0 = datetime.now(UTC)
    assert outbox.send_due(t0) == 0  # both fail: nothing sent, the attempt counted
    first = {n.kind: n for n in _notices(notice_store, case_id)}
    assert first["email"].attempts == 1 and "451" in (first["email"].last_error or "")
    assert first["phone"].attempts == 1 and "503" in (first["phone"].last_error or "")
    assert first["email"].next_attempt_at >= t0 + timedelta(seconds=30)
    assert outbox.send_due(t0 + timedelta(seconds=10)) == 0  # not due yet: nobody is tried again
    assert outbox.send_due(t0 + timedelta(seconds=31)) == 1  # the mail goes; the gateway fails again
    after = {n.kind: n for n in _notices(notice_store, case_id)}
    assert after["email"].sent_at is not None and after["email"].attempts == 2
    assert after["phone"].sent_at is None and after["phone"].attempts == 2
    assert after["phone"].next_attempt_at >= t0 + timedelta(seconds=31 + 60)  # the pause doubled
    assert outbox.send_due(t0 + timedelta(seconds=200)) == 1
    assert [b["to"] for b in state.bodies] == ["13800000001"] and "已受理" in state.bodies[0]["text"]
    assert "GC" in state.bodies[0]["text"]  # the reporter's own notice carries the code
    assert len(sink.wait_for(1)) == 1

    # A sender that never works: given up after max_attempts, the last error kept.
    case2 = _followed_case(notice_store, context, email=None, phone="13800000002")
    work_to_closing(notice_store, context, case2, steps=(("operator", "verify"),))
    dead = _outbox(notice_store, {"phone": WebhookSender("http://127.0.0.1:9/none")}, max_attempts=2)
    t1 = datetime.now(UTC)
    for hours in (0, 2):
        dead.send_due(t1 + timedelta(hours=hours))
    (notice,) = _notices(notice_store, case2)
    assert notice.given_up_at is not None and notice.sent_at is None and notice.attempts == 2


def test_the_outbox_survives_a_restart_and_a_new_worker_sends_what_is_unsent(
    notice_store, context, mail, settings
):
    sink, port = mail
    case_id = _followed_case(notice_store, context, email="zhao@example.org", phone=None)
    # The server that was running had no mail server configured: the notices wait in the table.
    before = OutboxWorker(_outbox(notice_store, {}), interval_s=0.05).start()
    work_to_closing(notice_store, context, case_id, steps=(("operator", "verify"), ("operator", "file")))
    before.wake()
    before.stop()
    waiting = _notices(notice_store, case_id)
    assert len(waiting) == 2 and all(n.sent_at is None for n in waiting)
    assert all("no sender" in (n.last_error or "") for n in waiting if n.attempts)

    # A restart: a new process's store (engine, pool) and a new worker with the mail server.
    restarted = Store(settings, url=notice_store.url)
    try:
        outbox = _outbox(restarted, {"email": SmtpSender("127.0.0.1", port)})
        # Whatever pause the failed attempts set, the new worker sends them when they are due.
        assert outbox.send_due(datetime.now(UTC) + timedelta(hours=2)) == 2
    finally:
        restarted.dispose()
    messages = sink.wait_for(2)
    assert [m["To"] for m in messages] == ["zhao@example.org"] * 2
    assert all(n.sent_at is not None for n in _notices(notice_store, case_id))


def test_the_report_itself_makes_no_notice_and_a_follower_of_another_report_never_gets_its_code(
    notice_store, context, mail
):
    sink, port = mail
    with notice_store.transaction() as session:
        inspector = actor_of(session.scalar(select(Account).where(Account.username == "inspector")))
        case, _ = submit_report(
            session, context, inspector, ReportIn(category="E0102", lon=CANAL[0], lat=CANAL[1])
        )
        case_id = case.id
        # A resident who found it already reported follows it instead of filing it again.
        assert public.follow(session, case_id, None, "neighbour@example.org") == 1
        assert public.follow(session, case_id, None, "neighbour@example.org") == 0  # once is enough
    assert _notices(notice_store, case_id) == []  # the report itself tells nobody anything
    work_to_closing(notice_store, context, case_id, steps=(("operator", "verify"),))
    with notice_store.transaction() as session:
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)).all()
        assert [e.action for e in events] == ["report", "verify"]
    outbox = _outbox(notice_store, {"email": SmtpSender("127.0.0.1", port)})
    assert outbox.send_due() == 1
    (message,) = sink.wait_for(1)
    assert message["To"] == "neighbour@example.org"
    assert "GC" not in message.get_content() and "已受理" in message.get_content()
