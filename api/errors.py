"""One table from domain errors to HTTP statuses, and a JSON body that names the field."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import web
from geo import errors
from geo.accounts import AuthenticationFailed, InvalidAccount
from geo.throttle import TooManyAttempts

STATUS: dict[type[errors.GridcaseError], int] = {
    errors.UnknownCoordinateSystem: 422,
    errors.InvalidCoordinates: 422,
    errors.InvalidInput: 422,
    errors.UnknownCategory: 422,
    errors.OutsideCoverage: 409,
    errors.InvalidTransition: 409,
    errors.ConcurrentUpdate: 409,
    errors.IdempotencyConflict: 422,
    errors.ActionForbidden: 403,
    errors.InvalidPhoto: 422,
    AuthenticationFailed: 401,
    InvalidAccount: 422,
    errors.InvalidImport: 422,
    errors.NotFound: 404,
    errors.DatabaseUnavailable: 503,
    TooManyAttempts: 429,
}


def status_for(exc: errors.GridcaseError) -> int:
    """The status of the nearest mapped class in the error's ancestry (default 400)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


# While PostgreSQL is unreachable (restarting, failing over, the pool exhausted) a client should
# come back shortly: 503 with Retry-After, never a 500. The pool recovers by itself (pre-ping).
RETRY_AFTER_SECONDS = 5


def database_unavailable(exc: Exception) -> bool:
    """Whether a database error means "not reachable now" rather than a fault of the request."""
    if isinstance(exc, sa.TimeoutError | sa.OperationalError | sa.InterfaceError):
        return True
    return isinstance(exc, sa.DBAPIError) and exc.connection_invalidated


#: A page's explanation for each status (the desks draw errors as pages, api/web.py).
PAGE_KINDS = {403: "err_403", 404: "err_404", 409: "err_409", 422: "err_422"}


def page_refusal(status: int, exc: errors.GridcaseError) -> web.PageRefusal:
    """The page version of a domain error: what the person reads instead of the JSON body."""
    kind = PAGE_KINDS.get(status, "err_422" if status < 500 else "err_409")
    return web.PageRefusal(status, kind, detail=exc.message, facts={"field": exc.field})


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""

    @app.exception_handler(web.SignInNeeded)
    async def sign_in_needed(request: Request, exc: web.SignInNeeded) -> Response:
        return web.sign_in_redirect(request)

    @app.exception_handler(web.PageRefusal)
    async def page_refused(request: Request, exc: web.PageRefusal) -> Response:
        return web.refusal_page(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if web.is_page_request(request) and exc.status_code in PAGE_KINDS:
            return web.refusal_page(request, web.PageRefusal(exc.status_code, PAGE_KINDS[exc.status_code]))
        return await http_exception_handler(request, exc)

    @app.exception_handler(errors.GridcaseError)
    async def domain_error(request: Request, exc: errors.GridcaseError) -> Response:
        status = status_for(exc)
        if web.is_page_request(request) and status in (403, 404, 409, 422):
            return web.refusal_page(request, page_refusal(status, exc))
        detail = [{"field": exc.field, "message": exc.message, "type": type(exc).__name__}]
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(sa.TimeoutError)
    @app.exception_handler(sa.DBAPIError)
    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc
        detail = [
            {
                "field": "database",
                "message": f"the database is not reachable just now; retry in {RETRY_AFTER_SECONDS} s",
                "type": "DatabaseUnavailable",
            }
        ]
        return JSONResponse(
            {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if web.is_page_request(request):
            fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors())
            return web.refusal_page(request, web.PageRefusal(422, "err_422", detail=fields))
        detail = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
            for err in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)
