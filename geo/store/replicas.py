"""Read replicas: which PostgreSQL standby may answer a read now, and how far behind each one is.

`Replicas` watches the streaming replicas of `GRIDCASE_READ_DATABASE_URL` (comma-separated) from a
daemon thread: every `interval_s` it reads the primary's WAL position (`pg_current_wal_lsn()`) and
each replica's replayed position (`pg_last_wal_replay_lsn()`). A replica's lag is the age of the
oldest primary position it has not replayed yet (0 when it has replayed everything the primary
had written): an idle primary is no lag, and a replica cut off from its primary lags more every
second even though it replays nothing (`now() - pg_last_xact_replay_timestamp()` would get both
wrong). A replica that lags more than `max_lag_s` or does not answer is skipped.

Read your writes: the answer to a write carries the primary's WAL position after its commit (the
`gridcase_lsn` cookie, api/replication.py); a reader that presents one is served by a replica only
once the replica is known to have replayed that far (positions only grow, so the watcher's last
reading is a safe lower bound), else by the primary. Positions are compared, nothing is kept on
the server: every worker and every host decides the same way.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

#: How long the watcher remembers the primary's positions (a lag past it reads as at least this).
HISTORY_S = 600.0

_REPLAYED = text(
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"
)
_WRITTEN = text("SELECT pg_current_wal_lsn()")


def lsn_value(lsn: str | None) -> int | None:
    """A WAL position `16/B374D848` as one comparable integer (None stays None)."""
    if not lsn:
        return None
    high, _, low = str(lsn).partition("/")
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return None


def lsn_text(value: int) -> str:
    """The integer back in PostgreSQL's notation."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def public_url(url: str) -> str:
    """A URL without its password, for /healthz and logs."""
    return make_url(url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class ReplicaState:
    """What the watcher last saw of one replica."""

    name: str
    url: str  # without the password
    up: bool
    lag_s: float | None  # None while down or never seen
    replayed: int | None  # WAL position replayed, as `lsn_value`
    usable: bool  # up and within the lag bound
    error: str | None = None


class Replicas:
    """The read replicas of one process: engines, the lag watcher, and the choice of a replica."""

    def __init__(
        self,
        primary: Engine,
        replicas: dict[str, Engine],
        *,
        max_lag_s: float = 5.0,
        interval_s: float = 0.5,
    ):
        self.primary = primary
        self.engines = replicas
        self.sessions = {
            name: sessionmaker(engine, expire_on_commit=False) for name, engine in replicas.items()
        }
        self.max_lag_s = max_lag_s
        self.interval_s = interval_s
        self._written: deque[tuple[float, int]] = deque()  # (monotonic time, primary position)
        self._states = {
            name: ReplicaState(name, public_url(str(e.url.render_as_string(False))), False, None, None, False)
            for name, e in replicas.items()
        }
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sampled = threading.Event()  # set after each round (tests and start-up wait on it)

    # -- the watcher ------------------------------------------------------------------------------
    def start(self) -> Replicas:
        """Watch in the background (one round first, so the first request already knows)."""
        self.sample()
        self._thread = threading.Thread(target=self._run, name="replica-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching and close the replicas' connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for engine in self.engines.values():
            engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                log.exception("watching the read replicas failed; will retry")

    def sample(self) -> None:
        """One round: the primary's position, then each replica's replayed position and lag."""
        now = time.monotonic()
        try:
            with self.primary.connect() as conn:
                written = lsn_value(conn.execute(_WRITTEN).scalar())
        except Exception:  # noqa: BLE001 - the primary away: judge replicas by what we knew
            written = None
        with self._lock:
            if written is not None and (not self._written or written > self._written[-1][1]):
                self._written.append((now, written))
            while len(self._written) > 1 and self._written[0][0] < now - HISTORY_S:
                self._written.popleft()
        for name, engine in self.engines.items():
            self._record(self._look(name, engine, now))
        self.sampled.set()

    def _look(self, name: str, engine: Engine, now: float) -> ReplicaState:
        url = self._states[name].url
        try:
            with engine.connect() as conn:
                replayed = lsn_value(conn.execute(_REPLAYED).scalar())
        except Exception as exc:  # noqa: BLE001 - down, refusing, or not reachable
            return ReplicaState(name, url, False, None, None, False, str(exc).splitlines()[0][:200])
        lag = self._lag(replayed, now)
        return ReplicaState(name, url, True, lag, replayed, lag <= self.max_lag_s)

    def _lag(self, replayed: int | None, now: float) -> float:
        """Seconds since the primary first wrote past what the replica replayed (0: caught up)."""
        with self._lock:
            for at, position in self._written:
                if replayed is None or position > replayed:
                    return round(now - at, 3)
        return 0.0

    def _record(self, state: ReplicaState) -> None:
        with self._lock:
            self._states[state.name] = state

    # -- choosing -------------------------------------------------------------------------------
    def states(self) -> list[ReplicaState]:
        """Each replica as last seen, in configuration order."""
        with self._lock:
            return [self._states[name] for name in self.engines]

    def choose(self, after: int | None = None) -> str | None:
        """A usable replica that has replayed at least `after` (round robin), else None."""
        candidates = [
            s.name
            for s in self.states()
            if s.usable and (after is None or (s.replayed is not None and s.replayed >= after))
        ]
        if not candidates:
            return None
        return candidates[next(self._turn) % len(candidates)]

    def session(self, name: str) -> Session:
        """A session on that replica (connect it before use: see `open_session`)."""
        return self.sessions[name]()

    def open_session(self, after: int | None = None) -> tuple[str, Session] | None:
        """A session already connected to a usable replica, or None (then read the primary).

        Connecting here, not at the first query, means a replica that went away since the last
        round is found now: it is marked down and the next one (or the primary) answers, and the
        request sees no error.
        """
        tried: set[str] = set()
        while (name := self.choose(after)) is not None and name not in tried:
            tried.add(name)
            session = self.session(name)
            try:
                session.connection()
                return name, session
            except Exception as exc:  # noqa: BLE001 - gone since the last round
                session.close()
                self.mark_down(name, str(exc).splitlines()[0][:200])
        return None

    def mark_down(self, name: str, error: str) -> None:
        """Skip a replica until the watcher sees it answer again."""
        with self._lock:
            old = self._states[name]
            self._states[name] = ReplicaState(name, old.url, False, None, None, False, error)

    def written(self) -> int | None:
        """The primary's WAL position now (after a write committed: what a reader must wait for)."""
        with self.primary.connect() as conn:
            return lsn_value(conn.execute(_WRITTEN).scalar())
