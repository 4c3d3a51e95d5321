"""Throttles: too many wrong passwords, tracking-code guesses or public reports in a window → wait.

The counts live in PostgreSQL (`throttle_hit`, one row per counted attempt, migration 0014), so
every worker process and every host behind the load balancer sees the same counts, and a restart
forgets nothing: a guesser cannot spread attempts over workers. A throttle is bound to an engine
of its own (`Throttles.bind`, at the app's start), so counting never competes with requests for
their pooled connections, and a count survives the request's rollback (a refused password raises).
Times are the database's clock, the same for every host.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from geo.errors import GridcaseError

#: Share of counted attempts that also sweep the throttle's expired rows (of every key).
SWEEP_SHARE = 0.01

_RECENT = text(
    "SELECT count(*), extract(epoch FROM min(at) + make_interval(secs => :window) - now()) "
    "FROM throttle_hit WHERE throttle = :throttle AND key = :key "
    "AND at > now() - make_interval(secs => :window)"
)
_COUNT = text("INSERT INTO throttle_hit (throttle, key) VALUES (:throttle, :key)")
_EXPIRED_OF_KEY = text(
    "DELETE FROM throttle_hit WHERE throttle = :throttle AND key = :key "
    "AND at <= now() - make_interval(secs => :window)"
)
_EXPIRED = text(
    "DELETE FROM throttle_hit WHERE throttle = :throttle AND at <= now() - make_interval(secs => :window)"
)
_FORGET = text("DELETE FROM throttle_hit WHERE throttle = :throttle AND key = :key")


class TooManyAttempts(GridcaseError):
    """Too many failures for this account or address in the window; retry after a while."""

    def __init__(self, message: str, *, retry_after: int, field: str | None = None):
        super().__init__(message, field=field)
        self.retry_after = retry_after


@dataclass
class Throttle:
    """At most `limit` failures per key within `window_s` seconds, counted in PostgreSQL."""

    name: str  # the throttle's rows in `throttle_hit`
    limit: int
    window_s: float
    what: str  # "wrong passwords for this account", for the message
    names: str  # the input the refusal names
    engine: Engine | None = field(default=None, repr=False)

    def _engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError(f"throttle {self.name} is not bound to a database (Throttles.bind)")
        return self.engine

    def _params(self, key: str) -> dict[str, object]:
        return {"throttle": self.name, "key": key, "window": self.window_s}

    def check(self, key: str) -> None:
        """Refuse when the key has used up its failures; otherwise let the attempt through."""
        with self._engine().begin() as conn:
            count, left = conn.execute(_RECENT, self._params(key)).one()
        if count < self.limit:
            return
        wait = max(1, math.ceil(float(left or 0)))
        raise TooManyAttempts(
            f"too many {self.what} ({self.limit} in {self.window_s / 60:g} min); try again in {wait} s",
            retry_after=wait,
            field=self.names,
        )

    def fail(self, key: str) -> None:
        """Count one failure (and drop the key's expired ones; now and then every key's)."""
        params = self._params(key)
        with self._engine().begin() as conn:
            conn.execute(_EXPIRED_OF_KEY, params)
            conn.execute(_COUNT, params)
            if random.random() < SWEEP_SHARE:  # an address flood must not grow the table without end
                conn.execute(_EXPIRED, params)

    def spend(self, key: str) -> None:
        """A rate limit: refuse when the key used up its window, else count this attempt."""
        self.check(key)
        self.fail(key)

    def count(self, key: str) -> int:
        """The key's failures in the window now."""
        with self._engine().begin() as conn:
            return int(conn.execute(_RECENT, self._params(key)).one()[0])

    def clear(self) -> None:
        """Forget every key's failures (tests, or an administrator after a false alarm)."""
        with self._engine().begin() as conn:
            conn.execute(text("DELETE FROM throttle_hit WHERE throttle = :throttle"), {"throttle": self.name})

    def reset(self, key: str) -> None:
        """Forget a key's failures (a right password)."""
        with self._engine().begin() as conn:
            conn.execute(_FORGET, self._params(key))


@dataclass
class Throttles:
    """The throttles of one app."""

    sign_in_account: Throttle = field(
        default_factory=lambda: Throttle(
            "sign_in_account", 5, 15 * 60, "wrong passwords for this account", "username"
        )
    )
    sign_in_address: Throttle = field(
        default_factory=lambda: Throttle(
            "sign_in_address", 30, 15 * 60, "failed sign-ins from this address", "client"
        )
    )
    tracking_address: Throttle = field(
        default_factory=lambda: Throttle(
            "tracking_address", 30, 60, "unknown tracking codes from this address", "tracking_code"
        )
    )

    def bind(self, engine: Engine) -> None:
        """Count in this database from now on."""
        for throttle in (self.sign_in_account, self.sign_in_address, self.tracking_address):
            throttle.engine = engine


def public_throttles(per_address: int, per_phone: int) -> tuple[Throttle, Throttle]:
    """The light rate limit on reports and follows from people not signed in: per address and
    per phone number, each per hour."""
    return (
        Throttle("public_address", per_address, 3600, "reports from this address", "client"),
        Throttle("public_phone", per_phone, 3600, "reports with this phone number", "phone"),
    )
