"""The database behind gridcase: PostGIS through SQLAlchemy 2 and GeoAlchemy2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from geo.settings import Settings
from geo.store import migrate
from geo.store.db import make_engine, make_sessions, normalise_url, resolve_database_url
from geo.store.replicas import Replicas

#: Connections each replica's pool keeps per process (as many again may overflow).
REPLICA_POOL_SIZE = 5


def read_database_urls(settings: Settings, database: str | None = None) -> list[str]:
    """Where reads may go: GRIDCASE_READ_DATABASE_URL (comma-separated), else in managed mode the
    running managed replicas (`gridcase db replica add`), else none."""
    if settings.read_database_url:
        return [normalise_url(u.strip()) for u in settings.read_database_url.split(",") if u.strip()]
    if settings.database_url:
        return []
    from geo.store.standby import replicas_of

    return [
        r.url(database or settings.db_name)
        for r in replicas_of(settings.state_path, settings.db_os_user)
        if r.is_running()
    ]


class Store:
    """Engine and session factory for one process, built from settings."""

    def __init__(self, settings: Settings, url: str | None = None):
        self.settings = settings
        self.url = url or resolve_database_url(settings)
        # Behind PgBouncer in transaction mode no statement is prepared on the server.
        self.prepared = not settings.pgbouncer
        self.engine: Engine = make_engine(self.url, settings.pool_size, prepared=self.prepared)
        # make_engine allows as many overflow connections as it keeps pooled.
        self.capacity = 2 * settings.pool_size
        self.sessions: sessionmaker[Session] = make_sessions(self.engine)

    def engine_of(self, pool_size: int, *, pre_ping: bool = True) -> Engine:
        """Another engine on the same database, made the same way (its own pool)."""
        return make_engine(self.url, pool_size, pre_ping=pre_ping, prepared=self.prepared)

    def replicas(self, urls: list[str] | None = None) -> Replicas | None:
        """The read replicas (not watched yet: `.start()`), or None when there are none."""
        if urls is None:
            urls = read_database_urls(self.settings, make_url(self.url).database)
        if not urls:
            return None
        engines = {
            f"replica{i + 1}": make_engine(u, REPLICA_POOL_SIZE, prepared=self.prepared)
            for i, u in enumerate(urls)
        }
        return Replicas(self.engine, engines, max_lag_s=self.settings.replica_max_lag_seconds)

    def read_sessions(self) -> Session:
        """A session for a long read (a notebook): on a usable replica if there is one, else here."""
        replicas = self.replicas()
        if replicas is not None:
            replicas.sample()
            if (found := replicas.open_session()) is not None:
                return found[1]
        return self.sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back on error."""
        with self.sessions.begin() as session:
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest revision (creates PostGIS first)."""
        migrate.upgrade(self.engine)

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
