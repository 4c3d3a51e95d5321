"""What one server process hears of the others: PostgreSQL LISTEN/NOTIFY, and the live feeds it wakes.

Triggers (migration 0014) send `NOTIFY gridcase_reference` when reference data changes (imports,
boundary generations, units and categories from the admin desk) and `NOTIFY gridcase_case_events`
when the case event log grows, each in the writing transaction, so every listener hears it exactly
when it commits, whichever worker or host wrote it. `Listener` is one daemon thread per process
with one direct connection (LISTEN cannot go through PgBouncer in transaction mode: the session
that listens must stay the same). When it loses the connection it reconnects with backoff and
tells each handler "maybe missed something" (a `None` payload); meanwhile the periodic checks
(the router's version check, the feeds' look at the event log) carry on as the fallback.

`Broadcast` carries a notification from the listener thread to the coroutines of the process's
event loops that wait for it (the workstations' server-sent events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

REFERENCE = "gridcase_reference"
CASE_EVENTS = "gridcase_case_events"
#: Each process announces here that it applied a reference change: `{pid} {version}`.
REFERENCE_APPLIED = "gridcase_reference_applied"

Handler = Callable[[str | None], None]


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as libpq takes it (no `+psycopg` driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def application_name() -> str:
    """How this process's listening connection shows in pg_stat_activity."""
    return f"gridcase-listen-{os.getpid()}"


class Listener:
    """LISTEN on a few channels from a daemon thread; each notification goes to its handler."""

    def __init__(
        self, url: str, handlers: dict[str, Handler], *, poll_s: float = 0.5, max_backoff_s: float = 5.0
    ):
        self.url = libpq_url(url)
        self.handlers = handlers
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self._outgoing: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.heard = 0

    def start(self) -> Listener:
        """Listen in the background."""
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def notify(self, channel: str, payload: str) -> None:
        """Send a notification from the listening connection: at once from a handler (the
        listener's own thread), else at the connection's next turn."""
        if threading.current_thread() is self._thread and self._conn is not None:
            self._conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
            return
        with self._lock:
            self._outgoing.append((channel, payload))

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, connect_timeout=5, application_name=application_name()
                ) as conn:
                    for channel in self.handlers:
                        conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
                    self.connected.set()
                    backoff = 0.2
                    self._serve(conn)
            except Exception:  # noqa: BLE001 - the database away: the periodic checks carry on
                log.warning("listening for changes failed; retrying in %.1f s", backoff, exc_info=True)
            self.connected.clear()
            if self._stop.wait(backoff):
                break
            backoff = min(self.max_backoff_s, backoff * 2)

    def _serve(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        try:
            self._listen(conn)
        finally:
            self._conn = None

    def _listen(self, conn: psycopg.Connection) -> None:
        self._deliver(None)  # whatever changed while we were not listening
        while not self._stop.is_set():
            heard = [(n.channel, n.payload) for n in conn.notifies(timeout=self.poll_s)]
            for channel, payload in heard:
                self.heard += 1
                self._call(channel, payload)
            with self._lock:
                outgoing, self._outgoing = self._outgoing, []
            for channel, payload in outgoing:
                conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    def _deliver(self, payload: str | None) -> None:
        for channel in self.handlers:
            self._call(channel, payload)

    def _call(self, channel: str, payload: str | None) -> None:
        handler = self.handlers.get(channel)
        if handler is None:
            return
        try:
            handler(payload)
        except Exception:  # noqa: BLE001 - one handler's trouble must not stop the listening
            log.exception("handling a %s notification failed", channel)


class Broadcast:
    """A value that grows (the newest case event id), awaited by coroutines on any event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.value = 0

    def publish(self, value: int | None) -> None:
        """From any thread: record the value (if larger) and wake every waiter."""
        with self._lock:
            if value is not None and value > self.value:
                self.value = value
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop closed: its waiter is gone with it
                loop.call_soon_threadsafe(event.set)

    async def wait(self, timeout: float) -> None:
        """Until the next publish, or `timeout` seconds."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(entry)
