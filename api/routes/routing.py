"""Routing endpoints: one point, or a batch of points as GeoJSON or CSV (streamed back)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from geo.coords import CoordinateSystem
from geo.errors import InvalidCoordinates, InvalidInput, UnknownCategory
from geo.routing import Router, RoutingDecision, check_coordinates

router = APIRouter(prefix="/api/v1", tags=["routing"])
BATCH_LIMIT = 1_000_000
CHUNK = 5_000


def get_router(request: Request) -> Router:
    """The app's router (one spatial index per process)."""
    return request.app.state.router


RouterDep = Annotated[Router, Depends(get_router)]


@router.get("/route", response_model=RoutingDecision)
def route_point(
    router: RouterDep,
    lon: Annotated[float, Query(description="longitude in the declared system")],
    lat: Annotated[float, Query(description="latitude in the declared system")],
    category: Annotated[str | None, Query(description="category code, e.g. E0102")] = None,
    crs: Annotated[CoordinateSystem, Query(description="coordinate system of lon/lat")] = (
        CoordinateSystem.wgs84
    ),
) -> RoutingDecision:
    """Route one point: grid, community, street, district, units, and the rules that fired."""
    return router.route(lon, lat, category, crs)


def _parse_csv(body: bytes) -> tuple[list[float], list[float], list[str | None]]:
    text = body.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    for needed in ("lon", "lat"):
        if needed not in fields:
            raise InvalidInput(f"CSV header must have a '{needed}' column", field=needed)
    lons, lats, cats = [], [], []
    for number, row in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
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


def _parse_geojson(body: bytes) -> tuple[list[float], list[float], list[str | None]]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"body is not JSON: {exc}", field="body") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise InvalidInput("body must be a GeoJSON FeatureCollection", field="features")
    lons, lats, cats = [], [], []
    for number, feature in enumerate(features):
        geometry = (feature or {}).get("geometry") or {}
        coords = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            raise InvalidInput(
                f"feature {number}: geometry must be a Point [lon, lat]", field=f"features[{number}].geometry"
            )
        if not all(isinstance(c, int | float) for c in coords[:2]):
            raise InvalidInput(
                f"feature {number}: coordinates must be numbers",
                field=f"features[{number}].geometry.coordinates",
            )
        lons.append(float(coords[0]))
        lats.append(float(coords[1]))
        properties = feature.get("properties") or {}
        cats.append(properties.get("category"))
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
    router: RouterDep,
    crs: Annotated[CoordinateSystem, Query(description="coordinate system of all points")] = (
        CoordinateSystem.wgs84
    ),
) -> StreamingResponse:
    """Route many points (GeoJSON FeatureCollection or CSV lon,lat,category); a streamed JSON array."""
    body = await request.body()
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
