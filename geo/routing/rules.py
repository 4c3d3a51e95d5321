"""The routing rules as practised (DOMAIN.md), each step recorded so a dispatcher can see why.

Order of precedence:
1. Responsibility layers (rivers and lakes, roads, parks) override the grid for the categories they
   list, highest priority first; other matching layers' units cooperate.
2. Components (部件) go to their owner first, then the locality (部件先属主、后属地): the category
   table names the owning department.
3. Events (事件) go to the locality first, then the owner (事件先属地、后属主): the grid's 包保 unit,
   with the street office cooperating.
4. No owner named: the locality answers (属地兜底).
The community, street and district come from the grid's hierarchy, never from a point-in-district
test: a community that crosses district lines (插花地) is served by its community, whatever the district.
"""

from __future__ import annotations

from geo.routing.decision import (
    AreaRef,
    CategoryRef,
    GridRef,
    RoutingDecision,
    RoutingStatus,
    RuleStep,
    UnitRef,
)
from geo.routing.snapshot import Layer, Snapshot


def _unit_text(unit: UnitRef) -> str:
    return f"{unit.code} {unit.name}"


def _layer_text(layer: Layer) -> str:
    where = f"within {layer.buffer_m:g} m of" if layer.buffer_m > 0 else "inside"
    return f"{where} {layer.name} ({layer.kind} layer {layer.code}, priority {layer.priority})"


def _locality(snapshot: Snapshot, grid_code: str | None) -> tuple[UnitRef | None, list[UnitRef]]:
    """The grid's locality: its first 包保 unit, and the street office (if another) cooperating."""
    if grid_code is None:
        return None, []
    units = [snapshot.units[c] for c in snapshot.locality.get(grid_code, []) if c in snapshot.units]
    if not units:
        return None, []
    primary = units[0]
    offices = [u for u in units[1:] if u.kind == "street_office"]
    return primary, offices


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
    steps: list[RuleStep] = []
    category: CategoryRef | None = None
    department: str | None = None
    if category_code is not None:
        category, department = snapshot.categories[category_code]
    decision = RoutingDecision(
        status=RoutingStatus.routed,
        lon=lon,
        lat=lat,
        input_crs=input_crs,
        category=category,
        generation=snapshot.generation,
    )
    if input_crs not in ("wgs84", "cgcs2000"):
        steps.append(
            RuleStep(
                rule="crs_normalised",
                text=f"{input_crs} coordinates normalised to WGS-84 ({lon:.6f}, {lat:.6f})",
            )
        )

    # Where: the grid, or the nearest grid within the tolerance.
    grid = snapshot.grids[grid_index] if grid_index >= 0 else None
    if grid is not None:
        decision.grid = GridRef(
            code=grid.code, name=grid.name, area_id=grid.area_id, generation=snapshot.generation
        )
        if distance_m is None:
            steps.append(
                RuleStep(
                    rule="grid",
                    text=f"point in grid {grid.code} {grid.name} (boundary generation {snapshot.generation})",
                )
            )
        else:
            decision.status = RoutingStatus.nearest_grid
            decision.distance_to_grid_m = round(distance_m, 1)
            steps.append(
                RuleStep(
                    rule="nearest_grid",
                    text=f"point in no grid; nearest grid {grid.code} {grid.name} is "
                    f"{distance_m:.0f} m away (tolerance {tolerance_m:g} m)",
                )
            )
        community = snapshot.areas.get(grid.community_code or "")
        if community is not None and grid.community_code:
            decision.community = AreaRef(code=grid.community_code, name=community[0])
            street_code = community[1]
            street = snapshot.areas.get(street_code or "")
            if street is not None and street_code:
                decision.street = AreaRef(code=street_code, name=street[0])
                district = snapshot.areas.get(street[1] or "")
                if district is not None and street[1]:
                    decision.district = AreaRef(code=street[1], name=district[0])
            steps.append(
                RuleStep(
                    rule="hierarchy",
                    text=f"served by community {grid.community_code} {community[0]}"
                    + (f", street {decision.street.name}" if decision.street else "")
                    + (f", district {decision.district.name}" if decision.district else "")
                    + " (from the grid's hierarchy, whatever district the point lies in)",
                )
            )
    elif distance_m is not None:
        decision.distance_to_grid_m = round(distance_m, 1)

    locality, street_offices = _locality(snapshot, grid.code if grid else None)
    owner = snapshot.units.get(department) if department else None

    # 1. Responsibility layers override the grid for the categories they list.
    if category is not None:
        here = snapshot.layers_at(lon, lat)
        matching = [layer for layer in here if category.code in layer.categories]
        for layer in here:
            if category.code not in layer.categories:
                steps.append(
                    RuleStep(
                        rule="layer_not_applicable",
                        text=f"{_layer_text(layer)} does not cover {category.code}",
                    )
                )
        if matching:
            top = matching[0]
            unit = snapshot.units[top.unit_code]
            decision.primary_unit = unit
            steps.append(
                RuleStep(
                    rule="layer_override",
                    text=f"{category.kind} {category.code} {category.name} {_layer_text(top)} "
                    f"→ {_unit_text(unit)}",
                )
            )
            for other in matching[1:]:
                if other.unit_code != unit.code:
                    decision.cooperating_units.append(snapshot.units[other.unit_code])
                    steps.append(
                        RuleStep(
                            rule="layer_cooperating",
                            text=f"also {_layer_text(other)} → "
                            f"{_unit_text(snapshot.units[other.unit_code])} "
                            f"cooperates",
                        )
                    )
            alternative = owner if category.kind == "component" and owner else locality
            if alternative is not None and alternative.code != unit.code:
                steps.append(
                    RuleStep(
                        rule="layer_instead_of",
                        text=f"without the layer it would have gone to {_unit_text(alternative)}",
                    )
                )
            return _finish(decision, steps)

    # 2./3. Owner and locality, in the order the category kind asks for.
    if category is not None and category.kind == "component" and owner is not None:
        decision.primary_unit = owner
        steps.append(
            RuleStep(
                rule="component_owner_first",
                text=f"component {category.code} {category.name}: owner first "
                f"(部件先属主) → {_unit_text(owner)}",
            )
        )
        if locality is not None and locality.code != owner.code:
            decision.cooperating_units.append(locality)
            steps.append(
                RuleStep(rule="locality_cooperating", text=f"locality {_unit_text(locality)} cooperates")
            )
        return _finish(decision, steps)
    if locality is not None:
        decision.primary_unit = locality
        decision.cooperating_units.extend(u for u in street_offices if u.code != locality.code)
        if category is None:
            steps.append(
                RuleStep(
                    rule="locality_no_category", text=f"no category given: locality → {_unit_text(locality)}"
                )
            )
        elif category.kind == "event":
            steps.append(
                RuleStep(
                    rule="event_locality_first",
                    text=f"event {category.code} {category.name}: locality first "
                    f"(事件先属地) → grid 包保 unit {_unit_text(locality)}",
                )
            )
            if owner is not None and owner.code != locality.code:
                steps.append(
                    RuleStep(rule="owner_second", text=f"owner {_unit_text(owner)} is second in line")
                )
        else:
            steps.append(
                RuleStep(
                    rule="locality_fallback",
                    text=f"component {category.code} {category.name} has no owner "
                    f"named: locality fallback (属地兜底) → "
                    f"{_unit_text(locality)}",
                )
            )
        for office in decision.cooperating_units:
            steps.append(
                RuleStep(
                    rule="street_office_cooperating", text=f"street office {_unit_text(office)} cooperates"
                )
            )
        return _finish(decision, steps)
    if grid is not None and owner is not None:
        decision.primary_unit = owner
        steps.append(
            RuleStep(
                rule="owner_fallback", text=f"grid {grid.code} has no 包保 unit: owner {_unit_text(owner)}"
            )
        )
        return _finish(decision, steps)

    # Nothing answers: the command centre triages it by hand, the report is never dropped.
    decision.status = RoutingStatus.unroutable
    decision.primary_unit = None
    if grid is None:
        far = f"; nearest grid is {distance_m:.0f} m away" if distance_m is not None else ""
        decision.reason = f"point is in no grid and not within {tolerance_m:g} m of one{far}"
    else:
        decision.reason = f"grid {grid.code} has no responsible unit and the category no owner"
    steps.append(RuleStep(rule="unroutable", text=decision.reason + " → triage queue"))
    return _finish(decision, steps)


def _finish(decision: RoutingDecision, steps: list[RuleStep]) -> RoutingDecision:
    decision.rules = steps
    return decision
