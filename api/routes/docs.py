"""The API's own documentation page, drawn from vendored Swagger UI (no CDN).

FastAPI's default loads Swagger UI from a CDN and starts it with an inline script, which the
Content-Security-Policy forbids; this page loads the vendored bundle and a static start-up file
(FastAPI's "self-hosting JavaScript and CSS for docs" recipe, with the script moved to a file).
ReDoc is off (`redoc_url=None`): its bundle would double the vendored assets' size.
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
