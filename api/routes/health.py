"""Liveness and versions: `GET /healthz`."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import StoreDep
from geo.store import migrate
from geo.store.db import server_versions

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """What /healthz reports."""

    status: str
    postgresql: str
    postgis: str
    schema_revision: str | None


@router.get("/healthz", response_model=Health)
def healthz(store: StoreDep) -> Health:
    """Database and PostGIS versions, and the schema revision."""
    versions = server_versions(store.engine)
    return Health(
        status="ok",
        postgresql=versions["postgresql"],
        postgis=versions["postgis"],
        schema_revision=migrate.current_revision(store.engine),
    )
