"""Checks of boundary files (streets, communities, grids, compounds) before they are imported.

Pure functions: no database, no web framework. `read_areas` turns a GeoJSON / GeoPackage / Shapefile
into a normalised GeoDataFrame in WGS-84; `check_areas` finds every problem at once (codes, geometry
validity, parents, overlaps, gaps) so a planner can fix the file in one round; `format_report` prints
them. An importer refuses the file when `has_errors` is true (see `geo.errors.InvalidImport`).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from os import PathLike
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidImport

__all__ = [
    "Finding",
    "FindingKind",
    "check_areas",
    "format_report",
    "has_errors",
    "read_areas",
    "validate_file",
]


class FindingKind(StrEnum):
    """What is wrong with a feature of a boundary file."""

    invalid_geometry = "invalid_geometry"
    gap = "gap"
    overlap = "overlap"
    outside_parent = "outside_parent"
    duplicate_code = "duplicate_code"
    unknown_parent = "unknown_parent"
    bad_code = "bad_code"
    unsupported_crs = "unsupported_crs"
    missing_field = "missing_field"
    empty_geometry = "empty_geometry"
    bad_value = "bad_value"
    unknown_reference = "unknown_reference"


@dataclass(frozen=True)
class Finding:
    """One problem found in a boundary file, with where it is."""

    kind: FindingKind
    message: str
    code: str | None = None
    row: int | None = None
    lon: float | None = None
    lat: float | None = None
    area_m2: float | None = None
    repair: str | None = None
    fixable: bool = False
    blocking: bool = True  # False: reported as a note, the import goes on

    @property
    def is_error(self) -> bool:
        """A repaired or non-blocking finding is a note; everything else blocks the import."""
        return self.repair is None and self.blocking


LEVELS = ("district", "street", "community", "grid", "compound")

# GB/T 2260 county (6) + street (3) + community (3) + grid serial (3); a compound (小区) hangs off its
# community as community code + 'C' + 3-digit serial.
CODE_PATTERNS: dict[str, re.Pattern[str]] = {
    "district": re.compile(r"\d{6}"),
    "street": re.compile(r"\d{9}"),
    "community": re.compile(r"\d{12}"),
    "grid": re.compile(r"\d{15}"),
    "compound": re.compile(r"\d{12}C\d{3}"),
}
CODE_SHAPES = {
    "district": "6 digits",
    "street": "9 digits",
    "community": "12 digits",
    "grid": "15 digits",
    "compound": "12-digit community code + 'C' + 3 digits",
}
PARENT_LEVEL = {
    "street": "district",
    "community": "street",
    "grid": "community",
    "compound": "community",
}
PARENT_CODE_LENGTH = {"street": 6, "community": 9, "grid": 12, "compound": 12}
# Which children must tile a parent without gaps (无缝拼接); compounds need not cover their community.
# Streets need not cover their district: a deployment often grids only part of a county (the urban
# core), and towns (镇) outside it are not loaded.
TILING_CHILD = {"street": "community", "community": "grid"}
# Levels whose members must not overlap each other; compounds are drawn loosely and are excluded.
NON_OVERLAPPING = ("district", "street", "community", "grid")

PLURAL = {"street": "streets", "community": "communities", "grid": "grids"}

REQUIRED_COLUMNS = ("level", "code", "name")
# Shapefile field names are cut to 10 characters, so `parent_code` arrives as `parent_cod`.
COLUMN_ALIASES = {"parent_cod": "parent_code", "parentcode": "parent_code"}

WGS84 = CRS.from_epsg(4326)
# Accepted as lon/lat without transformation: WGS-84, CGCS2000 (equal to WGS-84 at metre level) and
# OGC:CRS84 (what GeoJSON files declare). Axis order is lon/lat: pyogrio reads in GIS order.
LONLAT_CRSES = (WGS84, CRS.from_epsg(4490), CRS.from_user_input("OGC:CRS84"))

# frame.attrs key: the CRS a transformed file was drawn in. Edges straight there are curves in lon/lat,
# so a vertex lying on a neighbour's edge in the source CRS is off it by centimetres after transforming;
# over a long boundary that adds up to square metres of false gaps and overlaps.
SOURCE_CRS = "gridcase_source_crs"

_REASON_LOCATION = re.compile(r"\[\s*([-+0-9.eE]+|nan)\s+([-+0-9.eE]+|nan)[^\]]*\]")


# ----------------------------------------------------------------------------------------- reading


def read_areas(
    path: str | PathLike[str], *, layer: str | int | None = None, source_crs: str | None = None
) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """Read a boundary file into a normalised WGS-84 frame and report file-level problems."""
    frame, crs_findings = read_features(path, layer=layer, source_crs=source_crs)
    findings = crs_findings + _schema_findings(frame)
    frame = _normalise(frame)
    findings += _feature_findings(frame)
    return frame, findings


def read_features(
    path: str | PathLike[str], *, layer: str | int | None = None, source_crs: str | None = None
) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """Read any feature file (e.g. responsibility layers) into WGS-84 under the same CRS rule."""
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as error:
        raise InvalidImport(f"cannot read {path}: {error}", field="file") from error
    frame = frame.rename(columns=_column_name)
    return _to_wgs84(frame, source_crs)


def _column_name(name: str) -> str:
    """Map a file's column name to ours: case and spaces do not matter, shapefile cuts are undone."""
    if name == "geometry":
        return name
    clean = str(name).strip().lower()
    return COLUMN_ALIASES.get(clean, clean)


def _to_wgs84(frame: gpd.GeoDataFrame, source_crs: str | None) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """Apply the CRS rule: lon/lat is accepted, anything else only with an agreeing --source-crs."""
    declared = frame.crs
    requested: CRS | None = None
    if source_crs is not None:
        try:
            requested = CRS.from_user_input(source_crs)
        except CRSError:
            msg = f"--source-crs {source_crs!r} is not a coordinate system pyproj knows"
            return frame, [Finding(FindingKind.unsupported_crs, msg)]

    if declared is None:
        if requested is not None:
            return _reprojected(frame.set_crs(requested)), []
        if _looks_lonlat(frame):
            # GeoJSON without a `crs` member is WGS-84 by RFC 7946; other formats we give the benefit
            # of the doubt only when every coordinate fits lon/lat.
            return frame.set_crs(WGS84), []
        minx, miny, maxx, maxy = (round(float(v), 1) for v in frame.total_bounds)
        msg = (
            f"no CRS declared and coordinates ({minx}, {miny}) – ({maxx}, {maxy}) are not lon/lat; "
            "pass --source-crs EPSG:xxxx to transform"
        )
        return frame, [Finding(FindingKind.unsupported_crs, msg)]

    name = _crs_name(declared)
    if requested is not None:
        if not _same_crs(requested, declared):
            msg = f"declared {name} but --source-crs {_crs_name(requested)} was given; they must agree"
            return frame, [Finding(FindingKind.unsupported_crs, msg)]
        return _reprojected(frame), []
    if _is_lonlat(declared):
        # CGCS2000 and WGS-84 differ by centimetres here, far below any boundary's precision.
        return frame.set_crs(WGS84, allow_override=True), []
    msg = f"declared {name}; pass --source-crs {name} to transform"
    return frame, [Finding(FindingKind.unsupported_crs, msg)]


def _reprojected(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The frame in WGS-84, remembering the CRS it was drawn in (the overlays run there)."""
    out = frame.to_crs(WGS84)
    out.attrs[SOURCE_CRS] = frame.crs.to_wkt()
    return out


def _crs_name(crs: CRS) -> str:
    """Name a CRS the way a user would type it."""
    authority = crs.to_authority(min_confidence=90)
    return f"{authority[0]}:{authority[1]}" if authority else crs.name


def _is_lonlat(crs: CRS) -> bool:
    """True when the CRS is WGS-84 or CGCS2000 lon/lat."""
    return any(crs.equals(known, ignore_axis_order=True) for known in LONLAT_CRSES)


def _same_crs(a: CRS, b: CRS) -> bool:
    """True when two CRSes are the same, lon/lat variants counting as one."""
    return a.equals(b, ignore_axis_order=True) or (_is_lonlat(a) and _is_lonlat(b))


def _looks_lonlat(frame: gpd.GeoDataFrame) -> bool:
    """True when every coordinate fits longitude/latitude ranges."""
    present = frame.geometry[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if present.empty:
        return True
    minx, miny, maxx, maxy = present.total_bounds
    return bool(-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90)


def _schema_findings(frame: pd.DataFrame) -> list[Finding]:
    """Report required columns that the file lacks (one finding per column)."""
    findings = [
        Finding(FindingKind.missing_field, f"the file has no `{column}` column")
        for column in REQUIRED_COLUMNS
        if column not in frame.columns
    ]
    if not _has_geometry(frame):
        findings.append(Finding(FindingKind.missing_field, "the file has no geometry column"))
    return findings


def _has_geometry(frame: pd.DataFrame) -> bool:
    """True when the frame has an active geometry column."""
    name = getattr(frame, "active_geometry_name", None)
    return name is not None and name in frame.columns


def _text(value: Any) -> str | None:
    """A code or name as clean text: blanks are None, 4.21281e5 read from a number is '421281'."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def infer_parent_code(level: str | None, code: str | None) -> str | None:
    """The parent code implied by a code: grid → first 12, community → 9, street → 6, compound → 12."""
    if level not in PARENT_CODE_LENGTH or code is None or not CODE_PATTERNS[level].fullmatch(code):
        return None
    return code[: PARENT_CODE_LENGTH[level]]


def _multipolygon(geometry: BaseGeometry | None) -> BaseGeometry | None:
    """Promote a Polygon to a MultiPolygon and drop Z; leave other types for the checks to report."""
    if geometry is None or geometry.is_empty:
        return geometry
    if shapely.has_z(geometry):
        # Heights mean nothing for a boundary and the PostGIS column is 2D.
        geometry = shapely.force_2d(geometry)
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    return geometry


def _normalise(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """Clean text columns, infer blank parent codes, promote polygons, number rows; idempotent."""
    out = gpd.GeoDataFrame(frame.copy())
    out.attrs = dict(frame.attrs)
    if "row" not in out.columns:
        out["row"] = np.arange(1, len(out) + 1)
    # Build object Series from lists: Series.map would turn None back into NaN in float columns.
    for column in ("code", "name", "parent_code"):
        if column in out.columns:
            out[column] = pd.Series([_text(v) for v in out[column]], index=out.index, dtype=object)
    if "level" in out.columns:
        levels = [(_text(v) or "").lower() or None for v in out["level"]]
        out["level"] = pd.Series(levels, index=out.index, dtype=object)
    if "level" in out.columns and "code" in out.columns:
        given = out["parent_code"] if "parent_code" in out.columns else pd.Series(None, out.index)
        inferred = [
            parent if parent is not None else infer_parent_code(level, code)
            for level, code, parent in zip(out["level"], out["code"], given, strict=True)
        ]
        out["parent_code"] = pd.Series(inferred, index=out.index, dtype=object)
    if _has_geometry(out):
        out[out.geometry.name] = gpd.GeoSeries(
            [_multipolygon(g) for g in out.geometry], index=out.index, crs=out.crs
        )
    return out


def _feature_findings(frame: gpd.GeoDataFrame) -> list[Finding]:
    """Report blank required values, empty geometries and geometries that are not polygons."""
    findings: list[Finding] = []
    n = len(frame)
    blank = pd.Series([None] * n, index=frame.index, dtype=object)
    columns = {c: frame[c] if c in frame.columns else blank for c in (*REQUIRED_COLUMNS, "row")}
    geometries = frame.geometry if _has_geometry(frame) else None
    for k, (level, code, name, row) in enumerate(zip(*columns.values(), strict=True)):
        row = int(row)
        for column, value in zip(REQUIRED_COLUMNS, (level, code, name), strict=True):
            if column in frame.columns and value is None:
                msg = f"feature {row} has no {column}"
                findings.append(Finding(FindingKind.missing_field, msg, code=code, row=row))
        if geometries is None:
            continue
        geometry = geometries.iat[k]
        label = f"{level or 'feature'} {code or f'in row {row}'}"
        if geometry is None or geometry.is_empty:
            findings.append(
                Finding(FindingKind.empty_geometry, f"{label} has no geometry", code=code, row=row)
            )
        elif not isinstance(geometry, MultiPolygon):
            msg = f"{label} is a {geometry.geom_type}, not a polygon"
            findings.append(Finding(FindingKind.invalid_geometry, msg, code=code, row=row))
    return findings


# ---------------------------------------------------------------------------------------- checking


def check_areas(
    areas: gpd.GeoDataFrame,
    *,
    existing: gpd.GeoDataFrame | None = None,
    tolerance_m2: float = 1.0,
    repair: bool = False,
) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """Check every feature (codes, validity, parents, overlaps, gaps); return the frame and all findings."""
    findings = _schema_findings(areas)
    if not _has_geometry(areas) or "level" not in areas.columns or "code" not in areas.columns:
        return areas, findings  # without level, code or geometry nothing further can be checked
    frame = _normalise(areas)
    if frame.crs is None:
        frame = frame.set_crs(WGS84)  # the read_areas contract: no CRS here means lon/lat
    findings += _feature_findings(frame)
    findings += _code_findings(frame)
    frame, geometry_findings = _validity_findings(frame, repair)
    findings += geometry_findings

    context = _Context(frame, existing)
    findings += context.parent_findings()
    findings += context.outside_findings(tolerance_m2)
    findings += context.overlap_findings(tolerance_m2)
    findings += context.gap_findings(tolerance_m2)
    checked = frame.drop(columns="_sound")
    checked.attrs = dict(areas.attrs)
    return checked, findings


def validate_file(
    path: str | PathLike[str],
    *,
    layer: str | int | None = None,
    source_crs: str | None = None,
    existing: gpd.GeoDataFrame | None = None,
    tolerance_m2: float = 1.0,
    repair: bool = False,
) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """Read and check a boundary file; findings both steps report are given once."""
    frame, findings = read_areas(path, layer=layer, source_crs=source_crs)
    if any(f.kind is FindingKind.unsupported_crs for f in findings):
        return frame, findings  # areas and overlaps in a misread CRS would only add noise
    frame, more = check_areas(frame, existing=existing, tolerance_m2=tolerance_m2, repair=repair)
    return frame, list(dict.fromkeys(findings + more))


def _code_findings(frame: gpd.GeoDataFrame) -> list[Finding]:
    """Report malformed codes, codes not under their parent's code, and codes used twice."""
    findings: list[Finding] = []
    where = _FeaturePoints(frame)
    for k, (level, code, parent, row) in enumerate(
        zip(frame["level"], frame["code"], frame["parent_code"], frame["row"], strict=True)
    ):
        if level is None or code is None:
            continue  # reported as missing_field
        if level not in CODE_PATTERNS:
            msg = f"feature {row} has level {level!r}, not one of {', '.join(LEVELS)}"
        elif not CODE_PATTERNS[level].fullmatch(code):
            msg = f"{level} code {code!r} is not {CODE_SHAPES[level]}"
        elif parent is not None and not code.startswith(parent):
            msg = f"{level} code {code} does not start with its parent's code {parent}"
        else:
            continue
        lon, lat = where(k)
        findings.append(Finding(FindingKind.bad_code, msg, code=code, row=int(row), lon=lon, lat=lat))
    codes = frame["code"]
    repeated = np.flatnonzero((codes.notna() & codes.duplicated(keep=False)).to_numpy())
    rows_of: dict[str, list[int]] = defaultdict(list)
    for position in repeated:
        rows_of[codes.iat[position]].append(int(frame["row"].iat[position]))
    for position in repeated:
        code, row = codes.iat[position], int(frame["row"].iat[position])
        rest = ", ".join(str(r) for r in rows_of[code] if r != row)
        msg = f"code {code} in row {row} is also used in row {rest}"
        lon, lat = where(int(position))
        findings.append(Finding(FindingKind.duplicate_code, msg, code=code, row=row, lon=lon, lat=lat))
    return findings


class _FeaturePoints:
    """Lon/lat of a point on a feature of the frame, for findings about the whole feature."""

    def __init__(self, frame: gpd.GeoDataFrame):
        self.geometries = frame.geometry.to_numpy()
        self.to_wgs84 = Transformer.from_crs(frame.crs or WGS84, WGS84, always_xy=True)

    def __call__(self, k: int) -> tuple[float | None, float | None]:
        """Point on surface of feature k (position, not row), or None when it has no geometry."""
        geometry = self.geometries[k]
        if geometry is None or geometry.is_empty:
            return None, None
        try:
            point = shapely.point_on_surface(geometry)
        except shapely.errors.GEOSException:  # some invalid geometries
            point = shapely.centroid(geometry)
        lon, lat = self.to_wgs84.transform(point.x, point.y)
        return round(float(lon), 7), round(float(lat), 7)


def _validity_findings(frame: gpd.GeoDataFrame, repair: bool) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """Report invalid geometries (OGC rules) and, when asked, repair them with make_valid.

    Adds a `_sound` column: the geometry the spatial checks use (repaired even when the caller did not
    ask for repair, because GEOS overlays on invalid input fail or give nonsense).
    """
    frame = frame.copy()
    geometries = frame.geometry.to_numpy()
    polygonal = np.array([isinstance(g, MultiPolygon) and not g.is_empty for g in geometries])
    sound = geometries.copy()
    sound[~polygonal] = None
    findings: list[Finding] = []
    candidates = np.flatnonzero(polygonal)
    reasons = shapely.is_valid_reason(geometries[candidates]) if len(candidates) else []
    to_metric: Transformer | None = None
    to_wgs84 = Transformer.from_crs(frame.crs or WGS84, WGS84, always_xy=True)
    for i, reason in zip(candidates, reasons, strict=True):
        if reason == "Valid Geometry":
            continue
        original = geometries[i]
        fixed = _polygonal_part(shapely.make_valid(original))
        level, code, row = frame["level"].iat[i], frame["code"].iat[i], int(frame["row"].iat[i])
        lon, lat = _reason_location(reason, original, to_wgs84)
        where = f" at {lon:.5f}, {lat:.5f}" if lon is not None and lat is not None else ""
        kind = reason.split("[")[0].strip()
        message = f"{level} {code} is invalid: {kind}{where}"
        fixable = fixed is not None
        repaired: str | None = None
        if fixed is not None:
            sound[i] = fixed
            if repair:
                to_metric = to_metric or _metric_transformer(frame)
                before = _transform(to_metric, original).area
                after = _transform(to_metric, fixed).area
                dropped = _non_polygonal_count(shapely.make_valid(original))
                repaired = (
                    f"make_valid: {kind.lower()} resolved into {len(fixed.geoms)} part(s)"
                    + (f", {dropped} non-polygonal part(s) dropped" if dropped else "")
                    + f", area {before:.1f} m² → {after:.1f} m²"
                )
                geometries[i] = fixed
        findings.append(
            Finding(
                FindingKind.invalid_geometry,
                message,
                code=code,
                row=row,
                lon=lon,
                lat=lat,
                repair=repaired,
                fixable=fixable,
            )
        )
    frame[frame.geometry.name] = gpd.GeoSeries(geometries, index=frame.index, crs=frame.crs)
    frame["_sound"] = gpd.GeoSeries(sound, index=frame.index, crs=frame.crs)
    return frame, findings


def _polygonal_part(geometry: BaseGeometry) -> MultiPolygon | None:
    """The polygonal parts of a make_valid result as one MultiPolygon (lines and points collapse away)."""
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon | MultiPolygon)]
    polygons = [q for p in parts for q in (p.geoms if isinstance(p, MultiPolygon) else [p])]
    polygons = [p for p in polygons if not p.is_empty]
    return MultiPolygon(polygons) if polygons else None


def _non_polygonal_count(geometry: BaseGeometry) -> int:
    """How many parts of a make_valid result are lines or points."""
    return sum(not isinstance(p, Polygon | MultiPolygon) for p in shapely.get_parts(geometry))


def _reason_location(
    reason: str, geometry: BaseGeometry, to_wgs84: Transformer
) -> tuple[float | None, float | None]:
    """Where GEOS says the geometry breaks, else a point of it; in WGS-84 lon/lat."""
    match = _REASON_LOCATION.search(reason)
    if match and "nan" not in match.groups():
        x, y = float(match.group(1)), float(match.group(2))
    else:
        try:
            point = geometry.representative_point()
        except shapely.errors.GEOSException:
            return None, None
        x, y = point.x, point.y
    lon, lat = to_wgs84.transform(x, y)
    return round(float(lon), 7), round(float(lat), 7)


def _metric_crs(frame: gpd.GeoDataFrame) -> CRS:
    """The UTM zone at the centre of the frame, to measure areas in m² (EPSG:32649 for Hubei)."""
    bounds = frame.total_bounds
    if not np.all(np.isfinite(bounds)):
        return CRS.from_epsg(32649)
    to_lonlat = Transformer.from_crs(frame.crs or WGS84, WGS84, always_xy=True)
    west, south, east, north = to_lonlat.transform_bounds(*bounds)
    lon, lat = (west + east) / 2, (south + north) / 2
    zone = min(int((lon + 180) // 6) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _metric_transformer(frame: gpd.GeoDataFrame) -> Transformer:
    """Transformer from the frame's CRS to its local UTM zone, x/y in lon/lat order."""
    return Transformer.from_crs(frame.crs or WGS84, _metric_crs(frame), always_xy=True)


def _transform(transformer: Transformer, geometry: BaseGeometry) -> BaseGeometry:
    """Apply a pyproj transformer to a shapely geometry."""
    return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(*xy.T)))


def _largest_polygon(geometry: BaseGeometry) -> BaseGeometry | None:
    """The largest polygon of a (possibly mixed) overlay result, to place a finding on it."""
    polygons = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon) and not p.is_empty]
    return max(polygons, key=lambda p: p.area) if polygons else None


class _Context:
    """File features plus the database features they meet, indexed for the spatial checks."""

    def __init__(self, frame: gpd.GeoDataFrame, existing: gpd.GeoDataFrame | None):
        file_part = pd.DataFrame(
            {
                "level": frame["level"].to_numpy(),
                "code": frame["code"].to_numpy(),
                "parent": frame["parent_code"].to_numpy(),
                "row": frame["row"].to_numpy(),
                "in_file": True,
            }
        )
        # Overlays run in the CRS the file was drawn in (lon/lat for most files), where shared
        # vertices make the tiling exact; projecting first would bend straight edges and invent
        # slivers along every long boundary. Only the resulting pieces are projected, to measure them.
        self.crs = CRS.from_user_input(frame.attrs.get(SOURCE_CRS) or frame.crs)
        geometries = [frame["_sound"].to_crs(self.crs).to_numpy()]
        parts = [file_part]
        if existing is not None and len(existing):
            # The file supersedes database features with the same code (it is their new boundary).
            known = set(frame["code"].dropna())
            other = _normalise(existing)
            other = other[~other["code"].isin(known)]
            if other.crs is None:
                other = other.set_crs(WGS84)
            parts.append(
                pd.DataFrame(
                    {
                        "level": other["level"].to_numpy(),
                        "code": other["code"].to_numpy(),
                        "parent": other["parent_code"].to_numpy(),
                        "row": None,
                        "in_file": False,
                    }
                )
            )
            sound = [g if isinstance(g, MultiPolygon) and g.is_valid else None for g in other.geometry]
            geometries.append(gpd.GeoSeries(sound, crs=other.crs).to_crs(self.crs).to_numpy())
        table = pd.concat(parts, ignore_index=True)
        # Plain arrays: per-feature pandas indexing would dominate the run time at 10,000 grids.
        self.level = table["level"].to_numpy(dtype=object)
        self.code = table["code"].to_numpy(dtype=object)
        self.parent = table["parent"].to_numpy(dtype=object)
        self.rows = table["row"].to_numpy(dtype=object)
        self.in_file = table["in_file"].to_numpy(dtype=bool)
        self.geometry = np.concatenate(geometries)
        self.present = np.array([g is not None and not g.is_empty for g in self.geometry])
        # Areas in m² in the local UTM zone (EPSG:32649, UTM 49N, around Chibi at 113.9° E): the
        # scale error there is below 0.1%, far finer than any tolerance.
        self.metric = _metric_crs(frame)
        self.to_wgs84 = Transformer.from_crs(self.crs, WGS84, always_xy=True)
        self.index: dict[str, int] = {}
        # Filled backwards so the first file occurrence of a duplicated code is the one looked up.
        for i in range(len(self.code) - 1, -1, -1):
            if self.code[i] is not None:
                self.index[self.code[i]] = i
        self.levels_present = set(self.level) - {None}

    def _where(self, geometry: BaseGeometry | None) -> tuple[float | None, float | None]:
        """A representative point of a geometry, in WGS-84 lon/lat."""
        if geometry is None or geometry.is_empty:
            return None, None
        point = geometry.representative_point()
        lon, lat = self.to_wgs84.transform(point.x, point.y)
        return round(float(lon), 7), round(float(lat), 7)

    def _areas_m2(self, geometries: np.ndarray) -> np.ndarray:
        """Areas in m² of overlay results; empty results are not projected at all."""
        areas = np.zeros(len(geometries))
        nonempty = ~shapely.is_empty(geometries) & ~shapely.is_missing(geometries)
        if nonempty.any():
            projected = gpd.GeoSeries(geometries[nonempty], crs=self.crs).to_crs(self.metric)
            areas[nonempty] = projected.area.to_numpy()
        return areas

    def _row(self, i: int) -> int | None:
        """The file row of entry i, None for a database feature."""
        row = self.rows[i]
        return None if row is None or pd.isna(row) else int(row)

    def _label(self, i: int) -> str:
        """'grid 421281001002003' or 'existing grid ...' for database features."""
        prefix = "" if self.in_file[i] else "existing "
        return f"{prefix}{self.level[i]} {self.code[i]}"

    def _parent_of(self) -> list[tuple[int, int]]:
        """(child, parent) index pairs where the parent is known and at the expected level."""
        pairs = []
        for i, (level, parent) in enumerate(zip(self.level, self.parent, strict=True)):
            j = self.index.get(parent) if parent is not None else None
            if j is not None and self.level[j] == PARENT_LEVEL.get(level):
                pairs.append((i, j))
        return pairs

    def parent_findings(self) -> list[Finding]:
        """Report file features whose parent is neither in the file nor in the database."""
        findings = []
        for i in np.flatnonzero(self.in_file):
            level, code, parent = self.level[i], self.code[i], self.parent[i]
            expected = PARENT_LEVEL.get(level)
            if parent is None or expected is None:
                continue
            j = self.index.get(parent)
            if j is None:
                if expected == "district" and "district" not in self.levels_present:
                    # Imports usually start at street level; the county code is then only a prefix.
                    continue
                msg = f"{level} {code}: parent {expected} {parent} is neither in the file nor imported"
            elif self.level[j] != expected:
                msg = f"{level} {code}: parent {parent} is a {self.level[j]}, not a {expected}"
            else:
                continue
            lon, lat = self._where(self.geometry[i] if self.present[i] else None)
            findings.append(
                Finding(
                    FindingKind.unknown_parent,
                    msg,
                    code=code,
                    row=self._row(int(i)),
                    lon=lon,
                    lat=lat,
                )
            )
        return findings

    def _located(
        self,
        kind: FindingKind,
        msg: str,
        i: int,
        lon: float | None,
        lat: float | None,
        area: float,
        blocking: bool = True,
    ) -> Finding:
        """A finding about feature i, at a place, with an area in m²."""
        return Finding(
            kind,
            msg,
            code=self.code[i],
            row=self._row(i),
            lon=lon,
            lat=lat,
            area_m2=round(float(area), 2),
            blocking=blocking,
        )

    def outside_findings(self, tolerance_m2: float) -> list[Finding]:
        """Report features reaching outside their parent by more than the tolerance."""
        in_file = self.in_file
        pairs = [
            (i, j)
            for i, j in self._parent_of()
            if (in_file[i] or in_file[j]) and self.present[i] and self.present[j]
        ]
        if not pairs:
            return []
        child, parent = np.array(pairs).T
        outside = shapely.difference(self.geometry[child], self.geometry[parent])
        areas = self._areas_m2(outside)
        findings = []
        for i, j, part, area in zip(child, parent, outside, areas, strict=True):
            if area <= tolerance_m2:
                continue
            lon, lat = self._where(_largest_polygon(part))
            msg = f"{self._label(i)} extends {area:.1f} m² outside its {self._label(j)}"
            # A community or street may serve land across its parent's line (插花地: a Wuchang
            # community straddles three districts), so that is a note; a grid or compound
            # outside its community is an error.
            crossing_allowed = self.level[i] in ("community", "street")
            if crossing_allowed:
                msg += " (allowed: served by its own community across the line, 插花地)"
            findings.append(
                self._located(
                    FindingKind.outside_parent, msg, i, lon, lat, area, blocking=not crossing_allowed
                )
            )
        return findings

    def overlap_findings(self, tolerance_m2: float) -> list[Finding]:
        """Report same-level features overlapping by more than the tolerance (STRtree, not all pairs)."""
        level = self.level
        in_file = self.in_file
        candidates = np.flatnonzero(self.present & np.isin(level, NON_OVERLAPPING))
        if len(candidates) < 2:
            return []
        geometries = self.geometry[candidates]
        tree = shapely.STRtree(geometries)
        a, b = tree.query(geometries, predicate="intersects")
        a, b = candidates[a], candidates[b]
        # Each pair once, same level only (a grid lies inside its community by design), and at least
        # one side from the file: overlaps among database features are not this file's business.
        keep = (a < b) & (level[a] == level[b]) & (in_file[a] | in_file[b])
        a, b = a[keep], b[keep]
        if not len(a):
            return []
        shared = shapely.intersection(self.geometry[a], self.geometry[b])
        areas = self._areas_m2(shared)
        findings = []
        for i, j, part, area in zip(a, b, shared, areas, strict=True):
            if area <= tolerance_m2:
                continue
            if not in_file[i]:
                i, j = j, i  # name the file feature first
            lon, lat = self._where(_largest_polygon(part))
            siblings = self.parent[i] == self.parent[j]
            msg = (
                f"{self._label(i)} overlaps {'' if siblings else 'non-sibling '}"
                f"{self._label(j)} by {area:.1f} m²"
            )
            findings.append(self._located(FindingKind.overlap, msg, i, lon, lat, area))
        return findings

    def gap_findings(self, tolerance_m2: float) -> list[Finding]:
        """Report each part of a parent its children do not cover, when the children are known."""
        in_file = self.in_file
        children: dict[int, list[int]] = defaultdict(list)
        for i, j in self._parent_of():
            if self.present[i] and TILING_CHILD.get(self.level[j]) == self.level[i]:
                children[j].append(i)
        findings = []
        for j, kids in children.items():
            if not self.present[j] or not (in_file[j] or in_file[kids].any()):
                continue
            # union_all, not coverage_union: the children may overlap (reported separately) and
            # coverage_union assumes they do not.
            covered = shapely.union_all(self.geometry[kids])
            uncovered = shapely.difference(self.geometry[j], covered)
            child_level = TILING_CHILD[self.level[j]]
            pieces = shapely.get_parts(uncovered)
            pieces = pieces[shapely.get_type_id(pieces) == shapely.GeometryType.POLYGON]
            for part, area in zip(pieces, self._areas_m2(pieces), strict=True):
                if area <= tolerance_m2:
                    continue
                lon, lat = self._where(part)
                msg = f"{self._label(j)}: {area:.1f} m² not covered by its {PLURAL[child_level]}"
                findings.append(self._located(FindingKind.gap, msg, j, lon, lat, area))
        return findings


# --------------------------------------------------------------------------------------- reporting


def has_errors(findings: Iterable[Finding]) -> bool:
    """True when any finding blocks the import (everything except repairs already made)."""
    return any(f.is_error for f in findings)


def format_report(findings: list[Finding]) -> str:
    """A plain-text table of findings, grouped by kind, with counts."""
    unique = list(dict.fromkeys(findings))
    if not unique:
        return "No findings: the file can be imported."
    errors = sum(f.is_error for f in unique)
    lines = [f"{len(unique)} finding(s), {errors} blocking the import"]
    headers = ("row", "code", "lon", "lat", "m²", "problem")
    for kind in FindingKind:
        group = [f for f in unique if f.kind is kind]
        if not group:
            continue
        group.sort(key=lambda f: (f.row is None, f.row or 0, f.code or ""))
        table = [
            (
                "" if f.row is None else str(f.row),
                f.code or "",
                "" if f.lon is None else f"{f.lon:.6f}",
                "" if f.lat is None else f"{f.lat:.6f}",
                "" if f.area_m2 is None else f"{f.area_m2:.1f}",
                f.message
                + (f" [repaired: {f.repair}]" if f.repair else "")
                + (" [fixable with --repair]" if f.fixable and not f.repair else ""),
            )
            for f in group
        ]
        widths = [max(len(h), *(len(r[k]) for r in table)) for k, h in enumerate(headers)]
        widths[-1] = 0  # the message column is last and not padded
        lines += ["", f"{kind.value} ({len(group)})"]
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for r in table:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)
