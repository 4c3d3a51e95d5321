"""One table from domain errors to HTTP statuses, and a JSON body that names the field."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from geo import errors
from geo.accounts import AuthenticationFailed, InvalidAccount

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
}


def status_for(exc: errors.GridcaseError) -> int:
    """The status of the nearest mapped class in the error's ancestry (default 400)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""

    @app.exception_handler(errors.GridcaseError)
    async def domain_error(request: Request, exc: errors.GridcaseError) -> JSONResponse:
        detail = [{"field": exc.field, "message": exc.message, "type": type(exc).__name__}]
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
            for err in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)
