"""Routing endpoints: one point, or a batch of points as GeoJSON or CSV (streamed back)."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.inputs import read_json
from api.security import ActorDep
from geo.coords import CoordinateSystem
from geo.errors import InvalidCoordinates, InvalidInput, TooLarge, UnknownCategory
from geo.routing import Router, RoutingDecision, check_coordinates

router = APIRouter(prefix="/api/v1", tags=["routing"])
T = TypeVar("T")
BATCH_LIMIT = 1_000_000
# Bodies past this are refused before they are read: a million CSV rows fit (about 30 bytes each);
# a larger GeoJSON batch is split, or sent as CSV.
MAX_BATCH_BYTES = 64 * 1024 * 1024
CHUNK = 5_000


async def get_router(request: Request) -> Router:
    """The app's router (one spatial index per process)."""
    return request.app.state.router


RouterDep = Annotated[Router, Depends(get_router)]


@router.get("/route", response_model=RoutingDecision)
async def route_point(
    router: RouterDep,
    lon: Annotated[float, Query(description="longitude in the declared system")],
    lat: Annotated[float, Query(description="latitude in the declared system")],
    category: Annotated[str | None, Query(description="category code, e.g. E0102")] = None,
    crs: Annotated[CoordinateSystem, Query(description="coordinate system of lon/lat")] = (
        CoordinateSystem.wgs84
    ),
) -> RoutingDecision:
    """Route one point: grid, community, street, district, units, and the rules that fired."""
    if router.answers_from_memory():
        # CPU work of tens of microseconds from the cached index: on the event loop, not handed to
        # a worker thread and back (the hand-off cost more than the decision).
        decision = router.route(lon, lat, category, crs)
    else:
        decision = await run_in_threadpool(router.route, lon, lat, category, crs)  # reads PostGIS
    # Serialised once, here: the decision is the response model already.
    return Response(decision.model_dump_json(), media_type="application/json")  # type: ignore[return-value]


def _parse_csv(body: bytes) -> tuple[list[float], list[float], list[str | None]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"CSV is not UTF-8 text: byte {body[exc.start]:#04x} at offset {exc.start}", field="body"
        ) from None
    # newline="": line ends are \n, \r\n or a bare \r (older spreadsheet exports), as csv expects.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {f.strip().lower() for f in _csv_row(1, lambda: reader.fieldnames) or []}
    for needed in ("lon", "lat"):
        if needed not in fields:
            raise InvalidInput(f"CSV header must have a '{needed}' column", field=needed)
    lons, lats, cats = [], [], []
    rows = iter(reader)
    for number in itertools.count(2):
        raw = _csv_row(number, lambda: next(rows, None))
        if raw is None:
            break
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(k, str)}
        for name in ("lon", "lat"):
            try:
                float(row[name])
            except ValueError:
                raise InvalidInput(
                    f"row {number}: {name} '{row[name]}' is not a number", field=f"row {number}.{name}"
                ) from None
        lons.append(float(row["lon"]))
        lats.append(float(row["lat"]))
        cats.append(row.get("category") or None)
    return lons, lats, cats


def _csv_row(number: int, read: Callable[[], T]) -> T:
    """One read from the CSV reader; its errors (a field over csv.field_size_limit(), 131,072
    characters) become InvalidInput naming the row."""
    try:
        return read()
    except csv.Error as exc:
        raise InvalidInput(f"row {number}: {exc}", field=f"row {number}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, float) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**1023
    )


def _point(number: int, feature: Any) -> tuple[float, float, str | None]:
    """lon, lat and category of one GeoJSON feature, or InvalidInput naming the part out of shape."""
    where = f"features[{number}]"
    if not isinstance(feature, dict):
        raise InvalidInput(f"feature {number}: must be a GeoJSON Feature object", field=where)
    geometry = feature.get("geometry") or {}
    if not isinstance(geometry, dict):
        raise InvalidInput(f"feature {number}: geometry must be a Point object", field=f"{where}.geometry")
    coords = geometry.get("coordinates")
    if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
        raise InvalidInput(
            f"feature {number}: geometry must be a Point [lon, lat]", field=f"{where}.geometry"
        )
    # bool is an int to Python, not a number to GeoJSON; an int past a float's range is no place
    if not all(_is_number(c) for c in coords[:2]):
        raise InvalidInput(
            f"feature {number}: coordinates must be numbers", field=f"{where}.geometry.coordinates"
        )
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise InvalidInput(f"feature {number}: properties must be an object", field=f"{where}.properties")
    category = properties.get("category")
    if category is not None and not isinstance(category, str):
        raise InvalidInput(
            f"feature {number}: category must be a code like 'E0102'", field=f"{where}.properties.category"
        )
    return float(coords[0]), float(coords[1]), category


def _parse_geojson(body: bytes) -> tuple[list[float], list[float], list[str | None]]:
    data = read_json(body)
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise InvalidInput("body must be a GeoJSON FeatureCollection", field="features")
    lons, lats, cats = [], [], []
    for number, feature in enumerate(features):
        lon, lat, category = _point(number, feature)
        lons.append(lon)
        lats.append(lat)
        cats.append(category)
    return lons, lats, cats


def _check_batch(router: Router, lons: list[float], lats: list[float], cats: list[str | None]) -> None:
    """Every point valid and every category known, or a 422 naming the first bad point."""
    for number, (x, y) in enumerate(zip(lons, lats, strict=True)):
        try:
            check_coordinates(x, y)
        except InvalidCoordinates as exc:
            raise InvalidCoordinates(
                f"point {number}: {exc.message}", field=f"points[{number}].{exc.field}"
            ) from None
    known = router.snapshot().categories
    for number, code in enumerate(cats):
        if code is not None and code not in known:
            raise UnknownCategory(
                f"point {number}: category {code!r} is not in the catalogue",
                field=f"points[{number}].category",
            )


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` (or says it will, by its length)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {int(declared):,} bytes; at most {limit:,} are accepted", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body passed {limit:,} bytes, the most accepted", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/route/batch",
    response_model=list[RoutingDecision],
    openapi_extra={
        "requestBody": {
            "content": {
                "application/geo+json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "required": True,
        }
    },
)
async def route_batch(
    request: Request,
    actor: ActorDep,
    router: RouterDep,
    crs: Annotated[CoordinateSystem, Query(description="coordinate system of all points")] = (
        CoordinateSystem.wgs84
    ),
) -> StreamingResponse:
    """Route many points (GeoJSON FeatureCollection or CSV lon,lat,category); a streamed JSON array.

    For signed-in accounts only (a batch costs the server real work); bodies over 64 MiB are
    refused before they are read.
    """
    body = await read_capped(request, MAX_BATCH_BYTES)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        lons, lats, cats = _parse_csv(body)
    elif kind in ("application/json", "application/geo+json", ""):
        lons, lats, cats = _parse_geojson(body)
    else:
        raise InvalidInput(f"content type {kind!r} is not GeoJSON or CSV", field="content-type")
    if len(lons) > BATCH_LIMIT:
        raise InvalidInput(f"{len(lons)} points exceed the batch limit of {BATCH_LIMIT}", field="body")
    # Refuse the whole batch before streaming starts: a 4xx cannot follow a 200.
    await run_in_threadpool(_check_batch, router, lons, lats, cats)

    def stream() -> Iterator[bytes]:
        yield b"["
        for start in range(0, len(lons), CHUNK):
            stop = start + CHUNK
            decisions = router.route_many(
                np.array(lons[start:stop]), np.array(lats[start:stop]), cats[start:stop], crs
            )
            parts = [d.model_dump_json() for d in decisions]
            yield ((b"," if start else b"") + ",".join(parts).encode())
        yield b"]"

    return StreamingResponse(stream(), media_type="application/json")
