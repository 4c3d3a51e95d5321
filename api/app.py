"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors
from api.deps import database_slots
from api.headers import SecurityHeaders
from api.inputs import text_parameters
from api.notice_text import composer
from api.route_fast import RoutePointFastPath
from api.routes import (
    admin_desk,
    auth,
    cases,
    catalogue,
    commitments,
    community,
    desk,
    docs,
    health,
    maps,
    open311,
    pages,
    public,
    reception,
    routing,
    stats,
)
from api.scaling import ReadYourWrites, Scaling
from api.screen import screen_keys
from geo.accounts import TokenChecks
from geo.cases.intake import IntakeWriter
from geo.cases.service import CaseContext
from geo.notices import Outbox, OutboxWorker, senders_from
from geo.photos import PhotoLimits
from geo.routing import Router
from geo.settings import Settings, get_settings
from geo.stats import RollupFolder
from geo.storage import blob_store
from geo.store import Store
from geo.store.db import make_sessions
from geo.throttle import Throttles, public_throttles

#: Every router of the API and the pages, by name, in the order they are matched.
ROUTERS = (
    health.router,
    routing.router,
    auth.router,
    cases.router,
    catalogue.router,
    maps.router,
    pages.router,
    admin_desk.router,
    public.router,
    desk.router,
    community.router,  # 社区治理: /api/v1/community and /desk/community
    stats.router,
    reception.router,
    commitments.router,  # community governance (社区治理)
    docs.router,
)


def case_context(settings: Settings, router: Router) -> CaseContext:
    """Photos in the store settings name (the state folder by default), limits from settings."""
    return CaseContext(
        router=router,
        blobs=blob_store(settings),
        photo_limits=PhotoLimits(
            max_bytes=settings.photo_max_bytes,
            max_pixels=settings.photo_max_pixels,
            max_photos=settings.photo_max_count,
        ),
        duplicate_radius_m=settings.duplicate_radius_m,
        duplicate_window_h=settings.duplicate_window_h,
    )


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build the app; the store (engine) lives as long as the app."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        app.state.store = store or Store(settings)
        app.state.router = Router(app.state.store.sessions, tolerance_m=settings.route_tolerance_m)
        app.state.cases = case_context(settings, app.state.router)
        # The intake writer's own connections, one per thread (geo/cases/intake.py).
        writing = app.state.store.engine_of(settings.intake_writers, pre_ping=False)
        app.state.intake = IntakeWriter(
            make_sessions(writing),
            default_radius_m=settings.duplicate_radius_m,
            default_window_h=settings.duplicate_window_h,
            writers=settings.intake_writers,
        )
        app.state.db_slots = database_slots(app.state.store)
        folder = None
        if settings.fold_seconds > 0:
            folder = RollupFolder(app.state.store.transaction, interval_s=settings.fold_seconds).start()
        # Notices to followers: the outbox table, worked here (geo/notices.py).
        app.state.outbox = Outbox(
            app.state.store.transaction, senders_from(settings), composer(settings.public_url)
        )
        app.state.notices = None
        if settings.notice_seconds > 0:
            app.state.notices = OutboxWorker(app.state.outbox, interval_s=settings.notice_seconds).start()
        # Several processes: replicas, throttles in PostgreSQL, LISTEN/NOTIFY (api/scaling.py).
        app.state.scaling = Scaling(app, settings, app.state.store)
        try:
            yield
        finally:
            app.state.scaling.stop()
            if app.state.notices is not None:
                app.state.notices.stop()
            if folder is not None:
                folder.stop()
            app.state.intake.close()
            writing.dispose()
            app.state.router.close()
            if own:
                app.state.store.dispose()

    app = FastAPI(
        title="gridcase",
        summary="Grid mapping and case routing for community governance (网格化管理)",
        version="0.1.0",
        lifespan=lifespan,
        # One guard for every route: no path or query parameter carries a NUL to PostgreSQL.
        dependencies=[Depends(text_parameters)],
        # /docs is drawn from vendored Swagger UI (api/routes/docs.py), never a CDN; no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.throttles = Throttles()
    app.state.public_limits = public_throttles(
        settings.public_reports_per_address, settings.public_reports_per_phone
    )
    app.state.tokens = TokenChecks(settings.token_check_seconds)
    app.state.screen_keys = screen_keys(settings)
    errors.install(app)
    # Inside SecurityHeaders (added after it, so around it): plain lookups skip the framework.
    app.add_middleware(RoutePointFastPath)
    app.add_middleware(SecurityHeaders, tiles_url=settings.tiles_url)
    app.add_middleware(ReadYourWrites)
    for router in ROUTERS:
        # Every operation documents the one error body (`ErrorOut`) and the statuses it comes with.
        app.include_router(router, responses=errors.ERROR_RESPONSES)
    app.mount("/open311/v2", open311.application(app))  # the spec's own formats and errors
    static = Path(__file__).resolve().parent / "static"
    # Leaflet and every map asset are served from here: nothing loads from a CDN.
    app.mount("/static", StaticFiles(directory=static), name="static")
    return app
