"""The router's cache and lifecycle: no query on the hot path, one connection per request, no leaks.

A small database with two boundary generations (a re-cut merges grid 002 into 001): the first in
force from 300 days ago, the second from 100 days ago, so "now" is inside the second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import create_engine, event
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker

from geo import importing
from geo.areas import current_generation, generation_at
from geo.routing import Router
from geo.routing.generations import load_generations
from geo.routing.index import PARALLEL_MIN_POINTS, THREAD_NAME, AreaIndex, workers
from geo.store import Store
from geo.store.models import BoundaryGeneration
from tests.conftest import FIXTURES, fresh_store

NOW = datetime.now(UTC)
FIRST = NOW - timedelta(days=300)  # the first generation's start
RECUT = NOW - timedelta(days=100)  # the re-cut's start
IN_FIRST = NOW - timedelta(days=200)


@pytest.fixture(scope="module")
def cache_store(settings, tmp_path_factory) -> Iterator[Store]:
    """Two generations of the fixture boundaries; grid 002 exists only in the first."""
    frame = gpd.read_file(FIXTURES / "import" / "valid.geojson")
    merged = shapely.union(*frame.loc[frame.code.isin(["421281001001001", "421281001001002"]), "geometry"])
    frame.loc[frame.code == "421281001001001", "geometry"] = merged
    recut = tmp_path_factory.mktemp("recut") / "recut.geojson"
    frame[frame.code != "421281001001002"].to_file(recut, driver="GeoJSON")
    store = fresh_store(settings, "routing_cache")
    with store.transaction() as session:
        importing.import_areas(session, FIXTURES / "import" / "valid.geojson", valid_from=FIRST)
        importing.import_areas(session, recut, valid_from=RECUT)
    yield store
    store.dispose()


@pytest.fixture(scope="module")
def point() -> tuple[float, float]:
    """A point in grid 002 of the first generation (in 001 after the re-cut)."""
    frame = gpd.read_file(FIXTURES / "import" / "valid.geojson")
    inside = frame.loc[frame.code == "421281001001002", "geometry"].iloc[0].representative_point()
    return inside.x, inside.y


class Statements:
    """Counts the SQL statements an engine sends, per thread name."""

    def __init__(self, engine):
        self.engine = engine
        self.by_thread: dict[str, int] = {}

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        name = threading.current_thread().name
        self.by_thread[name] = self.by_thread.get(name, 0) + 1

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self)

    @property
    def total(self) -> int:
        return sum(self.by_thread.values())


def test_the_generation_in_memory_is_the_one_postgis_names(cache_store):
    with cache_store.sessions() as session:
        generations = load_generations(session)
        assert len(generations.ids) == 2
        for when in (FIRST - timedelta(seconds=1), FIRST, IN_FIRST, RECUT, NOW, NOW + timedelta(days=900)):
            assert generations.at(when) == generation_at(session, when), when
        assert generations.current(datetime.now(UTC)) == current_generation(session)
    assert generations.at(FIRST - timedelta(seconds=1)) is None


def test_ties_and_out_of_order_starts_follow_postgis_too(session):
    """Equal starts, an id newer than a later start, one scheduled: the two rules differ here."""
    offsets = [-300, -200, -200, 30, -250]  # days from now, in id order
    for days in offsets:
        session.add(BoundaryGeneration(valid_from=NOW + timedelta(days=days), description="test"))
    session.flush()
    generations = load_generations(session)
    times = [NOW + timedelta(days=d, seconds=s) for d in offsets for s in (-1, 0, 1)]
    for when in [*times, NOW, NOW + timedelta(days=400)]:
        assert generations.at(when) == generation_at(session, when), when
    assert generations.current(datetime.now(UTC)) == current_generation(session)
    assert generations.current(NOW) != generations.at(NOW)  # max id vs latest start


def test_lookups_at_now_and_in_a_cached_generation_send_no_query(cache_store, point):
    router = Router(cache_store.sessions, refresh_seconds=3600)
    assert router.route(*point, at=datetime.now(UTC)).grid.code == "421281001001001"
    assert router.route(*point, at=IN_FIRST).grid.code == "421281001001002"
    with Statements(cache_store.engine) as sent:
        for _ in range(3):
            assert router.route(*point, at=datetime.now(UTC)).grid.code == "421281001001001"
        assert router.route(*point).grid.code == "421281001001001"
        assert router.route(*point, at=RECUT + timedelta(days=1)).grid.code == "421281001001001"
        assert router.route(*point, at=IN_FIRST).grid.code == "421281001001002"
        assert router.route(*point, at=FIRST).grid.code == "421281001001002"  # its first instant
        assert router.snapshot(NOW).generation == router.snapshot().generation
    assert sent.total == 0
    # The listener does see the router's queries: once forgotten, the cache is read again.
    router.invalidate()
    with Statements(cache_store.engine) as sent:
        router.route(*point, at=datetime.now(UTC))
    assert sent.total > 0


def test_with_the_only_connection_held_by_the_caller_routing_still_answers(cache_store, point):
    engine = create_engine(cache_store.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    sessions = sessionmaker(engine)
    try:
        with sessions() as caller:
            caller.connection()  # the request's own connection: the pool has no other
            with pytest.raises(PoolTimeout):  # what a second pooled session would meet
                Router(sessions).route(*point, at=IN_FIRST)
            router = Router(sessions)
            assert router.route(*point, at=IN_FIRST, session=caller).grid.code == "421281001001002"
            assert router.route(*point, at=datetime.now(UTC), session=caller).grid.code == "421281001001001"
            decisions = router.route_many(np.array([point[0]]), np.array([point[1]]), [None], session=caller)
            assert decisions[0].grid.code == "421281001001001"
            # Cached now: no session needed at all.
            assert router.route(*point, at=datetime.now(UTC)).grid.code == "421281001001001"
    finally:
        engine.dispose()


def test_a_cached_lookup_does_not_wait_for_another_threads_load(cache_store, point):
    router = Router(cache_store.sessions, refresh_seconds=3600)
    router.route(*point)  # the current generation is cached; the first one is not
    blocked, release = threading.Event(), threading.Event()

    def hold_the_loader(conn, cursor, statement, parameters, context, executemany) -> None:
        if threading.current_thread().name == "loader" and not blocked.is_set():
            blocked.set()
            release.wait(5)

    answers = {}
    loader = threading.Thread(
        target=lambda: answers.setdefault("first", router.route(*point, at=IN_FIRST)), name="loader"
    )
    with Statements(cache_store.engine) as sent:
        event.listen(cache_store.engine, "before_cursor_execute", hold_the_loader)
        try:
            loader.start()
            assert blocked.wait(10), "the loader never reached the database"
            started = time.monotonic()
            now = router.route(*point, at=datetime.now(UTC))
            waited = time.monotonic() - started
        finally:
            release.set()
            loader.join(10)
            event.remove(cache_store.engine, "before_cursor_execute", hold_the_loader)
    assert waited < 1, f"a cached lookup waited {waited:.1f} s for another thread's query"
    assert now.grid.code == "421281001001001"
    assert set(sent.by_thread) == {"loader"}
    assert answers["first"].grid.code == "421281001001002"


def test_while_one_thread_checks_the_version_the_others_answer_from_the_cache(cache_store, point):
    router = Router(cache_store.sessions, refresh_seconds=0)  # every lookup is due for a check
    router.route(*point)
    blocked, release = threading.Event(), threading.Event()

    def hold_the_checker(conn, cursor, statement, parameters, context, executemany) -> None:
        if threading.current_thread().name == "checker" and not blocked.is_set():
            blocked.set()
            release.wait(5)

    checker = threading.Thread(target=lambda: router.route(*point), name="checker")
    with Statements(cache_store.engine) as sent:
        event.listen(cache_store.engine, "before_cursor_execute", hold_the_checker)
        try:
            checker.start()
            assert blocked.wait(10), "the checker never reached the database"
            started = time.monotonic()
            for _ in range(20):
                assert router.route(*point, at=datetime.now(UTC)).grid.code == "421281001001001"
            waited = time.monotonic() - started
        finally:
            release.set()
            checker.join(10)
            event.remove(cache_store.engine, "before_cursor_execute", hold_the_checker)
    # Waiting for the check (or taking a connection for it) is what exhausted the pool under load.
    assert waited < 1, f"lookups waited {waited:.1f} s for another thread's version check"
    assert set(sent.by_thread) == {"checker"}


def _bulk_threads() -> int:
    return sum(t.name.startswith(THREAD_NAME) for t in threading.enumerate())


def test_routers_and_indexes_leave_no_threads_behind(cache_store, point):
    rng = np.random.default_rng(11)
    lon = point[0] + rng.uniform(-0.01, 0.01, PARALLEL_MIN_POINTS)
    lat = point[1] + rng.uniform(-0.01, 0.01, PARALLEL_MIN_POINTS)
    before = _bulk_threads()
    for _ in range(3):
        with Router(cache_store.sessions) as router:
            decisions = router.route_many(lon, lat, [None] * len(lon))
            assert len(decisions) == len(lon)
            if workers() > 1:  # on one CPU bulk lookups start no threads at all
                assert _bulk_threads() > before, "the bulk lookup ran on the router's threads"
        assert _bulk_threads() == before
    router.close()  # closing twice is harmless
    index = AreaIndex(["a"], [shapely.box(0, 0, 1, 1)])
    assert (
        index.locate(rng.uniform(0, 1, PARALLEL_MIN_POINTS), rng.uniform(0, 1, PARALLEL_MIN_POINTS)).min()
        == 0
    )
    assert _bulk_threads() == before
