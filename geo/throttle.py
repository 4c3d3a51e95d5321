"""Throttles: too many wrong passwords, tracking-code guesses or public reports in a window → wait.

Kept in the process's memory: a restart forgets them, and with several worker processes each
counts its own share (the limit then holds per worker). That is enough to turn a 200-guesses-in-
41-seconds attack into a few guesses per quarter hour without a table on the hot path.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from geo.errors import GridcaseError


class TooManyAttempts(GridcaseError):
    """Too many failures for this account or address in the window; retry after a while."""

    def __init__(self, message: str, *, retry_after: int, field: str | None = None):
        super().__init__(message, field=field)
        self.retry_after = retry_after


@dataclass
class Throttle:
    """At most `limit` failures per key within `window_s` seconds."""

    limit: int
    window_s: float
    what: str  # "wrong passwords for this account", for the message
    names: str  # the input the refusal names
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def check(self, key: str) -> None:
        """Refuse when the key has used up its failures; otherwise let the attempt through."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.limit:
                return
            wait = max(1, math.ceil(times[0] + self.window_s - now))
        raise TooManyAttempts(
            f"too many {self.what} ({self.limit} in {self.window_s / 60:g} min); try again in {wait} s",
            retry_after=wait,
            field=self.names,
        )

    def fail(self, key: str) -> None:
        """Count one failure."""
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # an address flood must not grow memory without end
                self._failures = {
                    k: v for k, v in self._failures.items() if v and v[-1] > now - self.window_s
                }

    def spend(self, key: str) -> None:
        """A rate limit: refuse when the key used up its window, else count this attempt."""
        self.check(key)
        self.fail(key)

    def reset(self, key: str) -> None:
        """Forget a key's failures (a right password)."""
        with self._lock:
            self._failures.pop(key, None)


@dataclass
class Throttles:
    """The throttles of one app."""

    sign_in_account: Throttle = field(
        default_factory=lambda: Throttle(5, 15 * 60, "wrong passwords for this account", "username")
    )
    sign_in_address: Throttle = field(
        default_factory=lambda: Throttle(30, 15 * 60, "failed sign-ins from this address", "client")
    )
    tracking_address: Throttle = field(
        default_factory=lambda: Throttle(30, 60, "unknown tracking codes from this address", "tracking_code")
    )


def public_throttles(per_address: int, per_phone: int) -> tuple[Throttle, Throttle]:
    """The light rate limit on reports and follows from people not signed in: per address and
    per phone number, each per hour."""
    return (
        Throttle(per_address, 3600, "reports from this address", "client"),
        Throttle(per_phone, 3600, "reports with this phone number", "phone"),
    )
