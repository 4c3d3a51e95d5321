"""Routing: a geolocated report gets its grid and responsible unit by spatial lookup, explained.

`Router` keeps the grids of each boundary generation in an in-process spatial index (PostGIS stays
the source of truth) and rebuilds it when any import bumps the reference version — no restart.
Which generation was in force at a time is answered from memory too (`geo.routing.generations`),
so a report routed at "now" or at any time of a cached generation costs no database round trip.
"""

from __future__ import annotations

import contextlib
import gc
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from geo.areas import generation_at
from geo.coords import CoordinateSystem, parse_crs, to_wgs84
from geo.errors import InvalidCoordinates, OutsideCoverage, UnknownCategory
from geo.importing import reference_version
from geo.routing.decision import RoutingDecision, RoutingStatus
from geo.routing.generations import Generations, load_generations
from geo.routing.index import PARALLEL_MIN_POINTS, bulk_pool
from geo.routing.rules import decide
from geo.routing.snapshot import Snapshot, load_snapshot

__all__ = ["Router", "RoutingDecision", "RoutingStatus", "check_coordinates"]

DEFAULT_TOLERANCE_M = 50.0


def check_coordinates(lon: float, lat: float) -> None:
    """Refuse NaN, infinities, out-of-range and swapped coordinates with a message naming the field."""
    for name, value in (("lon", lon), ("lat", lat)):
        if value is None or not math.isfinite(value):
            raise InvalidCoordinates(f"{name} must be a finite number, got {value}", field=name)
    if abs(lat) > 90 and abs(lon) <= 90 and abs(lat) <= 180:
        raise InvalidCoordinates(
            f"lat {lat} is out of range (−90..90) but would be a valid longitude, and lon {lon} "
            "a valid latitude: the coordinates look swapped (send lon first, then lat)",
            field="lat",
        )
    if not -180 <= lon <= 180:
        raise InvalidCoordinates(f"lon {lon} is out of range (−180..180)", field="lon")
    if not -90 <= lat <= 90:
        raise InvalidCoordinates(f"lat {lat} is out of range (−90..90)", field="lat")


@dataclass
class _Cache:
    """What the router knows of one reference version; replaced whole when the version changes."""

    version: int
    generations: Generations
    snapshots: dict[int, Snapshot] = field(default_factory=dict)


class Router:
    """Routes reports against the generation valid at their time; thread-safe, cached.

    Pass the request's own `session` to `route`, `route_many` or `snapshot` when there is one:
    a cache miss then reads PostGIS on that session, so a request never needs a second pooled
    connection (the session should hold no uncommitted reference-data change: what it reads is
    cached for everyone until the version moves). Bulk lookups run on threads the router starts
    on first use; `close()` (the app's shutdown, or leaving a `with Router(...)` block) stops them.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        tolerance_m: float = DEFAULT_TOLERANCE_M,
        refresh_seconds: float = 1.0,
    ):
        self.sessions = sessions
        self.tolerance_m = tolerance_m
        # How often to ask PostGIS whether reference data changed; the check is one tiny query.
        self.refresh_seconds = refresh_seconds
        # `_lock` guards the cache and is never held across database I/O, so a lookup the cache
        # answers never waits for another thread's query. `_checking` makes one thread at a time
        # ask for the version (the others wait for its answer, one tiny query); `_loading` makes
        # concurrent misses load a snapshot once, without holding up lookups of cached ones.
        self._lock = threading.Lock()
        self._checking = threading.Lock()
        self._loading = threading.Lock()
        self._cache: _Cache | None = None
        self._checked = -math.inf  # time.monotonic() of the last version check
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the bulk-lookup threads, waiting for running lookups; a later one starts new threads."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> Router:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _bulk_pool(self, points: int) -> ThreadPoolExecutor | None:
        """The router's pool for a lookup of this many points, started on first use; None if small."""
        if points < PARALLEL_MIN_POINTS:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = bulk_pool()
            return self._pool

    # -- the cache ------------------------------------------------------------------------------
    def snapshot(self, at: datetime | None = None, *, session: Session | None = None) -> Snapshot:
        """The index and tables of the generation valid at `at` (default: now)."""
        cached, fresh = self._cached(at)
        if cached is not None and (fresh or self._checking.locked()):
            # The hot path: no database round trip and no waiting. While another thread asks
            # for the version, the snapshot it is checking still answers (for a few ms).
            return cached
        with self._reading(session) as reading:
            cache = self._checked_cache(reading)
            generation = self._generation(cache, at, reading)
            with self._lock:
                found = cache.snapshots.get(generation)
            if found is not None:
                return found
            with self._loading:  # concurrent misses of one generation load it once
                found = cache.snapshots.get(generation)
                if found is None:
                    found = load_snapshot(reading, generation, cache.version)
                    with self._lock:
                        cache.snapshots[generation] = found
                    _out_of_the_collectors_way()
                return found

    def answers_from_memory(self, at: datetime | None = None) -> bool:
        """Whether a lookup at `at` would be answered from the cache, with no database round trip
        (then it is CPU work of microseconds, fine on an event loop)."""
        cached, fresh = self._cached(at)
        return cached is not None and (fresh or self._checking.locked())

    def _cached(self, at: datetime | None) -> tuple[Snapshot | None, bool]:
        """The cached snapshot for `at` (None if not cached), and whether the version check is fresh."""
        with self._lock:
            cache = self._cache
            fresh = time.monotonic() - self._checked <= self.refresh_seconds
        if cache is None or (at is not None and at.tzinfo is None):
            return None, fresh  # a naive time is PostgreSQL's to read (in its session TimeZone)
        generation = cache.generations.current(_now()) if at is None else cache.generations.at(at)
        with self._lock:
            return (cache.snapshots.get(generation) if generation is not None else None), fresh

    def _fresh_cache(self) -> _Cache | None:
        """The cache if its version was checked within the refresh interval, else None."""
        with self._lock:
            if time.monotonic() - self._checked > self.refresh_seconds:
                return None
            return self._cache

    @contextmanager
    def _reading(self, session: Session | None) -> Iterator[Session]:
        """The caller's session (its pending rows left unflushed), or one of our own.

        Our own takes a pooled connection only at its first query: a thread that only waits for
        another's check or load holds none. A request that has a session should pass it, so that
        the thread doing the reading never waits for the pool while holding a router lock.
        """
        if session is not None:
            with session.no_autoflush:
                yield session
            return
        with self.sessions() as own:
            yield own

    def _checked_cache(self, session: Session) -> _Cache:
        """The cache, after asking PostGIS for the reference version if the last check is stale."""
        cache = self._fresh_cache()
        if cache is not None:
            return cache
        with self._checking:
            cache = self._fresh_cache()
            if cache is not None:
                return cache  # another thread checked while this one waited
            return self._check_now(session)

    def _check_now(self, session: Session) -> _Cache:
        """Read the reference version and replace the cache if it moved (hold `_checking`)."""
        started = time.monotonic()
        version = reference_version(session)
        with self._lock:
            cache = self._cache
        if cache is None or cache.version != version:
            cache = _Cache(version, load_generations(session))
        with self._lock:
            self._cache, self._checked = cache, started
        return cache

    def refresh(self, checked: Callable[[int], None] | None = None) -> int:
        """Check the reference version now, whatever the last check's age (a NOTIFY said it moved),
        then load the current generation's index, so the next lookup is answered from memory.

        `checked(version)` is called in between: from then on no lookup is answered from older
        reference data (a lookup waits for the index being loaded, or loads it). Returns the
        version now cached.
        """
        with self.sessions() as session:
            with self._checking:
                # Not `_fresh_cache`: a check that began before the change committed may have
                # just stored the old version as fresh.
                cache = self._check_now(session)
            if checked is not None:
                checked(cache.version)
            with contextlib.suppress(OutsideCoverage):  # no boundaries loaded yet: nothing to index
                self.snapshot(session=session)
        return cache.version

    @property
    def version(self) -> int | None:
        """The reference version cached now (None before the first lookup)."""
        with self._lock:
            return self._cache.version if self._cache is not None else None

    @staticmethod
    def _generation(cache: _Cache, at: datetime | None, session: Session) -> int:
        """The generation in force at `at` (default: now), or OutsideCoverage."""
        if at is None:
            generation = cache.generations.current(_now())
        elif at.tzinfo is None:
            generation = generation_at(session, at)
        else:
            generation = cache.generations.at(at)
        if generation is None:
            raise OutsideCoverage(
                "no boundaries were in force at that time"
                if at
                else "no boundaries are loaded yet: import grids first",
                field="reported_at",
            )
        return generation

    def invalidate(self) -> None:
        """Forget cached indexes (the next lookup re-reads PostGIS)."""
        with self._lock:
            self._cache = None
            self._checked = -math.inf

    # -- routing --------------------------------------------------------------------------------
    def route(
        self,
        lon: float,
        lat: float,
        category: str | None = None,
        crs: CoordinateSystem | str = "wgs84",
        at: datetime | None = None,
        *,
        session: Session | None = None,
    ) -> RoutingDecision:
        """Route one report: normalise the coordinates, find the grid, apply the rules."""
        system = parse_crs(crs)
        check_coordinates(lon, lat)
        snapshot = self.snapshot(at, session=session)
        if category is not None and category not in snapshot.categories:
            raise UnknownCategory(f"category {category!r} is not in the catalogue", field="category")
        x, y = to_wgs84(lon, lat, system)
        index = snapshot.index.locate_one(x, y)
        distance: float | None = None
        if index < 0:
            near, metres = snapshot.index.nearest(np.array([x]), np.array([y]), self.tolerance_m)
            index = int(near[0])
            distance = float(metres[0]) if index >= 0 else None
        return decide(
            snapshot,
            lon=x,
            lat=y,
            input_crs=system.value,
            category_code=category,
            grid_index=index,
            distance_m=distance,
            tolerance_m=self.tolerance_m,
        )

    def route_many(
        self,
        lon: np.ndarray,
        lat: np.ndarray,
        categories: list[str | None],
        crs: CoordinateSystem | str = "wgs84",
        at: datetime | None = None,
        *,
        session: Session | None = None,
    ) -> list[RoutingDecision]:
        """Route many reports of one coordinate system in one vectorised lookup."""
        system = parse_crs(crs)
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        for i in range(len(lon)):
            check_coordinates(float(lon[i]), float(lat[i]))
        snapshot = self.snapshot(at, session=session)
        for code in {c for c in categories if c is not None}:
            if code not in snapshot.categories:
                raise UnknownCategory(f"category {code!r} is not in the catalogue", field="category")
        x, y = to_wgs84(lon, lat, system)
        index = snapshot.index.locate(x, y, self._bulk_pool(len(x)))
        distance = np.full(len(x), np.nan)
        missing = np.flatnonzero(index < 0)
        if len(missing):
            near, metres = snapshot.index.nearest(x[missing], y[missing], self.tolerance_m)
            index[missing] = near
            distance[missing] = metres
        return [
            decide(
                snapshot,
                lon=float(x[i]),
                lat=float(y[i]),
                input_crs=system.value,
                category_code=categories[i],
                grid_index=int(index[i]),
                distance_m=None if np.isnan(distance[i]) else float(distance[i]),
                tolerance_m=self.tolerance_m,
            )
            for i in range(len(x))
        ]


def _out_of_the_collectors_way() -> None:
    """Move what the process holds now (a loaded index of thousands of objects, the app's own)
    out of the cyclic garbage collector's full passes (`gc.freeze`).

    Every lookup allocates decision models; a batch keeps thousands alive for a moment, and every
    few batches a full collection walked the whole heap, index included: half the CPU of a batch
    (bench/route_http.py). Frozen objects are still freed when their last reference goes; what
    was frozen before is unfrozen and collected first, so a replaced index in a reference cycle
    is not kept either.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _now() -> datetime:
    """The time "now" routes at; the app's clock, which the database's is assumed to agree with."""
    return datetime.now(UTC)
