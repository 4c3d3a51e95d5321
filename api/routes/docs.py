"""The API's own documentation pages, drawn from vendored Swagger UI and ReDoc (no CDN).

FastAPI's defaults load both from a CDN and start Swagger UI with an inline script, which the
Content-Security-Policy forbids; these pages load the vendored bundles and a static start-up file
(FastAPI's "self-hosting JavaScript and CSS for docs" recipe, with the script moved to a file).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json."""
    return templates.TemplateResponse(
        request, "docs/swagger.html", {"title": request.app.title, "openapi_url": request.app.openapi_url}
    )


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over /openapi.json."""
    return templates.TemplateResponse(
        request, "docs/redoc.html", {"title": request.app.title, "openapi_url": request.app.openapi_url}
    )
