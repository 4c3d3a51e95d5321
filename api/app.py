"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.routes import health, routing
from geo.routing import Router
from geo.settings import Settings, get_settings
from geo.store import Store


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build the app; the store (engine) lives as long as the app."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        app.state.store = store or Store(settings)
        app.state.router = Router(app.state.store.sessions, tolerance_m=settings.route_tolerance_m)
        try:
            yield
        finally:
            if own:
                app.state.store.dispose()

    app = FastAPI(
        title="gridcase",
        summary="Grid mapping and case routing for community governance (网格化管理)",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(health.router)
    app.include_router(routing.router)
    return app
