"""Everything routing reads, loaded once per boundary generation and data version (PostGIS is the truth)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.routing.decision import CategoryRef, UnitRef
from geo.routing.index import AreaIndex
from geo.store.models import Area, Category, GridResponsibility, ResponsibilityLayer, Unit

# Which 包保 unit of a grid answers first for the locality: the unit on the ground (a property
# company or the bureau holding the grid) before the committee, the street office last.
LOCALITY_ORDER = {
    "property_company": 0,
    "bureau": 1,
    "utility": 2,
    "community_committee": 3,
    "street_office": 4,
}


@dataclass(frozen=True)
class Layer:
    """A responsibility layer with its buffered zone."""

    code: str
    name: str
    kind: str
    unit_code: str
    priority: int
    buffer_m: float
    categories: frozenset[str]
    zone: shapely.Geometry


@dataclass(frozen=True)
class GridInfo:
    """A grid row of the generation."""

    code: str
    name: str
    area_id: int
    community_code: str | None


@dataclass
class Snapshot:
    """Grids of one generation in an in-memory index, and the reference tables routing needs."""

    generation: int
    version: int
    grids: list[GridInfo]
    index: AreaIndex
    areas: dict[str, tuple[str, str | None]]  # code -> (name, parent_code) for non-grid levels
    units: dict[str, UnitRef]
    categories: dict[str, tuple[CategoryRef, str | None]]  # code -> (ref, department)
    locality: dict[str, list[str]]  # grid code -> 包保 unit codes, locality order
    layers: list[Layer]
    layer_tree: shapely.STRtree = field(init=False)

    def __post_init__(self) -> None:
        self.layer_tree = shapely.STRtree([layer.zone for layer in self.layers])
        for layer in self.layers:
            shapely.prepare(layer.zone)

    def layers_at(self, lon: float, lat: float) -> list[Layer]:
        """Layers whose zone covers the point, highest priority first (then by code)."""
        point = shapely.Point(lon, lat)
        hits = self.layer_tree.query(point, predicate="intersects")
        found = [self.layers[i] for i in hits]
        return sorted(found, key=lambda layer: (-layer.priority, layer.code))


def load_snapshot(session: Session, generation: int, version: int) -> Snapshot:
    """Read one generation's grids and the current reference tables from PostGIS."""
    in_generation = (Area.generation_low <= generation) & (Area.generation_high >= generation)
    grid_rows = session.execute(
        select(Area.code, Area.name, Area.id, Area.parent_code, Area.geom.ST_AsBinary())
        .where(in_generation, Area.level == "grid")
        .order_by(Area.code)
    ).all()
    grids = [GridInfo(r[0], r[1], r[2], r[3]) for r in grid_rows]
    geometries = shapely.from_wkb(np.array([bytes(r[4]) for r in grid_rows], dtype=object))
    areas = {
        code: (name, parent)
        for code, name, parent in session.execute(
            select(Area.code, Area.name, Area.parent_code).where(
                in_generation, Area.level.in_(["district", "street", "community"])
            )
        )
    }
    units = {u.code: UnitRef(code=u.code, name=u.name, kind=u.kind) for u in session.scalars(select(Unit))}
    categories = {
        c.code: (CategoryRef(code=c.code, name=c.name, kind=c.kind), c.department_code)
        for c in session.scalars(select(Category))
    }
    locality: dict[str, list[str]] = {}
    for grid_code, unit_code in session.execute(
        select(GridResponsibility.grid_code, GridResponsibility.unit_code)
    ):
        locality.setdefault(grid_code, []).append(unit_code)
    for codes in locality.values():
        codes.sort(key=lambda c: (LOCALITY_ORDER.get(units[c].kind, 9), c))
    return Snapshot(
        generation=generation,
        version=version,
        grids=grids,
        index=AreaIndex([g.code for g in grids], geometries),
        areas=areas,
        units=units,
        categories=categories,
        locality=locality,
        layers=_load_layers(session),
    )


def _load_layers(session: Session) -> list[Layer]:
    """Every responsibility layer with its zone (already buffered in PostGIS, EPSG:4326)."""
    return [
        Layer(
            r.code,
            r.name,
            r.kind,
            r.unit_code,
            r.priority,
            r.buffer_m,
            frozenset(r.categories),
            shapely.from_wkb(bytes(r.zone_wkb)),
        )
        for r in session.execute(
            select(
                ResponsibilityLayer.code,
                ResponsibilityLayer.name,
                ResponsibilityLayer.kind,
                ResponsibilityLayer.unit_code,
                ResponsibilityLayer.priority,
                ResponsibilityLayer.buffer_m,
                ResponsibilityLayer.categories,
                ResponsibilityLayer.zone.ST_AsBinary().label("zone_wkb"),
            )
        )
    ]
