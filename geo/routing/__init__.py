"""Routing: a geolocated report gets its grid and responsible unit by spatial lookup, explained.

`Router` keeps the grids of each boundary generation in an in-process spatial index (PostGIS stays
the source of truth) and rebuilds it when any import bumps the reference version — no restart.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from geo.areas import current_generation, generation_at
from geo.coords import CoordinateSystem, parse_crs, to_wgs84
from geo.errors import InvalidCoordinates, OutsideCoverage, UnknownCategory
from geo.importing import reference_version
from geo.routing.decision import RoutingDecision, RoutingStatus
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


class Router:
    """Routes reports against the generation valid at their time; thread-safe, cached."""

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
        self._lock = threading.Lock()
        self._snapshots: dict[int, Snapshot] = {}
        self._version: int | None = None
        self._current: int | None = None
        self._checked = -math.inf

    # -- the cache ------------------------------------------------------------------------------
    def _refresh(self, session: Session) -> None:
        version = reference_version(session)
        if version != self._version:
            self._snapshots.clear()
            self._version = version
        self._current = current_generation(session)
        self._checked = time.monotonic()

    def snapshot(self, at: datetime | None = None) -> Snapshot:
        """The index and tables of the generation valid at `at` (default: now)."""
        with self._lock:
            stale = time.monotonic() - self._checked > self.refresh_seconds
            if at is None and not stale and self._current in self._snapshots:
                return self._snapshots[self._current]  # the hot path: no database round trip
            with self.sessions() as session:
                if stale or self._version is None:
                    self._refresh(session)
                generation = self._current if at is None else generation_at(session, at)
                if generation is None:
                    raise OutsideCoverage(
                        "no boundaries were in force at that time"
                        if at
                        else "no boundaries are loaded yet: import grids first",
                        field="reported_at",
                    )
                if generation not in self._snapshots:
                    self._snapshots[generation] = load_snapshot(session, generation, self._version or 0)
                return self._snapshots[generation]

    def invalidate(self) -> None:
        """Forget cached indexes (the next lookup re-reads PostGIS)."""
        with self._lock:
            self._snapshots.clear()
            self._checked = -math.inf

    # -- routing --------------------------------------------------------------------------------
    def route(
        self,
        lon: float,
        lat: float,
        category: str | None = None,
        crs: CoordinateSystem | str = "wgs84",
        at: datetime | None = None,
    ) -> RoutingDecision:
        """Route one report: normalise the coordinates, find the grid, apply the rules."""
        system = parse_crs(crs)
        check_coordinates(lon, lat)
        snapshot = self.snapshot(at)
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
    ) -> list[RoutingDecision]:
        """Route many reports of one coordinate system in one vectorised lookup."""
        system = parse_crs(crs)
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        for i in range(len(lon)):
            check_coordinates(float(lon[i]), float(lat[i]))
        snapshot = self.snapshot(at)
        for code in {c for c in categories if c is not None}:
            if code not in snapshot.categories:
                raise UnknownCategory(f"category {code!r} is not in the catalogue", field="category")
        x, y = to_wgs84(lon, lat, system)
        index = snapshot.index.locate(x, y)
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
