"""Running as many processes on many hosts: read replicas, LISTEN/NOTIFY, shared throttles.

- `ReadSessionDep`: the session of a read that may be answered by a replica (dashboards, maps,
  stats, reports, public reads): a usable replica that has replayed the reader's own last write,
  else the request's primary session. Who the reader is (tokens, page sessions) is still checked
  on the primary: signing out or a disabled account counts at once.
- `ReadYourWrites`: a successful write's answer carries the primary's WAL position after its commit
  in the cookie `gridcase_lsn`; the reads that follow go to a replica only once it replayed that
  far. Every answer names the process (`X-Gridcase-Worker`) and a read's answer where it was read
  (`X-Gridcase-Read`: `primary` or `replica1`…).
- `Scaling`: what a process starts for this at its start: the replicas' watcher, the throttles'
  connections, and the LISTEN thread that rebuilds the routing index and wakes the live feeds.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from collections.abc import AsyncIterator
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import SessionDep
from geo.fanout import CASE_EVENTS, REFERENCE, REFERENCE_APPLIED, Broadcast, Listener
from geo.settings import Settings
from geo.store import Store
from geo.store.replicas import Replicas, lsn_text, lsn_value

log = logging.getLogger(__name__)

LSN_COOKIE = "gridcase_lsn"
WORKER_HEADER = "x-gridcase-worker"
READ_HEADER = "x-gridcase-read"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
#: POSTs that write nothing: no read-your-writes position for them.
READ_ONLY_POSTS = {"/api/v1/route/batch", "/api/v1/public/photo-location"}
#: While LISTEN works, the feeds and the router look at the database themselves this seldom.
FALLBACK_CHECK_S = 15.0
THROTTLE_POOL = 2
#: Set by `gridcase serve` to its pid: a worker whose parent it is ends when that parent ends.
WORKER_PARENT = "GRIDCASE_WORKER_PARENT"
#: Seconds a worker may take to answer the supervisor's health check before it is restarted.
WORKER_HEALTHCHECK_S = 180
PR_SET_PDEATHSIG = 1


def end_with_parent() -> None:
    """A worker of `gridcase serve --workers N` gets SIGTERM when the serving process dies, even
    by SIGKILL (Linux's PR_SET_PDEATHSIG), so no orphan keeps the port and the database."""
    parent = os.environ.get(WORKER_PARENT)
    if not parent or not parent.isdigit() or os.getppid() != int(parent):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's own shutdown still applies
        return
    if os.getppid() != int(parent):  # the parent died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


async def read_session(request: Request, session: SessionDep) -> AsyncIterator[Session]:
    """A replica's session when one is usable and has replayed the reader's last write, else the
    primary's (the request's own session, so a request never holds two primary connections)."""
    replicas: Replicas | None = request.app.state.replicas
    found = None
    if replicas is not None:
        after = lsn_value(request.cookies.get(LSN_COOKIE))
        found = await run_in_threadpool(replicas.open_session, after)
    if found is None:
        request.state.read_from = "primary"
        yield session
        return
    name, replica = found
    request.state.read_from = name
    try:
        yield replica
    finally:
        await run_in_threadpool(replica.close)


ReadSessionDep = Annotated[Session, Depends(read_session, scope="function")]


class ReadYourWrites:
    """ASGI middleware: the write's WAL position as a cookie, the worker and the read's source as headers."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.worker = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        writes = scope["method"] in WRITES and scope["path"] not in READ_ONLY_POSTS

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((WORKER_HEADER.encode(), self.worker))
                if read_from := state.get("read_from"):
                    headers.append((READ_HEADER.encode(), str(read_from).encode()))
                if writes and message["status"] < 400 and (cookie := await _position_cookie(scope)):
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)


async def _position_cookie(scope: Scope) -> str | None:
    """`gridcase_lsn=…` with the primary's position now (after the write's commit), or None."""
    app = scope.get("app")
    replicas: Replicas | None = getattr(getattr(app, "state", None), "replicas", None)
    if replicas is None:
        return None
    try:
        position = await to_thread.run_sync(replicas.written)
    except Exception:  # noqa: BLE001 - the primary away: the write's own answer says so
        return None
    if position is None:
        return None
    age = int(max(60.0, 4 * replicas.max_lag_s))
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return f"{LSN_COOKIE}={lsn_text(position)}; Max-Age={age}; Path=/; HttpOnly; SameSite=Lax{secure}"


class Scaling:
    """The replicas, the shared throttles' engine and the LISTEN thread of one process."""

    def __init__(self, app: FastAPI, settings: Settings, store: Store):
        end_with_parent()
        self.app = app
        self.replicas = store.replicas()
        if self.replicas is not None:
            self.replicas.start()
        app.state.replicas = self.replicas
        self.throttle_engine: Engine = store.engine_of(THROTTLE_POOL)
        app.state.throttles.bind(self.throttle_engine)
        for throttle in app.state.public_limits:
            throttle.engine = self.throttle_engine
        app.state.case_events = self.case_events = Broadcast()
        listen_url = settings.listen_database_url or store.url
        self.listener = Listener(
            listen_url, {REFERENCE: self._reference_changed, CASE_EVENTS: self._case_event}
        )
        app.state.listener = self.listener
        if settings.pgbouncer and not settings.listen_database_url:
            # LISTEN through a transaction pooler would listen on whichever server connection the
            # pooler lent that moment: notifications would be lost. Fall back to the periodic checks.
            log.warning(
                "GRIDCASE_PGBOUNCER is set without GRIDCASE_LISTEN_DATABASE_URL: not listening for "
                "changes (the router and the live lists check the database periodically instead)"
            )
        else:
            self.listener.start()

    def _reference_changed(self, payload: str | None) -> None:
        """Put the new reference version in force in this process's router and say so (monitoring,
        tests), then rebuild the index."""
        self.app.state.router.refresh(
            checked=lambda version: self.listener.notify(REFERENCE_APPLIED, f"{os.getpid()} {version}")
        )

    def _case_event(self, payload: str | None) -> None:
        self.case_events.publish(int(payload) if payload and payload.isdigit() else None)

    def fallback_seconds(self, normal: float) -> float:
        """How often to look at the database unasked: seldom while LISTEN works, else as usual."""
        return FALLBACK_CHECK_S if self.listener.connected.is_set() else normal

    def stop(self) -> None:
        """Stop listening and watching; close the connections."""
        self.listener.stop()
        if self.replicas is not None:
            self.replicas.stop()
        self.throttle_engine.dispose()
