"""Where the database is and how to talk to it: URL resolution, engine, sessions."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from geo.errors import DatabaseUnavailable
from geo.settings import Settings
from geo.store.cluster import LocalCluster


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the URL was given with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def local_cluster(settings: Settings) -> LocalCluster:
    """The managed cluster of this state folder."""
    return LocalCluster(settings.state_path, settings.db_os_user)


def resolve_database_url(settings: Settings, database: str | None = None) -> str:
    """The URL to use: DATABASE_URL as given, else the managed cluster (started on demand)."""
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = local_cluster(settings)
    cluster.start()
    url = cluster.url(database or settings.db_name)
    create_database(url)
    return url


def create_database(url: str) -> None:
    """Create the database named in the URL if it does not exist (managed cluster only)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the database named in the URL, closing its sessions (tests only)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


POOL_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 5


def make_engine(url: str, pool_size: int = 10, *, pre_ping: bool = True, prepared: bool = True) -> Engine:
    """An engine that lives as long as the app; stale connections are pinged away (unless the
    user replaces a dead one itself: `pre_ping=False` saves a round trip per checkout).

    `prepared=False` for a PgBouncer in transaction mode: psycopg then never prepares statements
    on the server (it would after 5 runs of one statement), since the next transaction may run on
    another server connection that does not know them.
    """
    connect_args: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if not prepared:
        connect_args["prepare_threshold"] = None
    return create_engine(
        normalise_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        # Fail fast while the server is away (the API answers 503 with Retry-After) instead of
        # holding a request for the driver's or the pool's default half minute.
        pool_timeout=POOL_TIMEOUT_S,
        connect_args=connect_args,
    )


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory; one session per request or per command."""
    return sessionmaker(engine, expire_on_commit=False)


def server_versions(engine: Engine) -> dict[str, str]:
    """PostgreSQL and PostGIS versions, for /healthz and `gridcase db status`."""
    try:
        with engine.connect() as conn:
            pg = conn.execute(text("SHOW server_version")).scalar_one()
            postgis = conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
            ).scalar()
    except OperationalError as exc:
        raise DatabaseUnavailable(f"database unreachable: {exc.orig}") from exc
    return {"postgresql": str(pg), "postgis": str(postgis) if postgis else "not installed"}
