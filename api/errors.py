"""One table from domain errors to HTTP statuses, one JSON body that names the field, and the
documentation of both in the OpenAPI document (`ERROR_RESPONSES`, registered on every route)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import web
from geo import errors
from geo.accounts import AuthenticationFailed, InvalidAccount
from geo.throttle import TooManyAttempts


class ErrorDetail(BaseModel):
    """One thing wrong with a request: which input, and why."""

    field: str | None = Field(
        description="the input at fault: a parameter, a header, a dotted path in the body, or null"
    )
    message: str = Field(description="what is wrong, and what to send instead")
    type: str = Field(description="the kind of error, e.g. InvalidInput or string_pattern_mismatch")


class ErrorOut(BaseModel):
    """The body of every 4xx and 503 answer."""

    detail: list[ErrorDetail]


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
    errors.StorageUnavailable: 503,
    TooManyAttempts: 429,
    errors.TooLarge: 413,
}

#: The mark (in a route's `responses`) of an error answered as an HTML page instead of JSON.
PAGE_ERROR = "x-gridcase-page"

#: What the error statuses mean, for the OpenAPI document of every route (one body for all).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "a request the domain refused for a reason without a status of its own",
        401: "no bearer token, or an unknown or expired one (`WWW-Authenticate: Bearer`)",
        403: "signed in, but this role or scope may not do or see this",
        404: "no such case, photo, community or path (or one this reader may not see)",
        405: "the path exists, but not with this method",
        409: "not possible in the current state: the message names the state and what is allowed",
        422: "an input that cannot be used: `field` names it and `message` says why",
        413: "the body is larger than this route accepts (the limit is in the message)",
        429: "too many wrong passwords or unknown tracking codes: retry after `Retry-After` seconds",
        503: "the database or the photo store is unreachable for now: retry after `Retry-After` seconds",
    }.items()
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


def error_body(field: str | None, message: str, type_: str) -> dict[str, list[dict[str, str | None]]]:
    """The one error body: `{"detail": [{"field", "message", "type"}]}` (`ErrorOut`)."""
    return {"detail": [{"field": field, "message": message, "type": type_}]}


def _error_bodies_as_json(app: FastAPI) -> None:
    """Errors are JSON on every route: FastAPI would document them in an HTML page's media type."""
    build = app.openapi
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()  # FastAPI's document, cached on the app: amended once, in place
        for path in document.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    if not (status.isdigit() and int(status) in ERROR_RESPONSES):
                        continue
                    # A page's error is a page (api/web.py): a route that declares it so
                    # (PAGE_ERROR) keeps an HTML body for that status.
                    if response.pop(PAGE_ERROR, False):
                        response["content"] = {"text/html": {"schema": {"type": "string"}}}
                    else:
                        response["content"] = error
        return document

    app.openapi = openapi  # type: ignore[method-assign]


#: A page's explanation for each status (the desks draw errors as pages, api/web.py).
PAGE_KINDS = {403: "err_403", 404: "err_404", 409: "err_409", 422: "err_422"}


def page_refusal(status: int, exc: errors.GridcaseError) -> web.PageRefusal:
    """The page version of a domain error: what the person reads instead of the JSON body."""
    kind = PAGE_KINDS.get(status, "err_422" if status < 500 else "err_409")
    return web.PageRefusal(status, kind, detail=exc.message, facts={"field": exc.field})


def install(app: FastAPI) -> None:
    """Register the handlers on an app, and document their bodies in its OpenAPI document."""
    _error_bodies_as_json(app)
    _install_page_handlers(app)
    _install_domain_errors(app)
    _install_http_errors(app)


def _install_page_handlers(app: FastAPI) -> None:
    @app.exception_handler(web.SignInNeeded)
    async def sign_in_needed(request: Request, exc: web.SignInNeeded) -> Response:
        return web.sign_in_redirect(request)

    @app.exception_handler(web.PageRefusal)
    async def page_refused(request: Request, exc: web.PageRefusal) -> Response:
        return web.refusal_page(request, exc)


def _install_domain_errors(app: FastAPI) -> None:
    @app.exception_handler(errors.GridcaseError)
    async def domain_error(request: Request, exc: errors.GridcaseError) -> Response:
        status = status_for(exc)
        if web.is_public_page(request) and 400 <= status < 500:
            refusal = page_refusal(status, exc)
            if isinstance(exc, TooManyAttempts):
                refusal.facts["headers"] = {"Retry-After": str(exc.retry_after)}
            return web.refusal_page(request, refusal)
        if web.is_page_request(request) and status in (403, 404, 409, 422):
            return web.refusal_page(request, page_refusal(status, exc))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
        body = error_body(exc.field, exc.message, type(exc).__name__)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(sa.TimeoutError)
    @app.exception_handler(sa.DBAPIError)
    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc
        body = error_body(
            "database",
            f"the database is not reachable just now; retry in {RETRY_AFTER_SECONDS} s",
            "DatabaseUnavailable",
        )
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if web.is_public_page(request):
            first = exc.errors()[0] if exc.errors() else {}
            field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
            reason = f"{field}: {first.get('msg', 'invalid')}"
            return web.refusal_page(request, web.PageRefusal(422, "err_422", reason, {"field": field}))
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


def _install_http_errors(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if web.is_public_page(request) and 400 <= exc.status_code < 500:
            refusal = web.PageRefusal(exc.status_code, PAGE_KINDS.get(exc.status_code, "err_422"))
            refusal.detail = f"{request.method} {request.url.path}: {exc.detail}"
            refusal.facts["field"] = "path" if exc.status_code in (404, 405) else "body"
            return web.refusal_page(request, refusal)
        if web.is_page_request(request) and exc.status_code in PAGE_KINDS:
            return web.refusal_page(request, web.PageRefusal(exc.status_code, PAGE_KINDS[exc.status_code]))
        # Starlette's own errors say only "Not Found" or "Method Not Allowed": name what is at fault.
        body: dict[str, Any]
        if isinstance(exc.detail, list):
            body = {"detail": exc.detail}
        elif exc.status_code == 404:
            body = error_body("path", f"no such path: {request.url.path}", "http")
        elif exc.status_code == 405:
            body = error_body("method", f"{request.method} is not allowed on {request.url.path}", "http")
        else:
            # e.g. a multipart body that cannot be parsed
            body = error_body("body", str(exc.detail), "http")
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
