"""The database behind gridcase: PostGIS through SQLAlchemy 2 and GeoAlchemy2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from geo.settings import Settings
from geo.store import migrate
from geo.store.db import make_engine, make_sessions, resolve_database_url


class Store:
    """Engine and session factory for one process, built from settings."""

    def __init__(self, settings: Settings, url: str | None = None):
        self.settings = settings
        self.url = url or resolve_database_url(settings)
        self.engine: Engine = make_engine(self.url, settings.pool_size)
        # make_engine allows as many overflow connections as it keeps pooled.
        self.capacity = 2 * settings.pool_size
        self.sessions: sessionmaker[Session] = make_sessions(self.engine)

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
