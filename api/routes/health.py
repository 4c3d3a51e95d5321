"""Liveness, versions and what needs attention: `GET /healthz`."""

from __future__ import annotations

import os
from datetime import date

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import SessionDep, StoreDep
from api.i18n import calendar_notice
from geo.cases.work_calendar import calendar_status
from geo.store import migrate
from geo.store.db import server_versions

router = APIRouter(tags=["health"])


class CalendarHealth(BaseModel):
    """How far the loaded work calendar reaches."""

    ends: date | None = Field(description="the last day whose holidays are loaded (31 December of a year)")
    days_left: int | None = Field(description="days from today (China time) to `ends`; negative once past")
    next_year: int = Field(description="the year whose holidays to load next")


class ReplicaHealth(BaseModel):
    """One read replica as this process last saw it."""

    name: str = Field(description="replica1, replica2… in the order of GRIDCASE_READ_DATABASE_URL")
    url: str = Field(description="where it is, without the password")
    up: bool = Field(description="it answered the last look")
    lag_seconds: float | None = Field(description="how far behind the primary it replays (None while down)")
    used: bool = Field(description="up and within GRIDCASE_REPLICA_MAX_LAG_SECONDS: reads go to it")
    error: str | None = Field(default=None, description="why it is down")


class Health(BaseModel):
    """What /healthz reports: `warning` when something needs a person (see `warnings`)."""

    status: str = Field(description="ok, or warning when `warnings` is not empty")
    postgresql: str
    postgis: str
    schema_revision: str | None
    calendar: CalendarHealth
    warnings: list[str] = Field(default_factory=list, description="what needs attention, in words")
    worker: int = Field(description="the server process that answered (its pid)")
    replicas: list[ReplicaHealth] = Field(default_factory=list, description="the read replicas and their lag")


@router.get("/healthz", response_model=Health)
def healthz(request: Request, store: StoreDep, session: SessionDep) -> Health:
    """Database and PostGIS versions, the schema revision, and the work calendar's end (a warning
    from 60 days before it)."""
    versions = server_versions(store.engine)
    status = calendar_status(request.app.state.cases.calendar_for(session))
    warnings = [w for w in [calendar_notice("en", status)] if w]
    replicas = request.app.state.replicas
    seen = [] if replicas is None else replicas.states()
    warnings += [
        f"read replica {r.name} is {'down' if not r.up else f'{r.lag_s:g} s behind'}: reads go elsewhere"
        for r in seen
        if not r.usable
    ]
    return Health(
        status="warning" if warnings else "ok",
        postgresql=versions["postgresql"],
        postgis=versions["postgis"],
        schema_revision=migrate.current_revision(store.engine),
        calendar=CalendarHealth(ends=status.ends, days_left=status.days_left, next_year=status.next_year),
        warnings=warnings,
        worker=os.getpid(),
        replicas=[
            ReplicaHealth(name=r.name, url=r.url, up=r.up, lag_seconds=r.lag_s, used=r.usable, error=r.error)
            for r in seen
        ],
    )
