"""Alembic environment: runs on the connection or URL that geo.store.migrate hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from geo.community import models as _community  # noqa: F401  (its tables join the metadata)
from geo.store.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    """Leave PostGIS's own tables (spatial_ref_sys, topology, tiger) alone."""
    return not (type_ == "table" and reflected and compare_to is None)


def run_migrations_online() -> None:
    """Migrate on the given connection, or open one from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, include_object=include_object
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:  # run by hand (`alembic upgrade`) without a URL in the ini file
        raise SystemExit("no database to migrate: set sqlalchemy.url, or migrate through geo.store.migrate")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("gridcase migrations run online only")
run_migrations_online()
