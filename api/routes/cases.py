"""Cases: intake (JSON or multipart with photos), workflow actions, lists, tracking, photos."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, BackgroundTasks, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from api.deps import SessionDep
from api.inputs import check_text, read_json
from api.notice_text import send_notices_soon
from api.routes.auth import client_address
from api.scaling import ReadSessionDep
from api.schemas import CaseList, CaseOut, CasePublic
from api.security import ActorDep
from geo.accounts import Actor
from geo.cases import views
from geo.cases.intake import ReportIn, prepare_report
from geo.cases.service import ActionIn, CaseContext, act
from geo.cases.views import BIGINT_MAX, MAX_PAGE, CaseFilter
from geo.cases.workflow import ACTIONS
from geo.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api/v1", tags=["cases"])
M = TypeVar("M", bound=BaseModel)


def _context(request: Request) -> CaseContext:
    return request.app.state.cases


def _invalid(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return InvalidInput(f"{field}: {first.get('msg')}", field=field)


async def _read_submission(request: Request, model: type[M]) -> tuple[M, list[bytes]]:
    """JSON body, or multipart form fields plus `photos` files."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    photos: list[bytes] = []
    if kind == "multipart/form-data":
        form = await request.form()
        fields: dict[str, object] = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
        check_text(fields)
        if "units" in fields:
            # Repeated fields or one comma-separated list: both are how forms send a list.
            fields["units"] = [u for v in form.getlist("units") for u in str(v).split(",") if u]
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "photos":
                    raise InvalidInput(f"files go in the 'photos' field, not {key!r}", field=key)
                photos.append(await value.read())
        data: dict = dict(fields)
    elif kind in ("application/json", ""):
        body = await request.body()
        data = read_json(body) if body else {}
        if not isinstance(data, dict):
            raise InvalidInput("body must be a JSON object", field="body")
    else:
        raise InvalidInput(f"content type {kind!r}: send JSON or multipart/form-data", field="content-type")
    try:
        return model.model_validate(data), photos
    except ValidationError as exc:
        raise _invalid(exc) from None


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` put in place: in an OpenAPI document `#/$defs/...`
    would be looked up at the document's root, where nothing is."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = defs[node["$ref"].rsplit("/", 1)[-1]]
                return resolve({**target, **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


def submission_body(model: type[BaseModel], *, required: bool) -> dict[str, Any]:
    """The `openapi_extra` of a route that reads `model` itself: as JSON, or as form fields with
    `photos` files (a list field may be repeated or comma-separated)."""
    schema = _inline(model.model_json_schema())
    photos = {"type": "array", "items": {"type": "string", "format": "binary"}}
    form = {**schema, "properties": {**schema["properties"], "photos": photos}}
    return {
        "requestBody": {
            "content": {"application/json": {"schema": schema}, "multipart/form-data": {"schema": form}},
            "required": required,
        }
    }


@router.post(
    "/cases",
    response_model=CaseOut,
    status_code=201,
    openapi_extra=submission_body(ReportIn, required=True),
)
async def create_case(
    request: Request,
    response: Response,
    actor: ActorDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> CaseOut:
    """Report a problem (JSON, or multipart with photos); retries carry an Idempotency-Key."""
    report, photos = await _read_submission(request, ReportIn)
    ctx = _context(request)
    now = datetime.now(UTC)
    args = (ctx.router, ctx.blobs, ctx.photo_limits, actor, report, photos, idempotency_key, now)
    if photos or not ctx.router.answers_from_memory(now):
        # Decoding photos (and reading reference data that changed) is blocking work: off the loop.
        prepared = await run_in_threadpool(prepare_report, *args)
    else:
        prepared = prepare_report(*args)  # routing from the cached index: microseconds
    # Filed with the reports that arrived meanwhile, in one transaction; answered after its commit.
    filed = await asyncio.wrap_future(request.app.state.intake.submit(prepared))
    location = {"Location": f"/api/v1/cases/{filed.case.id}"}
    if filed.created:
        assert filed.event is not None
        view = views.new_case_view(actor, filed.case, filed.event, filed.photos, filed.links, now)
        # Serialised once, here (the view is a CaseOut already: no second validation).
        return Response(  # type: ignore[return-value]
            view.model_dump_json(), 201, headers=location, media_type="application/json"
        )
    response.headers.update(location)
    response.status_code = 200  # a retry: the first report's case as it is now
    async with request.app.state.db_slots:
        return await run_in_threadpool(_read_detail, request, actor, filed.case.id)


def _read_detail(request: Request, actor: Actor, case_id: int) -> CaseOut:
    with request.app.state.store.sessions() as session:
        return views.case_detail(session, actor, case_id)


@router.post(
    "/cases/{ref}/actions/{action}",
    response_model=CaseOut,
    openapi_extra=submission_body(ActionIn, required=False),
)
async def case_action(
    request: Request,
    ref: Annotated[str, Path(description="case id or tracking code")],
    action: Annotated[str, Path(description="a workflow action", json_schema_extra={"enum": list(ACTIONS)})],
    actor: ActorDep,
    session: SessionDep,
    background: BackgroundTasks,
) -> CaseOut:
    """Apply a workflow action; 409 names the state and the allowed actions, 403 the rule."""
    data, photos = await _read_submission(request, ActionIn)
    case = await run_in_threadpool(act, session, _context(request), actor, ref, action, data, photos)
    send_notices_soon(request, background)
    return await run_in_threadpool(views.case_detail, session, actor, case.id)


def _bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    if not bbox:
        return None
    try:
        values = [float(v) for v in bbox.split(",")]
    except ValueError:
        raise InvalidInput("bbox must be four numbers: minlon,minlat,maxlon,maxlat", field="bbox") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidInput("bbox must be four finite numbers: minlon,minlat,maxlon,maxlat", field="bbox")
    if not (values[0] < values[2] and values[1] < values[3]):
        raise InvalidInput("bbox must be minlon,minlat,maxlon,maxlat with min < max", field="bbox")
    return values[0], values[1], values[2], values[3]


@router.get("/cases", response_model=CaseList)
def cases(
    actor: ActorDep,
    session: ReadSessionDep,
    state: Annotated[list[str] | None, Query(description="one or more states")] = None,
    unit: str | None = None,
    area: Annotated[str | None, Query(description="district/street/community/grid code")] = None,
    category: str | None = None,
    overdue: bool | None = None,
    triage: Annotated[bool | None, Query(description="only cases routing could not place")] = None,
    reported_from: datetime | None = None,
    reported_to: datetime | None = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS-84)")] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CaseList:
    """Cases you may see, filtered and paginated, newest first."""
    filters = CaseFilter(
        state=state or [],
        unit=unit,
        area=area,
        category=category,
        overdue=overdue,
        triage=triage,
        reported_from=reported_from,
        reported_to=reported_to,
        bbox=_bbox(bbox),
        page=page,
        page_size=page_size,
    )
    return views.list_cases(session, actor, filters)


@router.get("/cases/{ref}", response_model=CaseOut)
def case_detail(ref: str, actor: ActorDep, session: ReadSessionDep) -> CaseOut:
    """One case with its events, photos and suggested duplicates."""
    return views.case_detail(session, actor, ref)


@router.get("/track/{tracking_code}", response_model=CasePublic)
def track(tracking_code: str, request: Request, session: ReadSessionDep) -> CasePublic:
    """Follow a case by its tracking code: public fields only (件件有下落); guesses are throttled."""
    guesses = request.app.state.throttles.tracking_address
    address = client_address(request)
    guesses.check(address)
    try:
        return views.public_case(session, tracking_code)
    except NotFound:
        guesses.fail(address)
        raise


@router.get(
    "/photos/{key}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def public_photo(key: str, request: Request, session: ReadSessionDep) -> Response:
    """A public photo copy (EXIF removed); originals are never served here."""
    photo = views.public_photo(session, key)
    cache = {"Cache-Control": "public, max-age=31536000, immutable"}
    return _streamed(request, photo.public_key, photo.public_content_type, cache)


def _streamed(request: Request, key: str, media_type: str, headers: dict[str, str]) -> Response:
    """A stored photo passed through in chunks (proxied from an object store: the browser of an
    offline command centre may not reach the store, and originals stay behind the access policy)."""
    blob = _context(request).blobs.open(key)
    headers = {**headers, "Content-Length": str(blob.size)}
    return StreamingResponse(blob.chunks, media_type=media_type, headers=headers)


@router.get("/cases/{ref}/photos/{photo_id}/original", response_class=Response)
def original_photo(
    ref: str,
    photo_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)],
    request: Request,
    actor: ActorDep,
    session: SessionDep,
) -> Response:
    """The original upload with its EXIF (location, device), for operators and admins only."""
    photo = views.original_photo(session, actor, ref, photo_id)
    return _streamed(request, photo.original_key, photo.content_type, {"Cache-Control": "private, no-store"})
