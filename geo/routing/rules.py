"""The routing rules as practised (DOMAIN.md), each step recorded so a dispatcher can see why.

`decide` runs the chain below, one function per rule, in this order; each step it records carries
the rule's stable name, so the explanation reads as this list does.
1. Where the report is: coordinates in another system are normalised to WGS-84 (`crs_normalised`);
   the point's grid (`grid`), or in none the nearest grid within the tolerance (`nearest_grid`); the
   community, street and district from the grid's hierarchy (`hierarchy`), never from a
   point-in-district test: a community that crosses district lines (插花地) is served by its
   community, whatever the district.
2. Responsibility layers (rivers and lakes, roads, parks) override the grid for the categories they
   list, highest priority first (`layer_override`); other matching layers' units cooperate
   (`layer_cooperating`); layers here that do not list the category are noted
   (`layer_not_applicable`), and so is the unit the report would have gone to (`layer_instead_of`).
3. Components (部件) go to their owner first, then the locality (部件先属主、后属地): the category
   table names the owning department (`component_owner_first`, `locality_cooperating`).
4. The locality, the grid's 包保 unit with the street office cooperating (`street_office_cooperating`):
   first for events (事件先属地、后属主: `event_locality_first`, then `owner_second`), for a report
   with no category (`locality_no_category`), and for a component with no owner named (属地兜底:
   `locality_fallback`).
5. A grid with no 包保 unit: the category's owner (`owner_fallback`).
6. Nothing answers: the command centre triages it by hand (`unroutable`); a report is never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from geo.routing.decision import (
    AreaRef,
    CategoryRef,
    GridRef,
    RoutingDecision,
    RoutingStatus,
    RuleStep,
    UnitRef,
)
from geo.routing.snapshot import GridInfo, Layer, Snapshot


def _unit_text(unit: UnitRef) -> str:
    return f"{unit.code} {unit.name}"


def _layer_text(layer: Layer) -> str:
    where = f"within {layer.buffer_m:g} m of" if layer.buffer_m > 0 else "inside"
    return f"{where} {layer.name} ({layer.kind} layer {layer.code}, priority {layer.priority})"


def _locality(snapshot: Snapshot, grid: GridInfo | None) -> tuple[UnitRef | None, list[UnitRef]]:
    """The grid's locality: its first 包保 unit, and the street office (if another) cooperating."""
    if grid is None:
        return None, []
    units = [snapshot.units[c] for c in snapshot.locality.get(grid.code, []) if c in snapshot.units]
    if not units:
        return None, []
    offices = [u for u in units[1:] if u.kind == "street_office"]
    return units[0], offices


@dataclass
class _Report:
    """One located report on its way down the chain: what the rules read, and the decision so far."""

    snapshot: Snapshot
    decision: RoutingDecision
    category: CategoryRef | None
    owner: UnitRef | None  # the department the category table names
    grid: GridInfo | None
    distance_m: float | None  # metres to the nearest grid; None when the point is in one
    tolerance_m: float
    locality: UnitRef | None = None
    street_offices: list[UnitRef] = field(default_factory=list)
    steps: list[RuleStep] = field(default_factory=list)

    def note(self, rule: str, text: str, layer: Layer | None = None) -> None:
        """Record one step of the chain (naming the layer of a layer rule, for translations)."""
        self.steps.append(RuleStep(rule=rule, text=text, layer=layer.name if layer else None))


def decide(
    snapshot: Snapshot,
    *,
    lon: float,
    lat: float,
    input_crs: str,
    category_code: str | None,
    grid_index: int,
    distance_m: float | None,
    tolerance_m: float,
) -> RoutingDecision:
    """Apply the rules to one located report and explain every step."""
    category, department = snapshot.categories[category_code] if category_code is not None else (None, None)
    report = _Report(
        snapshot=snapshot,
        decision=RoutingDecision(
            status=RoutingStatus.routed,
            lon=lon,
            lat=lat,
            input_crs=input_crs,
            category=category,
            generation=snapshot.generation,
        ),
        category=category,
        owner=snapshot.units.get(department) if department else None,
        grid=snapshot.grids[grid_index] if grid_index >= 0 else None,
        distance_m=distance_m,
        tolerance_m=tolerance_m,
    )
    _crs_normalised(report)
    _grid_or_nearest_grid(report)
    _hierarchy(report)
    report.locality, report.street_offices = _locality(snapshot, report.grid)
    for rule in RESPONSIBILITY_CHAIN:
        if rule(report):
            break
    else:
        _unroutable(report)
    report.decision.rules = report.steps
    return report.decision


# -- 1. where the report is ---------------------------------------------------------------------
def _crs_normalised(report: _Report) -> None:
    """Say so when the coordinates came in another system (GCJ-02, BD-09) and were normalised."""
    d = report.decision
    if d.input_crs not in ("wgs84", "cgcs2000"):
        report.note(
            "crs_normalised", f"{d.input_crs} coordinates normalised to WGS-84 ({d.lon:.6f}, {d.lat:.6f})"
        )


def _grid_or_nearest_grid(report: _Report) -> None:
    """The grid the point is in, or the nearest grid within the tolerance."""
    grid, distance_m, d = report.grid, report.distance_m, report.decision
    if grid is None:
        if distance_m is not None:
            d.distance_to_grid_m = round(distance_m, 1)
        return
    d.grid = GridRef(
        code=grid.code, name=grid.name, area_id=grid.area_id, generation=report.snapshot.generation
    )
    if distance_m is None:
        report.note(
            "grid",
            f"point in grid {grid.code} {grid.name} (boundary generation {report.snapshot.generation})",
        )
        return
    d.status = RoutingStatus.nearest_grid
    d.distance_to_grid_m = round(distance_m, 1)
    report.note(
        "nearest_grid",
        f"point in no grid; nearest grid {grid.code} {grid.name} is "
        f"{distance_m:.0f} m away (tolerance {report.tolerance_m:g} m)",
    )


def _area(snapshot: Snapshot, code: str | None) -> tuple[AreaRef, str | None] | None:
    """A non-grid area of the generation by code, with its parent's code; None if unknown."""
    found = snapshot.areas.get(code or "")
    if found is None or not code:
        return None
    return AreaRef(code=code, name=found[0]), found[1]


def _hierarchy(report: _Report) -> None:
    """Community, street and district from the grid's parents, whatever district the point lies in."""
    community = _area(report.snapshot, report.grid.community_code) if report.grid else None
    if community is None:
        return
    d = report.decision
    d.community, street_code = community
    street = _area(report.snapshot, street_code)
    if street is not None:
        d.street, district_code = street
        district = _area(report.snapshot, district_code)
        if district is not None:
            d.district = district[0]
    report.note(
        "hierarchy",
        f"served by community {d.community.code} {d.community.name}"
        + (f", street {d.street.name}" if d.street else "")
        + (f", district {d.district.name}" if d.district else "")
        + " (from the grid's hierarchy, whatever district the point lies in)",
    )


# -- 2. responsibility layers -------------------------------------------------------------------
def _layer_override(report: _Report) -> bool:
    """The highest-priority layer here that lists the category answers; the others cooperate."""
    category = report.category
    if category is None:
        return False
    here = report.snapshot.layers_at(report.decision.lon, report.decision.lat)
    for layer in here:
        if category.code not in layer.categories:
            report.note("layer_not_applicable", f"{_layer_text(layer)} does not cover {category.code}", layer)
    matching = [layer for layer in here if category.code in layer.categories]
    if not matching:
        return False
    top, units = matching[0], report.snapshot.units
    unit = units[top.unit_code]
    report.decision.primary_unit = unit
    report.note(
        "layer_override",
        f"{category.kind} {category.code} {category.name} {_layer_text(top)} → {_unit_text(unit)}",
        top,
    )
    for other in matching[1:]:
        if other.unit_code != unit.code:
            report.decision.cooperating_units.append(units[other.unit_code])
            report.note(
                "layer_cooperating",
                f"also {_layer_text(other)} → {_unit_text(units[other.unit_code])} cooperates",
                other,
            )
    _layer_instead_of(report, unit)
    return True


def _layer_instead_of(report: _Report, unit: UnitRef) -> None:
    """Name the unit the chain would have chosen without the layer, when it is another."""
    is_component = report.category is not None and report.category.kind == "component"
    alternative = report.owner if is_component and report.owner else report.locality
    if alternative is not None and alternative.code != unit.code:
        report.note("layer_instead_of", f"without the layer it would have gone to {_unit_text(alternative)}")


# -- 3. components: owner first -----------------------------------------------------------------
def _component_owner_first(report: _Report) -> bool:
    """部件先属主、后属地: a component goes to its owner, the locality cooperating."""
    category, owner, locality = report.category, report.owner, report.locality
    if category is None or category.kind != "component" or owner is None:
        return False
    report.decision.primary_unit = owner
    report.note(
        "component_owner_first",
        f"component {category.code} {category.name}: owner first (部件先属主) → {_unit_text(owner)}",
    )
    if locality is not None and locality.code != owner.code:
        report.decision.cooperating_units.append(locality)
        report.note("locality_cooperating", f"locality {_unit_text(locality)} cooperates")
    return True


# -- 4. the locality ----------------------------------------------------------------------------
def _locality_first(report: _Report) -> bool:
    """事件先属地 (and 属地兜底): the grid's 包保 unit answers, the street office cooperating."""
    locality = report.locality
    if locality is None:
        return False
    d = report.decision
    d.primary_unit = locality
    d.cooperating_units.extend(u for u in report.street_offices if u.code != locality.code)
    category = report.category
    if category is None:
        report.note("locality_no_category", f"no category given: locality → {_unit_text(locality)}")
    elif category.kind == "event":
        _event_locality_first(report, category, locality)
    else:
        report.note(
            "locality_fallback",
            f"component {category.code} {category.name} has no owner named: locality fallback "
            f"(属地兜底) → {_unit_text(locality)}",
        )
    for office in d.cooperating_units:
        report.note("street_office_cooperating", f"street office {_unit_text(office)} cooperates")
    return True


def _event_locality_first(report: _Report, category: CategoryRef, locality: UnitRef) -> None:
    """事件先属地、后属主: the grid's 包保 unit first, the category's owner second in line."""
    report.note(
        "event_locality_first",
        f"event {category.code} {category.name}: locality first (事件先属地) → grid 包保 unit "
        f"{_unit_text(locality)}",
    )
    owner = report.owner
    if owner is not None and owner.code != locality.code:
        report.note("owner_second", f"owner {_unit_text(owner)} is second in line")


# -- 5. no locality: the owner ------------------------------------------------------------------
def _owner_fallback(report: _Report) -> bool:
    """A grid with no 包保 unit goes to the category's owner."""
    grid, owner = report.grid, report.owner
    if grid is None or owner is None:
        return False
    report.decision.primary_unit = owner
    report.note("owner_fallback", f"grid {grid.code} has no 包保 unit: owner {_unit_text(owner)}")
    return True


# -- 6. nothing answers -------------------------------------------------------------------------
def _unroutable(report: _Report) -> None:
    """To the command centre's triage queue, with the reason: the report is never dropped."""
    d, grid = report.decision, report.grid
    d.status = RoutingStatus.unroutable
    d.primary_unit = None
    if grid is None:
        far = f"; nearest grid is {report.distance_m:.0f} m away" if report.distance_m is not None else ""
        d.reason = f"point is in no grid and not within {report.tolerance_m:g} m of one{far}"
    else:
        d.reason = f"grid {grid.code} has no responsible unit and the category no owner"
    report.note("unroutable", d.reason + " → triage queue")


# Who answers, in the order the rules ask; the first that places the report ends the chain.
RESPONSIBILITY_CHAIN: tuple[Callable[[_Report], bool], ...] = (
    _layer_override,
    _component_owner_first,
    _locality_first,
    _owner_fallback,
)
