"""What routing answers: the responsible unit, where the report is, and why (the rule chain)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class RoutingStatus(StrEnum):
    """How the report was placed."""

    routed = "routed"  # inside a grid (or a layer that owns the category)
    nearest_grid = "nearest_grid"  # in no grid but within the tolerance of one
    unroutable = "unroutable"  # goes to the command centre's triage queue


class AreaRef(BaseModel):
    """An area by code and name."""

    code: str
    name: str


class GridRef(AreaRef):
    """The grid a report fell in, with the polygon row valid at report time."""

    area_id: int
    generation: int


class UnitRef(BaseModel):
    """A responsible unit by code, name and kind."""

    code: str
    name: str
    kind: str


class CategoryRef(BaseModel):
    """A catalogue subclass (部件/事件)."""

    code: str
    name: str
    kind: str


class RuleStep(BaseModel):
    """One rule that fired or was considered, in words and a stable code."""

    rule: str = Field(description="stable rule code, e.g. layer_override, event_locality_first")
    text: str = Field(description="what the rule said, for a dispatcher")
    layer: str | None = Field(
        default=None, description="the responsibility layer's name, for the layer rules (e.g. 北渠)"
    )


class RoutingDecision(BaseModel):
    """The answer for one geolocated report."""

    status: RoutingStatus
    lon: float = Field(description="WGS-84 longitude after normalisation")
    lat: float = Field(description="WGS-84 latitude after normalisation")
    input_crs: str
    category: CategoryRef | None = None
    generation: int | None = None
    grid: GridRef | None = None
    community: AreaRef | None = None
    street: AreaRef | None = None
    district: AreaRef | None = None
    primary_unit: UnitRef | None = None
    cooperating_units: list[UnitRef] = Field(default_factory=list)
    distance_to_grid_m: float | None = Field(
        default=None, description="metres to the nearest grid when the point is in none"
    )
    rules: list[RuleStep] = Field(default_factory=list)
    reason: str | None = Field(default=None, description="why the report is unroutable")

    def explain(self) -> str:
        """The rule chain as one readable paragraph."""
        return " → ".join(step.text for step in self.rules)
