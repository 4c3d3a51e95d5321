"""Open311 GeoReport v2 under `/open311/v2` (http://wiki.open311.org/GeoReport_v2), with mySociety's
`servicerequestupdates`, so FixMyStreet and other Open311 clients can report and follow.

A sub-application of its own (mounted by api/app.py), because its answers are the spec's, not the
rest of the API's: XML (required) or JSON by the resource's extension, the spec's content types,
JSON lists as bare arrays, and every refusal as the spec's error list
(`<errors><error><code/><description/></error></errors>`) with 400, 403 or 404 (503 while the
database is away). It is not in /docs: the spec and `discovery` describe it. What it serves comes
from geo/open311.py; the words are the catalogue's (api/i18n.py, Chinese first, `lang=en`).
"""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy import exc as sa
from sqlalchemy.orm import Session
from starlette.datastructures import State, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import RETRY_AFTER_SECONDS, database_unavailable
from api.i18n import CLASS_LABELS, MESSAGES, STATE_LABELS, TIME_UNITS, Lang
from geo import open311
from geo.errors import DatabaseUnavailable, GridcaseError, InvalidInput, NotFound

router = APIRouter()
T = TypeVar("T")

CONTENT_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
MAX_BODY = 256 * 1024  # a request's form (the spec's fields are short; media goes by URL)
#: XML names of the items of each list (the spec's, and mySociety's for updates).
ITEMS = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "service_requests_updates": "request_update",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
# Characters XML 1.0 cannot carry at all (a description may hold one): dropped from the output.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def application(parent: FastAPI) -> FastAPI:
    """The Open311 sub-application; it reads the parent app's store, intake writer and settings."""
    sub = FastAPI(
        title="gridcase Open311 GeoReport v2",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(_clean_path)],
    )
    sub.state.parent = parent
    sub.include_router(router)
    _install_errors(sub)
    return sub


def _clean_path(request: Request) -> None:
    """No NUL reaches PostgreSQL from a path (a service code, a token)."""
    if "\x00" in request.scope.get("path", ""):
        raise InvalidInput("the path contains a NUL character", field="path")


def _state(request: Request) -> State:
    return request.app.state.parent.state


def _lang(request: Request) -> Lang:
    return "en" if request.query_params.get("lang") == "en" else "zh"


def _root(request: Request) -> str:
    """Where the server is reached (for absolute URLs: the endpoint, photos)."""
    public = _state(request).settings.public_url.rstrip("/")
    return public or f"{request.url.scheme}://{request.url.netloc}"


# -- writing the spec's formats ------------------------------------------------------------------
def _format(fmt: str) -> str:
    if fmt not in CONTENT_TYPES:
        raise NotFound(f"format {fmt[:20]!r}: resources are .xml or .json", field="format")
    return fmt


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return NOT_XML.sub("", str(value))


def _element(parent: ET.Element, name: str, value: Any) -> None:
    node = ET.SubElement(parent, name)
    _fill(node, name, value)


def _fill(node: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _element(node, key, inner)
    elif isinstance(value, list):
        for inner in value:
            _element(node, ITEMS[name], inner)
    elif value is not None:
        node.text = _xml_text(value)


def render(
    fmt: str, root: str, payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The payload in the asked format: XML under `root` with the spec's item names, or JSON (a
    list stays a bare array, as the spec's JSON is the XML without its root)."""
    if fmt == "json":
        body = json.dumps(payload, ensure_ascii=False)
    else:
        top = ET.Element(root)
        _fill(top, root, payload)
        body = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="unicode")
    return Response(body.encode("utf-8"), status, headers=headers, media_type=CONTENT_TYPES[fmt])


def _error_format(request: Request) -> str:
    return "json" if request.url.path.endswith(".json") else "xml"


def spec_error(
    request: Request, status: int, description: str, headers: dict[str, str] | None = None
) -> Response:
    """The spec's error list, in the format the resource asked for (XML when it did not say)."""
    return render(
        _error_format(request), "errors", [{"code": status, "description": description}], status, headers
    )


def _status_of(exc: GridcaseError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, open311.ApiKeyRefused):
        return 403
    if isinstance(exc, DatabaseUnavailable):
        return 503
    return 400  # the spec: 400 for any other request that cannot be fulfilled


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(GridcaseError)
    async def refused(request: Request, exc: GridcaseError) -> Response:
        status = _status_of(exc)
        field = f"{exc.field}: " if exc.field and not exc.message.startswith(exc.field) else ""
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
        return spec_error(request, status, f"{field}{exc.message}", headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return spec_error(request, 400, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return spec_error(request, 404, f"no such resource: {request.url.path[:200]}")
        if exc.status_code == 405:
            return spec_error(request, 400, f"{request.method} is not allowed on {request.url.path[:200]}")
        return spec_error(request, 400, f"the request cannot be read: {exc.detail}")

    @app.exception_handler(sa.TimeoutError)
    @app.exception_handler(sa.DBAPIError)
    async def database_error(request: Request, exc: Exception) -> Response:
        if not database_unavailable(exc):
            raise exc
        message = f"the database is not reachable just now; retry in {RETRY_AFTER_SECONDS} s"
        return spec_error(request, 503, message, {"Retry-After": str(RETRY_AFTER_SECONDS)})


# -- reading what a request carries ---------------------------------------------------------------
def _params(request: Request) -> dict[str, str]:
    """The query's arguments (the last of a repeated one), refused with a NUL in them."""
    params = dict(request.query_params)
    for name, value in params.items():
        if "\x00" in name or "\x00" in value:
            raise InvalidInput(
                "a query argument contains a NUL character", field=name.replace("\x00", "")[:40]
            )
        if len(value) > 20_000:
            raise InvalidInput(f"{name[:40]} is too long", field=name[:40])
    return params


async def _form_items(request: Request) -> list[tuple[str, str]]:
    """A POST's fields: application/x-www-form-urlencoded as the spec says (multipart also read)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > MAX_BODY):
        raise InvalidInput(f"the form is larger than {MAX_BODY // 1024} KiB", field="body")
    if kind == "multipart/form-data":
        form = await request.form(max_files=0, max_fields=500)
        return [(k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile)]
    if kind not in ("application/x-www-form-urlencoded", ""):
        raise InvalidInput(
            f"content type {kind[:60]!r}: send application/x-www-form-urlencoded", field="content-type"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise InvalidInput(f"the form is larger than {MAX_BODY // 1024} KiB", field="body")
    try:
        text = bytes(body).decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, max_num_fields=500, errors="strict")
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8", field="body") from None
    except ValueError:
        raise InvalidInput("the form has too many fields (at most 500)", field="body") from None


async def _read(request: Request, work: Callable[[Session], T]) -> T:
    """Run a read in the threadpool on a session of its own, within the app's database slots."""
    state = _state(request)

    def run() -> T:
        with state.store.sessions() as session:
            return work(session)

    async with state.db_slots:
        return await run_in_threadpool(run)


def _jurisdiction(request: Request, params: dict[str, str]) -> None:
    open311.check_jurisdiction(_state(request).settings.open311_jurisdiction, params.get("jurisdiction_id"))


# -- words ------------------------------------------------------------------------------------------
def _t(lang: Lang) -> dict[str, str]:
    return MESSAGES[lang]


def _limit(lang: Lang, limit: float | None, unit: str | None) -> str | None:
    if limit is None or unit is None:
        return None
    return _t(lang)["o311_time_limit"].format(limit=f"{limit:g}", unit=TIME_UNITS[lang].get(unit, unit))


def _service_out(svc: open311.Service, lang: Lang) -> dict[str, Any]:
    t = _t(lang)
    name = (svc.name_en or svc.name) if lang == "en" else svc.name
    kind = t[f"o311_kind_{svc.kind}"]
    klass = CLASS_LABELS[lang].get(f"{svc.kind}.{svc.class_code}", svc.class_code)
    department = (svc.department_en or svc.department) if lang == "en" else svc.department
    description = t["o311_service_description"].format(
        kind=kind, group=klass, name=name, limit=_limit(lang, svc.time_limit, svc.time_limit_unit)
    )
    if department:
        description += t["o311_service_department"].format(unit=department)
    keywords = [klass, kind, svc.name, svc.name_en or "", svc.code]
    return {
        "service_code": svc.code,
        "service_name": name,
        "description": description,
        "metadata": bool(svc.attributes),
        "type": "realtime",
        "keywords": ",".join(k for k in keywords if k),
        "group": f"{kind} · {klass}",
    }


def _attribute_out(svc: open311.Service, attr: open311.Attribute, lang: Lang) -> dict[str, Any]:
    t = _t(lang)
    return {
        "variable": attr.variable,
        "code": attr.code,
        "datatype": attr.datatype,
        "required": attr.required,
        "datatype_description": t.get(f"o311_attr_{attr.code}_type", ""),
        "order": attr.order,
        "description": t[f"o311_attr_{attr.code}"],
        "values": [{"key": key, "name": t[f"o311_value_{attr.code}_{key}"]} for key in attr.values],
    }


def status_notes(state: str, unit: str | None, merged_into: int | None, lang: Lang) -> str:
    """A request's status in words: the state, the unit that has it, the request it repeats."""
    t = _t(lang)
    label = STATE_LABELS[lang].get(state, state)
    if state == "merged" and merged_into:
        return t["o311_notes_merged"].format(state=label, other=merged_into)
    if unit and state not in ("reported", "verified", "filed", "rejected", "voided"):
        return t["o311_notes_unit"].format(state=label, unit=unit)
    return t["o311_notes"].format(state=label)


def _address(view: open311.RequestView, lang: Lang) -> str:
    return ", ".join(p for p in (view.grid, view.community, view.street) if p) or _t(lang)["o311_no_address"]


def _request_out(view: open311.RequestView, lang: Lang, root: str) -> dict[str, Any]:
    unit = (view.unit_en or view.unit) if lang == "en" else view.unit
    limit = _limit(lang, view.time_limit, view.time_limit_unit)
    return {
        "service_request_id": view.id,
        "status": view.status,
        "status_notes": status_notes(view.state, unit, view.merged_into, lang),
        "service_name": (view.service_name_en or view.service_name) if lang == "en" else view.service_name,
        "service_code": view.service_code,
        "description": view.description,
        "agency_responsible": unit,
        "service_notice": _t(lang)["o311_notice_limit"].format(limit=limit) if limit else None,
        "requested_datetime": open311.w3c(view.requested),
        "updated_datetime": open311.w3c(view.updated),
        "expected_datetime": open311.w3c(view.expected),
        "address": _address(view, lang),
        "address_id": None,
        "zipcode": None,
        "lat": view.lat,
        "long": view.lon,
        "media_url": f"{root}{view.media_path}" if view.media_path else None,
    }


# -- the resources ------------------------------------------------------------------------------------
@router.get("/discovery.{fmt}")
async def discovery(request: Request, fmt: str) -> Response:
    """What this endpoint is: the specification, where, which formats, who to ask, how to get a key."""
    fmt, params = _format(fmt), _params(request)
    t, settings = _t(_lang(request)), _state(request).settings
    changed = open311.w3c(await _read(request, open311.changeset))
    payload = {
        "changeset": changed,
        "contact": settings.open311_contact or t["o311_contact"],
        "key_service": t["o311_key_service"],
        "endpoints": [
            {
                "specification": open311.SPECIFICATION,
                "url": f"{_root(request)}/open311/v2",
                "changeset": changed,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    _jurisdiction(request, params)
    return render(fmt, "discovery", payload)


@router.get("/services.{fmt}")
async def services(request: Request, fmt: str) -> Response:
    """Every category of the catalogue as a service, grouped by its class (部件/事件)."""
    fmt, params, lang = _format(fmt), _params(request), _lang(request)
    _jurisdiction(request, params)
    found = await _read(request, open311.services)
    return render(fmt, "services", [_service_out(s, lang) for s in found])


@router.get("/services/{code}.{fmt}")
async def service_definition(request: Request, code: str, fmt: str) -> Response:
    """A service's attributes (what a request for it must or may carry)."""
    fmt, params, lang = _format(fmt), _params(request), _lang(request)
    _jurisdiction(request, params)
    svc = await _read(request, lambda session: open311.service(session, code))
    payload = {"service_code": svc.code, "attributes": [_attribute_out(svc, a, lang) for a in svc.attributes]}
    return render(fmt, "service_definition", payload)


@router.post("/requests.{fmt}")
async def post_request(request: Request, fmt: str) -> Response:
    """Create a service request: a case filed through the normal intake, routed as every report."""
    fmt, lang = _format(fmt), _lang(request)
    posted = open311.read_posted(await _form_items(request))
    state = _state(request)
    now = datetime.now(UTC)
    done = await _read(
        request,
        lambda session: open311.prepare_request(
            session, state.cases, posted, state.settings.open311_jurisdiction, now
        ),
    )
    if done.earlier is not None:
        case_id = done.earlier.id  # the same request again: its case, nothing filed twice
    else:
        assert done.prepared is not None
        filed = await asyncio.wrap_future(state.intake.submit(done.prepared))
        case_id = filed.case.id

    def remember() -> str:
        with state.store.transaction() as session:
            return open311.remember(session, done, case_id)

    async with state.db_slots:
        token = await run_in_threadpool(remember)
    svc = done.service
    limit = _limit(lang, svc.time_limit, svc.time_limit_unit)
    answer = {
        "service_request_id": case_id,
        "token": token,
        "service_notice": _t(lang)["o311_notice_new"].format(limit=limit),
        "account_id": posted.get("account_id"),
    }
    return render(fmt, "service_requests", [answer])


@router.get("/tokens/{token}.{fmt}")
async def token(request: Request, token: str, fmt: str) -> Response:
    """The service_request_id of a token."""
    fmt, params = _format(fmt), _params(request)
    _jurisdiction(request, params)
    case_id, found = await _read(request, lambda session: open311.token_request(session, token))
    return render(fmt, "service_requests", [{"service_request_id": case_id, "token": found}])


@router.get("/requests.{fmt}")
async def get_requests(request: Request, fmt: str) -> Response:
    """Requests by id, service, status and requested date (default: the last 90 days, 1,000 at most)."""
    fmt, params, lang = _format(fmt), _params(request), _lang(request)
    _jurisdiction(request, params)
    query = open311.read_query(params)
    now = datetime.now(UTC)

    def work(session: Session) -> list[open311.RequestView]:
        partner = open311.partner_key(session, params.get("api_key")) is not None
        return open311.requests(session, query, now, partner)

    found = await _read(request, work)
    root = _root(request)
    return render(fmt, "service_requests", [_request_out(v, lang, root) for v in found])


@router.get("/requests/{request_id}.{fmt}")
async def get_request(request: Request, request_id: str, fmt: str) -> Response:
    """One request by its service_request_id."""
    fmt, params, lang = _format(fmt), _params(request), _lang(request)
    _jurisdiction(request, params)
    if not request_id.isascii() or not request_id.isdigit() or len(request_id) > 18:
        raise NotFound(f"service_request_id {request_id[:40]!r} not found", field="service_request_id")

    def work(session: Session) -> open311.RequestView:
        partner = open311.partner_key(session, params.get("api_key")) is not None
        return open311.request_view(session, int(request_id), partner)

    view = await _read(request, work)
    return render(fmt, "service_requests", [_request_out(view, lang, _root(request))])


@router.get("/servicerequestupdates.{fmt}")
async def service_request_updates(request: Request, fmt: str) -> Response:
    """mySociety's extension: each change of a request's state, for FixMyStreet to pull."""
    fmt, params, lang = _format(fmt), _params(request), _lang(request)
    _jurisdiction(request, params)
    start = open311.parse_datetime(params["start_date"], "start_date") if params.get("start_date") else None
    end = open311.parse_datetime(params["end_date"], "end_date") if params.get("end_date") else None
    now = datetime.now(UTC)

    def work(session: Session) -> list[open311.UpdateView]:
        open311.check_key(session, params.get("api_key"))
        return open311.updates(session, start, end, now)

    found = await _read(request, work)
    root = _root(request)
    payload = [
        {
            "update_id": u.update_id,
            "service_request_id": u.service_request_id,
            "status": u.status,
            "updated_datetime": open311.w3c(u.at),
            "description": status_notes(
                u.state, (u.unit_en or u.unit) if lang == "en" else u.unit, None, lang
            ),
            "media_url": f"{root}{u.media_path}" if u.media_path else "",
            "external_status_code": u.state,
        }
        for u in found
    ]
    return render(fmt, "service_requests_updates", payload)
