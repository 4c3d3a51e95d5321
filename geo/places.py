"""Place names for a map search (地名查询): streets, communities, grids, compounds and the named
responsibility layers (roads, the canal, the lake, parks), found by their Chinese (or English)
name or any part of it, from the database alone: no geocoder, no network.

A place is answered with a point inside it (`ST_PointOnSurface`: inside even for a crescent-shaped
community, unlike a centroid) and its bounding box, both WGS-84 lon/lat, so a map can show the
whole place and drop a pin in it.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field
from sqlalchemy import Float, String, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from geo.areas import current_generation
from geo.errors import InvalidInput
from geo.store.models import Area, ResponsibilityLayer

#: The area levels a search finds (a district is the whole map).
AREA_LEVELS = ("street", "community", "grid", "compound")
#: Which come first among equally good matches: the bigger, better-known places.
KIND_ORDER = {"street": 0, "community": 1, "road": 2, "river_lake": 3, "park": 4, "compound": 5, "grid": 6}
MAX_QUERY = 40


class Place(BaseModel):
    """A named place: what it is, where it lies (WGS-84), and where it is in the hierarchy."""

    name: str
    kind: str = Field(description="street, community, grid, compound, or a layer's kind (road, park, ...)")
    within: str | None = Field(default=None, description="the community or street it lies in, by name")
    lon: float = Field(description="a point inside the place (WGS-84 longitude)")
    lat: float = Field(description="a point inside the place (WGS-84 latitude)")
    bbox: list[float] = Field(description="west, south, east, north (WGS-84)")
    outline: dict = Field(description="the place's GeoJSON geometry, simplified to about 1 m (WGS-84)")


def _pattern(query: str) -> str:
    # ILIKE's wildcards typed by a person are matched as themselves.
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_places(session: Session, query: str, limit: int = 12) -> list[Place]:
    """Places whose name contains `query`: exact names first, then names that start with it, then
    the shorter names, bigger places before smaller ones; at most `limit`."""
    words = query.strip()
    if not words:
        raise InvalidInput("type a place name or part of one", field="q")
    if len(words) > MAX_QUERY:
        raise InvalidInput(f"a place name of at most {MAX_QUERY} characters", field="q")
    generation = current_generation(session) or 0
    pattern = _pattern(words)
    parent = aliased(Area)
    current = and_(Area.generation_low <= generation, Area.generation_high >= generation)
    areas = (
        select(
            Area.name.label("name"),
            Area.name_en.label("name_en"),
            cast(Area.level, String).label("kind"),
            parent.name.label("within"),
            Area.geom.label("geom"),
        )
        .outerjoin(
            parent,
            and_(
                parent.code == Area.parent_code,
                parent.generation_low <= generation,
                parent.generation_high >= generation,
            ),
        )
        .where(current, Area.level.in_(AREA_LEVELS))
        .where(or_(Area.name.ilike(pattern), Area.name_en.ilike(pattern)))
    )
    layers = select(
        ResponsibilityLayer.name.label("name"),
        ResponsibilityLayer.name_en.label("name_en"),
        cast(ResponsibilityLayer.kind, String).label("kind"),
        literal(None, String).label("within"),
        ResponsibilityLayer.geom.label("geom"),
    ).where(or_(ResponsibilityLayer.name.ilike(pattern), ResponsibilityLayer.name_en.ilike(pattern)))
    found = union_all(areas, layers).subquery()
    kind_rank = case(KIND_ORDER, value=found.c.kind, else_=9)
    point = func.ST_PointOnSurface(found.c.geom)
    rows = session.execute(
        select(
            found.c.name,
            found.c.kind,
            found.c.within,
            func.ST_X(point),
            func.ST_Y(point),
            cast(func.ST_XMin(found.c.geom), Float),
            cast(func.ST_YMin(found.c.geom), Float),
            cast(func.ST_XMax(found.c.geom), Float),
            cast(func.ST_YMax(found.c.geom), Float),
            # 0.00001° is about 1 m here: enough to draw, a few hundred bytes per place.
            func.ST_AsGeoJSON(func.ST_SimplifyPreserveTopology(found.c.geom, 0.00001), 6),
        )
        .order_by(
            (found.c.name != words),
            ~found.c.name.startswith(words, autoescape=True),
            func.length(found.c.name),
            kind_rank,
            found.c.name,
        )
        .limit(limit)
    ).all()
    return [
        Place(
            name=name,
            kind=kind,
            within=within,
            lon=lon,
            lat=lat,
            bbox=[w, s, e, n],
            outline=json.loads(shape),
        )
        for name, kind, within, lon, lat, w, s, e, n, shape in rows
    ]
