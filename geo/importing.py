"""`gridcase import`: load areas, units, categories and layers, each file in one transaction.

Every file is validated in full before anything is written; any error raises `InvalidImport` with
all findings, and the transaction writes nothing. Areas go into a new boundary generation so cases
keep the polygons that were valid when they were reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypedDict

import geopandas as gpd
import pandas as pd
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from geo import validation
from geo.areas import areas_frame, current_generation
from geo.errors import InvalidImport
from geo.store.models import (
    Account,
    Area,
    BoundaryGeneration,
    Category,
    CategoryKind,
    GridResponsibility,
    ReferenceVersion,
    ResponsibilityLayer,
    TimeLimitUnit,
    Unit,
    UnitKind,
)
from geo.validation import Finding, FindingKind

Progress = Callable[[int, int], None]
BATCH = 500


class Where(TypedDict):
    """Where in a file a finding is: the feature's code and its row (typed for `Finding(**where)`)."""

    code: str
    row: int


@dataclass
class ImportResult:
    """What an import did."""

    kind: str
    rows: int
    inserted: int = 0
    unchanged: int = 0
    retired: int = 0
    generation: int | None = None
    findings: list[Finding] = field(default_factory=list)
    carried: list[CarriedGrid] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the console."""
        parts = [f"{self.kind}: {self.rows} rows", f"{self.inserted} written"]
        if self.unchanged:
            parts.append(f"{self.unchanged} unchanged")
        if self.retired:
            parts.append(f"{self.retired} retired")
        if self.generation is not None:
            parts.append(f"generation {self.generation}")
        return ", ".join(parts)

    def succession_lines(self) -> list[str]:
        """Every grid whose units and inspectors were carried over, and every grid left without a unit."""
        lines = [c.line() for c in self.carried]
        if self.unassigned:
            lines.append(f"grids without a unit ({len(self.unassigned)}): {', '.join(self.unassigned)}")
        return lines


@dataclass(frozen=True)
class CarriedGrid:
    """A retired grid's 包保 units and inspectors, carried to a grid that took over part of its area."""

    retired: str
    successor: str
    share: float  # of the retired grid's area that lies in the successor
    units: list[str]
    inspectors: list[str]

    def line(self) -> str:
        """The import report's line for it."""
        return (
            f"carried {self.retired} → {self.successor} ({self.share:.0%} of it): "
            f"units {', '.join(self.units) or 'none'}; inspectors {', '.join(self.inspectors) or 'none'}"
        )


#: A retired grid passes its units and inspectors to every new grid that covers at least this share
#: of it, or of which it makes up at least this share: redrawn edges (slivers) do not count.
SUCCESSION_SHARE = 0.05


def bump_reference_version(session: Session, name: str) -> None:
    """Tell in-process caches (the router's index) that reference data changed."""
    stmt = pg_insert(ReferenceVersion).values(name=name, version=1)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ReferenceVersion.name],
            set_={"version": ReferenceVersion.version + 1, "changed_at": func.now()},
        )
    )


def reference_version(session: Session) -> int:
    """Sum of all reference counters: changes whenever any import wrote something."""
    return int(session.scalar(select(func.coalesce(func.sum(ReferenceVersion.version), 0))) or 0)


def _fail_on_errors(kind: str, path: Path, findings: list[Finding]) -> None:
    if validation.has_errors(findings):
        raise InvalidImport(
            f"{kind} file {path.name} has errors; nothing was written\n" + validation.format_report(findings),
            findings,
            field="file",
        )


def _text(value: object) -> str | None:
    """A text cell as str, or None for blank, None and NaN (files and frames differ here)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


# -- areas ------------------------------------------------------------------------------------
def import_areas(
    session: Session,
    path: Path,
    *,
    source_crs: str | None = None,
    repair: bool = False,
    tolerance_m2: float = 1.0,
    description: str | None = None,
    valid_from: datetime | None = None,
    progress: Progress | None = None,
    allow_unassigned: bool = False,
) -> ImportResult:
    """Load district/street/community/grid/compound polygons as a new boundary generation.

    The file replaces, for each (level, parent) group it contains, the areas of the current
    generation: an area of such a group missing from the file is retired, one with a changed
    polygon or name gets a new row, an unchanged one is carried into the new generation.
    Areas of groups the file does not mention are carried over as they are. Loading a file
    identical to what is current changes nothing and creates no generation.

    A retired grid's 包保 units and its inspectors go to the grids that took over its area
    (`SUCCESSION_SHARE`). Once units are assigned, a generation that would leave a grid without
    a unit is refused (nothing written) unless `allow_unassigned`.
    """
    path = Path(path)
    areas, findings = validation.read_areas(path, source_crs=source_crs)
    _fail_on_errors("areas", path, findings)
    existing = areas_frame(session)
    groups = {(r.level, _text(r.parent_code)) for r in areas.itertuples(index=False)}
    # The file replaces whole (level, parent) groups: check it against what will remain.
    remaining = existing[
        [
            (level, _text(parent)) not in groups
            for level, parent in zip(existing["level"], existing["parent_code"], strict=True)
        ]
    ]
    areas, checked = validation.check_areas(
        areas,
        existing=remaining if len(remaining) else None,
        tolerance_m2=tolerance_m2,
        repair=repair,
    )
    findings += checked
    _fail_on_errors("areas", path, findings)

    current = existing.set_index("code") if len(existing) else None
    new_rows: list[dict] = []
    unchanged_codes: set[str] = set()
    for row in areas.itertuples(index=False):
        parent = _text(row.parent_code)
        name_en = _text(getattr(row, "name_en", None))
        if current is not None and row.code in current.index:
            old = current.loc[row.code]
            same = (
                old.level == row.level
                and old["name"] == row.name
                and _text(old.parent_code) == parent
                and _text(old.name_en) == name_en
                and shapely.equals_exact(old.geometry, row.geometry, tolerance=1e-9)
            )
            if same:
                unchanged_codes.add(row.code)
                continue
        new_rows.append(
            {
                "level": row.level,
                "code": row.code,
                "name": row.name,
                "name_en": name_en,
                "parent_code": parent,
                "geom": from_shape(row.geometry, srid=4326),
            }
        )

    file_codes = set(areas["code"])
    retired_codes: set[str] = set()
    if current is not None:
        for code, old in current.iterrows():
            if (old.level, _text(old.parent_code)) in groups and code not in file_codes:
                retired_codes.add(str(code))

    result = ImportResult(
        "areas", len(areas), unchanged=len(unchanged_codes), retired=len(retired_codes), findings=findings
    )
    if not new_rows and not retired_codes:
        return result  # identical to what is current: no new generation
    _plan_succession(session, path, result, (current, areas, remaining), retired_codes, allow_unassigned)
    previous = current_generation(session)
    if valid_from is not None and previous is not None:
        before = session.get(BoundaryGeneration, previous)
        if before is not None and valid_from < before.valid_from:
            raise InvalidImport(
                f"valid_from {valid_from:%Y-%m-%d %H:%M} is before the current generation's "
                f"{before.valid_from:%Y-%m-%d %H:%M}",
                field="valid_from",
            )
    generation = BoundaryGeneration(description=description or f"import {path.name}", source=str(path.name))
    if valid_from is not None:
        generation.valid_from = valid_from
    session.add(generation)
    session.flush()
    result.generation = generation.id
    if previous is not None:
        replaced = retired_codes | {r["code"] for r in new_rows}
        carry = update(Area).where(Area.generation_high == previous)
        if replaced:
            carry = carry.where(Area.code.not_in(replaced))
        session.execute(carry.values(generation_high=generation.id))
    for start in range(0, len(new_rows), BATCH):
        batch = [
            {**r, "generation_low": generation.id, "generation_high": generation.id}
            for r in new_rows[start : start + BATCH]
        ]
        session.execute(insert(Area), batch)
        if progress:
            progress(min(start + BATCH, len(new_rows)), len(new_rows))
    result.inserted = len(new_rows)
    _carry(session, result.carried)
    bump_reference_version(session, "areas")
    return result


def _plan_succession(
    session: Session,
    path: Path,
    result: ImportResult,
    frames: tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame, gpd.GeoDataFrame],
    retired_codes: set[str],
    allow_unassigned: bool,
) -> None:
    """Fill in what the import carries over and leaves unassigned; refuse it (before any write) if a
    grid would have no unit while units are in use, unless allowed."""
    current, areas, remaining = frames
    succession = _successors(current, areas, retired_codes)
    result.carried, result.unassigned, in_use = _succession_plan(session, succession, areas, remaining)
    if result.unassigned and in_use and not allow_unassigned:
        raise InvalidImport(
            f"areas file {path.name} would leave {len(result.unassigned)} grid(s) without a responsible "
            f"unit: {', '.join(result.unassigned)}; nothing was written. Give --allow-unassigned to load "
            "it anyway, then assign units (gridcase import units, or the admin desk)",
            field="grids",
        )


def _successors(
    current: gpd.GeoDataFrame | None, areas: gpd.GeoDataFrame, retired_codes: set[str]
) -> list[tuple[str, str, float]]:
    """(retired grid, successor, share of the retired grid) for every overlap that counts.

    Shares are ratios of areas in degrees²: within one community the cos(latitude) factor is the
    same for both polygons, so the ratio is as good as one in metres.
    """
    if current is None:
        return []
    grids = areas[areas["level"] == "grid"]
    pairs = []
    for code in sorted(retired_codes):
        old = current.loc[code]
        if old.level != "grid" or old.geometry.area == 0:
            continue
        for new in grids[grids.intersects(old.geometry)].itertuples(index=False):
            shared = old.geometry.intersection(new.geometry).area
            of_old, of_new = shared / old.geometry.area, shared / max(new.geometry.area, 1e-18)
            if max(of_old, of_new) >= SUCCESSION_SHARE:
                pairs.append((code, str(new.code), of_old))
    return pairs


def _succession_plan(
    session: Session,
    succession: list[tuple[str, str, float]],
    areas: gpd.GeoDataFrame,
    remaining: gpd.GeoDataFrame,
) -> tuple[list[CarriedGrid], list[str], bool]:
    """What each successor receives, the grids left without a unit, and whether units are in use."""
    responsible: dict[str, set[str]] = {}
    for unit_code, grid_code in session.execute(
        select(GridResponsibility.unit_code, GridResponsibility.grid_code)
    ):
        responsible.setdefault(grid_code, set()).add(unit_code)
    retired = sorted({r for r, _, _ in succession})
    inspectors: dict[str, list[str]] = {}
    if retired:
        rows = session.execute(
            select(Account.username, Account.grid_codes).where(Account.grid_codes.overlap(retired))
        )
        for username, grids in rows:
            for grid in grids:
                inspectors.setdefault(grid, []).append(username)
    carried = [
        CarriedGrid(r, s, share, sorted(responsible.get(r, ())), sorted(inspectors.get(r, [])))
        for r, s, share in succession
    ]
    units_after = {
        code: set(responsible.get(code, ())) for code in areas.loc[areas["level"] == "grid", "code"]
    }
    for c in carried:
        units_after[c.successor] |= set(c.units)
    for code in remaining.loc[remaining["level"] == "grid", "code"] if len(remaining) else []:
        units_after.setdefault(code, set(responsible.get(code, ())))
    unassigned = sorted(code for code, units in units_after.items() if not units)
    return carried, unassigned, bool(responsible)


def _carry(session: Session, carried: list[CarriedGrid]) -> None:
    """Give the successors their predecessors' units, and the inspectors their new grids.

    The retired grids' responsibility rows stay (by code, for history); an inspector's retired
    grids are replaced by their successors.
    """
    rows = [{"unit_code": u, "grid_code": c.successor} for c in carried for u in c.units]
    if rows:
        session.execute(pg_insert(GridResponsibility).values(rows).on_conflict_do_nothing())
    successors: dict[str, list[str]] = {}
    for c in carried:
        successors.setdefault(c.retired, []).append(c.successor)
    names = sorted({name for c in carried for name in c.inspectors})
    for account in session.scalars(select(Account).where(Account.username.in_(names))):
        grids = [g2 for g in account.grid_codes for g2 in successors.get(g, [g])]
        account.grid_codes = list(dict.fromkeys(grids))
    session.flush()


# -- tables from CSV ----------------------------------------------------------------------------
def _read_table(path: Path, required: list[str]) -> tuple[pd.DataFrame, list[Finding]]:
    """Read a CSV (or the attribute table of a spatial file) as strings, checking columns."""
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    else:
        frame = pd.DataFrame(gpd.read_file(path).drop(columns="geometry")).astype(str)
    frame.columns = [c.strip() for c in frame.columns]
    frame = frame.apply(lambda col: col.str.strip())
    findings = [
        Finding(FindingKind.missing_field, f"column '{c}' is missing", row=None)
        for c in required
        if c not in frame.columns
    ]
    frame["row"] = range(2, len(frame) + 2)  # 1-based, after the header line
    return frame, findings


def _duplicates(frame: pd.DataFrame, column: str = "code") -> list[Finding]:
    dup = frame[frame.duplicated(column, keep=False)]
    return [
        Finding(
            FindingKind.duplicate_code,
            f"{column} {r[column]} appears more than once",
            code=r[column],
            row=int(r["row"]),
        )
        for _, r in dup.iterrows()
    ]


def import_units(session: Session, path: Path) -> ImportResult:
    """Load responsible units and their 包保 grids (`grids`: semicolon-separated grid codes)."""
    path = Path(path)
    frame, findings = _read_table(path, ["code", "name", "kind"])
    _fail_on_errors("units", path, findings)
    findings += _duplicates(frame)
    known_grids = set(areas_frame(session, levels=["grid"])["code"])
    kinds = {k.value for k in UnitKind}
    assignments: list[dict] = []
    for _, r in frame.iterrows():
        if not r["code"]:
            findings.append(Finding(FindingKind.missing_field, "code is empty", row=int(r["row"])))
        if r["kind"] not in kinds:
            findings.append(
                Finding(
                    FindingKind.bad_value,
                    f"kind '{r['kind']}' is not one of {sorted(kinds)}",
                    code=r["code"],
                    row=int(r["row"]),
                )
            )
        for grid in filter(None, (g.strip() for g in r.get("grids", "").split(";"))):
            if grid not in known_grids:
                findings.append(
                    Finding(
                        FindingKind.unknown_reference,
                        f"unit {r['code']} is responsible for grid {grid}, which is not a current grid",
                        code=r["code"],
                        row=int(r["row"]),
                    )
                )
            assignments.append({"unit_code": r["code"], "grid_code": grid})
    _fail_on_errors("units", path, findings)

    rows = [
        {"code": r["code"], "name": r["name"], "name_en": r.get("name_en") or None, "kind": r["kind"]}
        for _, r in frame.iterrows()
    ]
    stmt = pg_insert(Unit).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Unit.code],
            set_={"name": stmt.excluded.name, "name_en": stmt.excluded.name_en, "kind": stmt.excluded.kind},
        )
    )
    session.execute(
        delete(GridResponsibility).where(GridResponsibility.unit_code.in_([r["code"] for r in rows]))
    )
    if assignments:
        session.execute(pg_insert(GridResponsibility).values(assignments).on_conflict_do_nothing())
    bump_reference_version(session, "units")
    return ImportResult("units", len(rows), inserted=len(rows), findings=findings)


def _optional_number(row: pd.Series, column: str, findings: list[Finding]) -> float | None:
    """A blank-or-number cell; anything else is reported as a finding."""
    value = row.get(column) or ""
    try:
        return float(value) if value else None
    except ValueError:
        findings.append(
            Finding(
                FindingKind.bad_value,
                f"{column} '{value}' is not a number",
                code=row["code"],
                row=int(row["row"]),
            )
        )
        return None


def import_categories(session: Session, path: Path) -> ImportResult:
    """Load the category catalogue (部件/事件 subclasses) with departments and time limits."""
    path = Path(path)
    required = ["code", "kind", "class_code", "subclass_code", "name", "time_limit", "time_limit_unit"]
    frame, findings = _read_table(path, required)
    _fail_on_errors("categories", path, findings)
    findings += _duplicates(frame)
    units = set(session.scalars(select(Unit.code)))
    limit_units = {u.value for u in TimeLimitUnit}
    rows: list[dict] = []
    for _, r in frame.iterrows():
        where: Where = {"code": r["code"], "row": int(r["row"])}
        prefix = "C" if r["kind"] == CategoryKind.component else "E"
        if r["kind"] not in {k.value for k in CategoryKind}:
            findings.append(
                Finding(FindingKind.bad_value, f"kind '{r['kind']}' must be component or event", **where)
            )
        elif r["code"] != f"{prefix}{r['class_code']}{r['subclass_code']}" or not (
            r["class_code"].isdigit()
            and r["subclass_code"].isdigit()
            and len(r["class_code"]) == 2
            and len(r["subclass_code"]) == 2
        ):
            findings.append(
                Finding(
                    FindingKind.bad_code,
                    f"code '{r['code']}' must be {prefix} + 2-digit class + 2-digit subclass "
                    f"({prefix}{r['class_code']}{r['subclass_code']})",
                    **where,
                )
            )
        department = r.get("department") or None
        if department and department not in units:
            findings.append(
                Finding(
                    FindingKind.unknown_reference, f"department '{department}' is not a known unit", **where
                )
            )
        try:
            limit = float(r["time_limit"])
            if not limit > 0:
                raise ValueError
        except ValueError:
            findings.append(
                Finding(
                    FindingKind.bad_value,
                    f"time_limit '{r['time_limit']}' must be a positive number",
                    **where,
                )
            )
            limit = 0.0
        if r["time_limit_unit"] not in limit_units:
            findings.append(
                Finding(
                    FindingKind.bad_value,
                    f"time_limit_unit '{r['time_limit_unit']}' is not one of {sorted(limit_units)}",
                    **where,
                )
            )

        rows.append(
            {
                "code": r["code"],
                "kind": r["kind"],
                "class_code": r["class_code"],
                "subclass_code": r["subclass_code"],
                "name": r["name"],
                "name_en": r.get("name_en") or None,
                "department_code": department,
                "time_limit": limit,
                "time_limit_unit": r["time_limit_unit"],
                "duplicate_radius_m": _optional_number(r, "duplicate_radius_m", findings),
                "duplicate_window_h": _optional_number(r, "duplicate_window_h", findings),
            }
        )
    _fail_on_errors("categories", path, findings)
    stmt = pg_insert(Category).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Category.code],
            set_={c: getattr(stmt.excluded, c) for c in rows[0] if c != "code"},
        )
    )
    bump_reference_version(session, "categories")
    return ImportResult("categories", len(rows), inserted=len(rows), findings=findings)


def import_layers(session: Session, path: Path, *, source_crs: str | None = None) -> ImportResult:
    """Load responsibility layers (lines or polygons with a buffer in metres)."""
    path = Path(path)
    frame, findings = validation.read_features(path, source_crs=source_crs)
    _fail_on_errors("layers", path, findings)
    for column in ["code", "name", "kind", "unit_code", "priority"]:
        if column not in frame.columns:
            findings.append(Finding(FindingKind.missing_field, f"column '{column}' is missing"))
    _fail_on_errors("layers", path, findings)
    frame = frame.copy()
    frame["row"] = range(1, len(frame) + 1)
    findings += _duplicates(frame)
    units = set(session.scalars(select(Unit.code)))
    categories = set(session.scalars(select(Category.code)))
    rows: list[dict] = []
    for r in frame.itertuples(index=False):
        where: Where = {"code": str(r.code), "row": int(r.row)}
        geom = r.geometry
        if geom is None or geom.is_empty:
            findings.append(Finding(FindingKind.empty_geometry, "geometry is empty", **where))
            continue
        if not geom.is_valid:
            point = geom.representative_point()
            findings.append(
                Finding(
                    FindingKind.invalid_geometry,
                    shapely.is_valid_reason(geom),
                    lon=point.x,
                    lat=point.y,
                    **where,
                )
            )
        if r.unit_code not in units:
            findings.append(
                Finding(
                    FindingKind.unknown_reference, f"unit_code '{r.unit_code}' is not a known unit", **where
                )
            )
        listed = [c.strip() for c in str(getattr(r, "categories", "") or "").split(";") if c.strip()]
        for code in listed:
            if code not in categories:
                findings.append(
                    Finding(
                        FindingKind.unknown_reference, f"category '{code}' is not in the catalogue", **where
                    )
                )
        try:
            buffer_m = float(getattr(r, "buffer_m", 0) or 0)
            priority = int(r.priority)
            if buffer_m < 0:
                raise ValueError
        except (TypeError, ValueError):
            findings.append(
                Finding(
                    FindingKind.bad_value, "priority must be an integer and buffer_m a number ≥ 0", **where
                )
            )
            continue
        if geom.geom_type in ("LineString", "MultiLineString", "Point") and buffer_m <= 0:
            findings.append(
                Finding(FindingKind.bad_value, f"a {geom.geom_type} layer needs buffer_m > 0", **where)
            )
        rows.append(
            {
                "code": str(r.code),
                "name": str(r.name),
                "name_en": getattr(r, "name_en", None) or None,
                "kind": str(r.kind),
                "unit_code": str(r.unit_code),
                "priority": priority,
                "buffer_m": buffer_m,
                "categories": listed,
                "geom": from_shape(geom, srid=4326),
                "zone": _zone(geom, buffer_m),
            }
        )
    _fail_on_errors("layers", path, findings)
    stmt = pg_insert(ResponsibilityLayer).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ResponsibilityLayer.code],
            set_={
                c: getattr(stmt.excluded, c)
                for c in [
                    "name",
                    "name_en",
                    "kind",
                    "unit_code",
                    "priority",
                    "buffer_m",
                    "categories",
                    "geom",
                    "zone",
                ]
            },
        )
    )
    bump_reference_version(session, "layers")
    return ImportResult("layers", len(rows), inserted=len(rows), findings=findings)


def _zone(geom: shapely.Geometry, buffer_m: float):
    """SQL for the layer's zone: buffered on the geography, so buffer_m are true metres."""
    drawn = func.ST_GeomFromText(geom.wkt, 4326)
    if buffer_m > 0:
        drawn = func.geometry(func.ST_Buffer(func.geography(drawn), buffer_m))
    return func.ST_Multi(func.ST_CollectionExtract(drawn, 3))


# By `gridcase import` kind. Each takes (session, path); their keyword options differ.
IMPORTERS: dict[str, Callable[..., ImportResult]] = {
    "grids": import_areas,
    "units": import_units,
    "categories": import_categories,
    "layers": import_layers,
}
