"""The area hierarchy (district → street → community → grid, and compounds) in boundary generations."""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.store.models import Area, BoundaryGeneration

AREA_COLUMNS = ["id", "level", "code", "name", "name_en", "parent_code", "geom"]


def current_generation(session: Session) -> int | None:
    """The newest generation already in force, or None before the first load."""
    return session.scalar(
        select(func.max(BoundaryGeneration.id)).where(BoundaryGeneration.valid_from <= func.now())
    )


def generation_at(session: Session, when: datetime) -> int | None:
    """The generation that was in force at `when` (for reports made before a re-cut)."""
    return session.scalar(
        select(BoundaryGeneration.id)
        .where(BoundaryGeneration.valid_from <= when)
        .order_by(BoundaryGeneration.valid_from.desc(), BoundaryGeneration.id.desc())
        .limit(1)
    )


def areas_frame(
    session: Session, generation: int | None = None, levels: list[str] | None = None
) -> gpd.GeoDataFrame:
    """Areas valid in a generation (default: current) as a GeoDataFrame in EPSG:4326."""
    if generation is None:
        generation = current_generation(session)
    columns = [getattr(Area, c) for c in AREA_COLUMNS]
    stmt = select(*columns).where(
        Area.generation_low <= (generation or 0), Area.generation_high >= (generation or 0)
    )
    if levels:
        stmt = stmt.where(Area.level.in_(levels))
    frame = gpd.read_postgis(stmt.order_by(Area.code), session.connection(), geom_col="geom")
    frame = frame.rename_geometry("geometry")
    if frame.crs is None:
        frame = frame.set_crs(4326)
    return frame


def count_by_level(session: Session, generation: int | None = None) -> dict[str, int]:
    """How many areas of each level a generation holds."""
    if generation is None:
        generation = current_generation(session)
    rows = session.execute(
        select(Area.level, func.count())
        .where(Area.generation_low <= (generation or 0), Area.generation_high >= (generation or 0))
        .group_by(Area.level)
    ).all()
    return {level: count for level, count in rows}
