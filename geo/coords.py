"""Coordinate normalisation: every coordinate entering gridcase says its system and becomes WGS-84.

Systems:
- ``wgs84``: GPS and official data (EPSG:4326).
- ``cgcs2000``: China Geodetic Coordinate System 2000 (EPSG:4490); equal to WGS-84 at the metre
  level, so it passes through unchanged.
- ``gcj02``: the obfuscated "Mars" system of Amap/Tencent/Google China, offset 100-700 m from
  WGS-84 (about 590 m in Chibi). Points outside China are not offset (standard rule).
- ``bd09``: Baidu's system, a further rotation/shift of GCJ-02 (about 1 km from WGS-84).

Scalars go through ``prcoords`` (public domain, Caijun 2014 precise iterative inverse). Arrays go
through a numpy port of the same published formulas and the same iteration; the tests check that
both agree to 1e-9 degrees. All functions take and return (lon, lat) in degrees: x first.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from enum import StrEnum
from typing import overload

import numpy as np
import prcoords
from numpy.typing import NDArray

from geo.errors import UnknownCoordinateSystem

FloatArray = NDArray[np.float64]
LonLat = tuple[float, float] | tuple[FloatArray, FloatArray]
_Forward = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# prcoords' constants, reused so the numpy port cannot drift from the scalar path.
_GCJ_A = prcoords.GCJ_A
_GCJ_EE = prcoords.GCJ_EE
_BD_DLAT = prcoords.BD_DLAT
_BD_DLON = prcoords.BD_DLON
_EPS = prcoords.PRC_EPS
_MAX_ITER = 10

# The usual "inside China" box (eviltransform/prcoords); outside it GCJ-02 equals WGS-84.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)


class CoordinateSystem(StrEnum):
    """A coordinate system gridcase accepts on input."""

    wgs84 = "wgs84"
    cgcs2000 = "cgcs2000"
    gcj02 = "gcj02"
    bd09 = "bd09"


def parse_crs(crs: CoordinateSystem | str) -> CoordinateSystem:
    """Return the CoordinateSystem named by `crs` (case-insensitive); raise if unknown."""
    if isinstance(crs, CoordinateSystem):
        return crs
    try:
        return CoordinateSystem(str(crs).strip().lower())
    except ValueError:
        known = ", ".join(c.value for c in CoordinateSystem)
        raise UnknownCoordinateSystem(
            f"unknown coordinate system {crs!r}; expected one of {known}", field="crs"
        ) from None


def in_china(lon: float, lat: float) -> bool:
    """Whether GCJ-02 applies at (lon, lat) (the usual rectangular box around China)."""
    return _CHINA_LON[0] <= lon <= _CHINA_LON[1] and _CHINA_LAT[0] <= lat <= _CHINA_LAT[1]


# --- scalar path: prcoords ------------------------------------------------------------------
# prcoords works in (lat, lon) order; the wrappers below swap to gridcase's (lon, lat).


def _gcj02_to_wgs84_scalar(lon: float, lat: float) -> tuple[float, float]:
    if not in_china(lon, lat):
        return lon, lat
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prcoords warns near the box edge; we decided above
        out = prcoords.gcj_wgs_bored((lat, lon), False)
    return float(out.lon), float(out.lat)


def _bd09_to_gcj02_scalar(lon: float, lat: float) -> tuple[float, float]:
    out = prcoords.bd_gcj_bored((lat, lon), False)
    return float(out.lon), float(out.lat)


def _wgs84_to_gcj02_scalar(lon: float, lat: float) -> tuple[float, float]:
    if not in_china(lon, lat):
        return lon, lat
    out = prcoords.wgs_gcj((lat, lon), False)
    return float(out.lon), float(out.lat)


# --- array path: numpy port of the same formulas --------------------------------------------


def _wgs_gcj_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 obfuscation applied everywhere (no China check), as prcoords.wgs_gcj."""
    x = lon - 105.0
    y = lat - 35.0
    # Distortions in metres of arc (prcoords' reading of the leaked formulas).
    dlat_m = (
        -100
        + 2 * x
        + 3 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + (
            2 * np.sin(x * 6 * np.pi)
            + 2 * np.sin(x * 2 * np.pi)
            + 2 * np.sin(y * np.pi)
            + 4 * np.sin(y / 3 * np.pi)
            + 16 * np.sin(y / 12 * np.pi)
            + 32 * np.sin(y / 30 * np.pi)
        )
        * 20
        / 3
    )
    dlon_m = (
        300
        + x
        + 2 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + (
            2 * np.sin(x * 6 * np.pi)
            + 2 * np.sin(x * 2 * np.pi)
            + 2 * np.sin(x * np.pi)
            + 4 * np.sin(x / 3 * np.pi)
            + 15 * np.sin(x / 12 * np.pi)
            + 30 * np.sin(x / 30 * np.pi)
        )
        * 20
        / 3
    )
    rad_lat = np.radians(lat)
    magic = 1 - _GCJ_EE * np.sin(rad_lat) ** 2
    lat_deg_arclen = np.radians((_GCJ_A * (1 - _GCJ_EE)) / magic**1.5)
    lon_deg_arclen = np.radians(_GCJ_A * np.cos(rad_lat) / np.sqrt(magic))
    return lon + dlon_m / lon_deg_arclen, lat + dlat_m / lat_deg_arclen


def _gcj_bd_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    r = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(np.radians(lat) * 3000)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(np.radians(lon) * 3000)
    return r * np.cos(theta) + _BD_DLON, r * np.sin(theta) + _BD_DLAT


def _bd_gcj_rough_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    r = np.sqrt(x * x + y * y) - 0.00002 * np.sin(np.radians(y) * 3000)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(np.radians(x) * 3000)
    return r * np.cos(theta), r * np.sin(theta)


def _invert_np(
    fwd: _Forward, lon0: FloatArray, lat0: FloatArray, bad_lon: FloatArray, bad_lat: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Fixed-point inverse of `fwd` from a rough guess; per point, the loop of prcoords._bored."""
    lon, lat = lon0.copy(), lat0.copy()
    active = np.ones(lon.shape, dtype=bool)
    for _ in range(_MAX_ITER):
        if not active.any():
            break
        f_lon, f_lat = fwd(lon[active], lat[active])
        d_lon = f_lon - bad_lon[active]
        d_lat = f_lat - bad_lat[active]
        lon[active] -= d_lon
        lat[active] -= d_lat
        # prcoords measures |diff| in (lat, lon) degrees and stops once it falls under PRC_EPS.
        still = np.hypot(d_lat, d_lon) > _EPS
        idx = np.flatnonzero(active)
        active[idx[~still]] = False
    return lon, lat


def _china_mask(lon: FloatArray, lat: FloatArray) -> NDArray[np.bool_]:
    return (lon >= _CHINA_LON[0]) & (lon <= _CHINA_LON[1]) & (lat >= _CHINA_LAT[0]) & (lat <= _CHINA_LAT[1])


def _gcj02_to_wgs84_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    out_lon, out_lat = lon.copy(), lat.copy()
    m = _china_mask(lon, lat)
    if m.any():
        g_lon, g_lat = lon[m], lat[m]
        f_lon, f_lat = _wgs_gcj_np(g_lon, g_lat)
        rough_lon, rough_lat = g_lon - (f_lon - g_lon), g_lat - (f_lat - g_lat)
        out_lon[m], out_lat[m] = _invert_np(_wgs_gcj_np, rough_lon, rough_lat, g_lon, g_lat)
    return out_lon, out_lat


def _bd09_to_gcj02_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    rough_lon, rough_lat = _bd_gcj_rough_np(lon, lat)
    return _invert_np(_gcj_bd_np, rough_lon, rough_lat, lon, lat)


def _wgs84_to_gcj02_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    out_lon, out_lat = lon.copy(), lat.copy()
    m = _china_mask(lon, lat)
    if m.any():
        out_lon[m], out_lat[m] = _wgs_gcj_np(lon[m], lat[m])
    return out_lon, out_lat


# --- public API -----------------------------------------------------------------------------


def _as_arrays(lon: object, lat: object) -> tuple[FloatArray, FloatArray]:
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    if lon_a.shape != lat_a.shape:
        raise ValueError(f"lon and lat shapes differ: {lon_a.shape} vs {lat_a.shape}")
    return lon_a, lat_a


def _is_scalar(lon: float | FloatArray, lat: float | FloatArray) -> bool:
    return np.ndim(lon) == 0 and np.ndim(lat) == 0


@overload
def to_wgs84(lon: float, lat: float, crs: CoordinateSystem | str) -> tuple[float, float]: ...
@overload
def to_wgs84(
    lon: FloatArray, lat: FloatArray, crs: CoordinateSystem | str
) -> tuple[FloatArray, FloatArray]: ...
def to_wgs84(lon: float | FloatArray, lat: float | FloatArray, crs: CoordinateSystem | str) -> LonLat:
    """Convert (lon, lat) in degrees from `crs` to WGS-84; floats or numpy arrays (vectorised)."""
    system = parse_crs(crs)
    if _is_scalar(lon, lat):
        x, y = float(lon), float(lat)
        if system is CoordinateSystem.gcj02:
            return _gcj02_to_wgs84_scalar(x, y)
        if system is CoordinateSystem.bd09:
            return _gcj02_to_wgs84_scalar(*_bd09_to_gcj02_scalar(x, y))
        return x, y  # wgs84, cgcs2000 (equal at metre level)
    lon_a, lat_a = _as_arrays(lon, lat)
    if system is CoordinateSystem.gcj02:
        return _gcj02_to_wgs84_np(lon_a, lat_a)
    if system is CoordinateSystem.bd09:
        return _gcj02_to_wgs84_np(*_bd09_to_gcj02_np(lon_a, lat_a))
    return lon_a.copy(), lat_a.copy()


@overload
def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...
def wgs84_to_gcj02(lon: float | FloatArray, lat: float | FloatArray) -> LonLat:
    """Obfuscate WGS-84 (lon, lat) to GCJ-02 (for tests and demo data); unchanged outside China."""
    if _is_scalar(lon, lat):
        return _wgs84_to_gcj02_scalar(float(lon), float(lat))
    return _wgs84_to_gcj02_np(*_as_arrays(lon, lat))


@overload
def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...
def wgs84_to_bd09(lon: float | FloatArray, lat: float | FloatArray) -> LonLat:
    """Obfuscate WGS-84 (lon, lat) to BD-09 via GCJ-02 (for tests and demo data)."""
    if _is_scalar(lon, lat):
        g = _wgs84_to_gcj02_scalar(float(lon), float(lat))
        out = prcoords.gcj_bd((g[1], g[0]))
        return float(out.lon), float(out.lat)
    return _gcj_bd_np(*_wgs84_to_gcj02_np(*_as_arrays(lon, lat)))
