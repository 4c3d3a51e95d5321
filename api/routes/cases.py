"""Cases: intake (JSON or multipart with photos), workflow actions, lists, tracking, photos."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from api.deps import SessionDep
from api.schemas import (
    CaseList,
    CaseOut,
    CasePublic,
    event_out,
    location_of,
    photo_out,
)
from api.security import ActorDep
from geo.accounts import Actor, Role
from geo.cases.service import (
    ActionIn,
    CaseContext,
    CaseFilter,
    ReportIn,
    act,
    list_cases,
    load_case,
    overdue_clause,
    readable_case,
    submit_report,
)
from geo.cases.workflow import allowed_actions
from geo.errors import ActionForbidden, InvalidInput, NotFound
from geo.store.models import Case, CaseEvent, CaseLink, CasePhoto

router = APIRouter(prefix="/api/v1", tags=["cases"])


def _context(request: Request) -> CaseContext:
    return request.app.state.cases


def _invalid(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return InvalidInput(f"{field}: {first.get('msg')}", field=field)


async def _read_submission(request: Request, model: type) -> tuple[object, list[bytes]]:
    """JSON body, or multipart form fields plus `photos` files."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    photos: list[bytes] = []
    if kind == "multipart/form-data":
        form = await request.form()
        fields = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
        if "units" in fields:
            fields["units"] = [u for u in str(fields["units"]).split(",") if u]
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "photos":
                    raise InvalidInput(f"files go in the 'photos' field, not {key!r}", field=key)
                photos.append(await value.read())
        data: dict = dict(fields)
    elif kind in ("application/json", ""):
        body = await request.body()
        try:
            data = json.loads(body) if body else {}
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"body is not JSON: {exc}", field="body") from None
        if not isinstance(data, dict):
            raise InvalidInput("body must be a JSON object", field="body")
    else:
        raise InvalidInput(f"content type {kind!r}: send JSON or multipart/form-data", field="content-type")
    try:
        return model.model_validate(data), photos
    except ValidationError as exc:
        raise _invalid(exc) from None


def case_out(session: Session, case: Case, actor: Actor, detail: bool = False) -> CaseOut:
    """The full view of a case for someone allowed to read it."""
    lon, lat = location_of(case)
    now = datetime.now(UTC)
    out = CaseOut(
        id=case.id,
        tracking_code=case.tracking_code,
        version=case.version,
        category_code=case.category_code,
        description=case.description,
        channel=case.channel,
        reporter_contact=case.reporter_contact if actor.role is not Role.unit_handler else None,
        reported_by=case.reported_by,
        reported_at=case.reported_at,
        state=case.state,
        lon=lon,
        lat=lat,
        grid_code=case.grid_code,
        community_code=case.community_code,
        street_code=case.street_code,
        district_code=case.district_code,
        unit_code=case.unit_code,
        cooperating_unit_codes=list(case.cooperating_unit_codes or []),
        routing=case.routing,
        deadline_at=case.deadline_at,
        overdue=bool(session.scalar(select(overdue_clause(now)).where(Case.id == case.id))),
        extensions=case.extensions,
        extension_requested=case.extension_requested,
        parked_at=case.parked_at,
        supervised_at=case.supervised_at,
        merged_into_id=case.merged_into_id,
        closed_at=case.closed_at,
        allowed_actions=allowed_actions(case.state, actor.role),
    )
    if detail:
        out.photos = [
            photo_out(p)
            for p in session.scalars(
                select(CasePhoto).where(CasePhoto.case_id == case.id).order_by(CasePhoto.id)
            )
        ]
        out.events = [
            event_out(e)
            for e in session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
            )
        ]
        links = session.execute(
            select(CaseLink, Case.tracking_code)
            .join(Case, Case.id == CaseLink.other_case_id)
            .where(CaseLink.case_id == case.id)
        ).all()
        out.duplicates = [
            {
                "tracking_code": code,
                "distance_m": round(link.distance_m, 1),
                "hours_apart": round(link.hours_apart, 2),
                "status": link.status,
            }
            for link, code in links
        ]
    return out


@router.post(
    "/cases",
    response_model=CaseOut,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": ReportIn.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "category": {"type": "string"},
                            "description": {"type": "string"},
                            "lon": {"type": "number"},
                            "lat": {"type": "number"},
                            "crs": {"type": "string"},
                            "channel": {"type": "string"},
                            "reporter_contact": {"type": "string"},
                            "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        },
                    }
                },
            },
            "required": True,
        }
    },
)
async def create_case(
    request: Request,
    response: Response,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> CaseOut:
    """Report a problem (JSON, or multipart with photos); retries carry an Idempotency-Key."""
    report, photos = await _read_submission(request, ReportIn)
    ctx = _context(request)
    # Decoding photos and routing are blocking work: keep them off the event loop.
    case, created = await run_in_threadpool(
        submit_report, session, ctx, actor, report, photos, idempotency_key
    )
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/cases/{case.id}"
    return await run_in_threadpool(case_out, session, case, actor, True)


@router.post("/cases/{ref}/actions/{action}", response_model=CaseOut)
async def case_action(
    request: Request, ref: str, action: str, actor: ActorDep, session: SessionDep
) -> CaseOut:
    """Apply a workflow action; 409 names the state and the allowed actions, 403 the rule."""
    data, photos = await _read_submission(request, ActionIn)
    case = await run_in_threadpool(act, session, _context(request), actor, _ref(ref), action, data, photos)
    return await run_in_threadpool(case_out, session, case, actor, True)


def _ref(ref: str) -> int | str:
    return int(ref) if ref.isdigit() else ref


@router.get("/cases", response_model=CaseList)
def cases(
    actor: ActorDep,
    session: SessionDep,
    state: Annotated[list[str] | None, Query(description="one or more states")] = None,
    unit: str | None = None,
    area: Annotated[str | None, Query(description="district/street/community/grid code")] = None,
    category: str | None = None,
    overdue: bool | None = None,
    triage: Annotated[bool | None, Query(description="only cases routing could not place")] = None,
    reported_from: datetime | None = None,
    reported_to: datetime | None = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS-84)")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CaseList:
    """Cases you may see, filtered and paginated, newest first."""
    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            raise InvalidInput(
                "bbox must be four numbers: minlon,minlat,maxlon,maxlat", field="bbox"
            ) from None
        if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
            raise InvalidInput("bbox must be minlon,minlat,maxlon,maxlat with min < max", field="bbox")
    filters = CaseFilter(
        state=state or [],
        unit=unit,
        area=area,
        category=category,
        overdue=overdue,
        triage=triage,
        reported_from=reported_from,
        reported_to=reported_to,
        bbox=box,
        page=page,
        page_size=page_size,
    )
    rows, total = list_cases(session, actor, filters)
    return CaseList(
        total=total, page=page, page_size=page_size, items=[case_out(session, c, actor) for c in rows]
    )


@router.get("/cases/{ref}", response_model=CaseOut)
def case_detail(ref: str, actor: ActorDep, session: SessionDep) -> CaseOut:
    """One case with its events, photos and suggested duplicates."""
    return case_out(session, readable_case(session, actor, _ref(ref)), actor, detail=True)


@router.get("/track/{tracking_code}", response_model=CasePublic)
def track(tracking_code: str, session: SessionDep) -> CasePublic:
    """Follow a case by its tracking code: public fields only (件件有下落)."""
    case = load_case(session, tracking_code)
    lon, lat = location_of(case)
    photos = session.scalars(select(CasePhoto).where(CasePhoto.case_id == case.id).order_by(CasePhoto.id))
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id))
    return CasePublic(
        tracking_code=case.tracking_code,
        category_code=case.category_code,
        description=case.description,
        state=case.state,
        reported_at=case.reported_at,
        community_code=case.community_code,
        lon=lon,
        lat=lat,
        photos=[photo_out(p) for p in photos],
        events=[event_out(e, public=True) for e in events],
    )


@router.get(
    "/photos/{key}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def public_photo(key: str, request: Request, session: SessionDep) -> Response:
    """A public photo copy (EXIF removed); originals are never served here."""
    photo = session.scalar(select(CasePhoto).where(CasePhoto.public_key == key).limit(1))
    if photo is None:
        raise NotFound(f"no photo {key}", field="key")
    data = _context(request).blobs.get(photo.public_key)
    return Response(
        data,
        media_type=photo.public_content_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.get("/cases/{ref}/photos/{photo_id}/original", response_class=Response)
def original_photo(
    ref: str, photo_id: int, request: Request, actor: ActorDep, session: SessionDep
) -> Response:
    """The original upload with its EXIF (location, device), for operators and admins only."""
    if actor.role not in (Role.operator, Role.admin):
        raise ActionForbidden("only operators and admins may see original photos", field="photo")
    case = readable_case(session, actor, _ref(ref))
    photo = session.get(CasePhoto, photo_id)
    if photo is None or photo.case_id != case.id:
        raise NotFound(f"case {case.tracking_code} has no photo {photo_id}", field="photo")
    return Response(_context(request).blobs.get(photo.original_key), media_type=photo.content_type)
