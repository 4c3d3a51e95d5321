"""Notices to the people who follow a case: an outbox in the database, worked by senders.

A trigger on the event log writes one `notice` row per follower whenever a case changes state, in
the same transaction as the change (migration 0009): a notice exists exactly when its change was
committed. `Outbox.send_due` takes the due rows (`FOR UPDATE SKIP LOCKED`, so several workers
never send one notice twice at the same time), hands each to the sender of its kind (e-mail by
SMTP, a phone number to the SMS gateway's HTTP webhook), and marks it sent, or counts the attempt
and sets the next one after a growing pause; after `max_attempts` it gives up and keeps the last
error. A worker that dies mid-send leaves its rows unsent and unlocked (its transaction ends with
the connection): the next worker sends them. Delivery is therefore at least once.

What a notice says is not decided here: the app passes a `Compose` function (the pages' message
catalogue, Chinese first).
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.settings import Settings
from geo.store.models import Case, CaseEvent, CaseFollower, Category, Notice, Unit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoticeFacts:
    """What a notice tells: which case moved where, and whether the reader holds its code."""

    notice_id: int
    kind: str  # email | phone
    address: str
    tracking_code: str | None  # only for the reporter: the code opens the case page and its rating
    category: str  # the category's name
    state: str  # the state the case moved to
    action: str
    unit: str | None  # the unit's name
    at: datetime


@dataclass(frozen=True)
class Message:
    """A composed notice."""

    subject: str
    body: str


Compose = Callable[[NoticeFacts], Message]


class Sender(Protocol):
    """Delivers one message to one address; raises on failure (the outbox retries)."""

    def send(self, address: str, message: Message, facts: NoticeFacts) -> None: ...


@dataclass
class SmtpSender:
    """E-mail through an SMTP server (the standard library's client; STARTTLS when asked)."""

    host: str
    port: int = 25
    sender: str = "gridcase@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0

    def send(self, address: str, message: Message, facts: NoticeFacts) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = address
        mail["Subject"] = message.subject
        mail["Message-ID"] = f"<notice-{facts.notice_id}@gridcase>"  # a resend is the same message
        mail.set_content(message.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mail)


@dataclass
class WebhookSender:
    """A POST of JSON to an SMS or messaging gateway; any answer but 2xx is a failure."""

    url: str
    timeout_s: float = 10.0

    def send(self, address: str, message: Message, facts: NoticeFacts) -> None:
        body = {
            "id": f"notice-{facts.notice_id}",  # the gateway can drop a resend it has seen
            "to": address,
            "kind": facts.kind,
            "text": message.body,
            "subject": message.subject,
        }
        response = httpx.post(self.url, json=body, timeout=self.timeout_s)
        response.raise_for_status()


class Outbox:
    """The notices table, worked by the senders of each kind."""

    def __init__(
        self,
        sessions: Callable[[], AbstractContextManager[Session]],
        senders: dict[str, Sender],
        compose: Compose,
        *,
        batch: int = 20,
        max_attempts: int = 8,
        first_pause_s: float = 30.0,
        longest_pause_s: float = 3600.0,
    ):
        self._sessions = sessions
        self.senders = senders
        self.compose = compose
        self.batch = batch
        self.max_attempts = max_attempts
        self.first_pause_s = first_pause_s
        self.longest_pause_s = longest_pause_s

    def pause_after(self, attempts: int) -> timedelta:
        """How long to wait after the n-th failed attempt: doubling, capped."""
        return timedelta(seconds=min(self.first_pause_s * 2 ** (attempts - 1), self.longest_pause_s))

    def send_due(self, now: datetime | None = None) -> int:
        """Send the notices due now (one batch, in one transaction); how many were sent."""
        now = now or datetime.now(UTC)
        sent = 0
        if not self.senders:
            return 0
        with self._sessions() as session:
            rows = session.execute(
                select(Notice, CaseEvent, Case, Category.name, Unit.name, CaseFollower.is_reporter)
                .join(CaseEvent, CaseEvent.id == Notice.event_id)
                .join(Case, Case.id == Notice.case_id)
                .join(Category, Category.code == Case.category_code)
                .join(CaseFollower, CaseFollower.id == Notice.follower_id)
                .outerjoin(Unit, Unit.code == CaseEvent.unit_code)
                .where(Notice.sent_at.is_(None), Notice.given_up_at.is_(None), Notice.next_attempt_at <= now)
                # Only what this server can send: one without a mail server leaves the e-mails to
                # one that has it, instead of spending their attempts (several servers, one table).
                .where(Notice.kind.in_(list(self.senders)))
                .order_by(Notice.next_attempt_at, Notice.id)
                .limit(self.batch)
                .with_for_update(of=Notice, skip_locked=True)
            ).all()
            for notice, event, case, category, unit, is_reporter in rows:
                facts = NoticeFacts(
                    notice_id=notice.id,
                    kind=notice.kind,
                    address=notice.address,
                    tracking_code=case.tracking_code if is_reporter else None,
                    category=category,
                    state=event.to_state,
                    action=event.action,
                    unit=unit,
                    at=event.at,
                )
                sent += self._attempt(notice, facts, now)
        return sent

    def _attempt(self, notice: Notice, facts: NoticeFacts, now: datetime) -> bool:
        sender = self.senders.get(notice.kind)
        notice.attempts += 1
        try:
            if sender is None:
                raise LookupError(f"no sender for {notice.kind} notices is configured")
            sender.send(notice.address, self.compose(facts), facts)
        except Exception as exc:  # noqa: BLE001 - any failure of a sender is retried later
            notice.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if notice.attempts >= self.max_attempts:
                notice.given_up_at = now
            else:
                notice.next_attempt_at = now + self.pause_after(notice.attempts)
            log.warning(
                "notice %s to a %s failed (attempt %s): %s", notice.id, notice.kind, notice.attempts, exc
            )
            return False
        notice.sent_at = now
        notice.last_error = None
        return True


class OutboxWorker:
    """A daemon thread that sends due notices every `interval_s` seconds, or at once when woken."""

    def __init__(self, outbox: Outbox, interval_s: float = 5.0):
        self.outbox = outbox
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.errors = 0

    def wake(self) -> None:
        """Look at the outbox now (a case just changed)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                while (sent := self.outbox.send_due()) > 0:
                    self.sent += sent
            except Exception:  # noqa: BLE001 - e.g. the database is away: the notices stay
                self.errors += 1
                log.exception("working the notices outbox failed; will retry")

    def start(self) -> OutboxWorker:
        """Start sending in the background."""
        self._thread = threading.Thread(target=self._run, name="notice-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current batch (what is unsent stays in the table for the next worker)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()


def senders_from(settings: Settings) -> dict[str, Sender]:
    """The senders the settings configure: e-mail by SMTP, phone numbers by the webhook."""
    found: dict[str, Sender] = {}
    if settings.smtp_host:
        found["email"] = SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_starttls,
            settings.smtp_username,
            settings.smtp_password,
        )
    if settings.notice_webhook_url:
        found["phone"] = WebhookSender(settings.notice_webhook_url)
    return found
