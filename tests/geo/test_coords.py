"""Coordinate normalisation: round trips, the Chibi offset, scalar == vectorised, bad names."""

import numpy as np
import pytest
from pyproj import Geod

from geo.coords import CoordinateSystem, to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from geo.errors import GridcaseError, UnknownCoordinateSystem

GEOD = Geod(ellps="WGS84")
CHIBI = (113.90, 29.72)  # urban centre, WGS-84 (lon, lat)


def _metres(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240701)
    return rng.uniform(75.0, 134.0, 5_000), rng.uniform(18.0, 53.0, 5_000)


def test_chibi_gcj02_offset_is_about_590_m():
    lon, lat = wgs84_to_gcj02(*CHIBI)
    assert 550 < _metres(*CHIBI, lon, lat) < 650


@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", CoordinateSystem.wgs84, "CGCS2000"])
def test_wgs84_and_cgcs2000_pass_through(crs):
    assert to_wgs84(*CHIBI, crs) == CHIBI


def test_gcj02_round_trip_is_sub_centimetre(china_points):
    lon, lat = china_points
    back = to_wgs84(*wgs84_to_gcj02(lon, lat), "gcj02")
    assert np.max(_metres(lon, lat, *back)) < 0.01


def test_bd09_round_trip_is_sub_centimetre(china_points):
    lon, lat = china_points
    back = to_wgs84(*wgs84_to_bd09(lon, lat), CoordinateSystem.bd09)
    assert np.max(_metres(lon, lat, *back)) < 0.01


def test_bd09_is_about_a_kilometre_off_in_chibi():
    assert 700 < _metres(*CHIBI, *wgs84_to_bd09(*CHIBI)) < 1500


def test_scalar_round_trip():
    back = to_wgs84(*wgs84_to_gcj02(*CHIBI), "gcj02")
    assert _metres(*CHIBI, *back) < 0.01


def test_outside_china_is_unchanged():
    paris = (2.35, 48.85)
    assert wgs84_to_gcj02(*paris) == paris
    assert to_wgs84(*paris, "gcj02") == paris
    lon, lat = to_wgs84(np.array([2.35, 113.9]), np.array([48.85, 29.72]), "gcj02")
    assert (lon[0], lat[0]) == paris
    assert lon[1] != 113.9


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_vectorised_agrees_with_scalar_library(china_points, crs):
    lon, lat = (a[:1000] for a in china_points)
    src = wgs84_to_gcj02(lon, lat) if crs == "gcj02" else wgs84_to_bd09(lon, lat)
    vec_lon, vec_lat = to_wgs84(*src, crs)
    for i in range(1000):
        s_lon, s_lat = to_wgs84(float(src[0][i]), float(src[1][i]), crs)
        assert abs(s_lon - vec_lon[i]) < 1e-9 and abs(s_lat - vec_lat[i]) < 1e-9


def test_forward_vectorised_agrees_with_scalar(china_points):
    lon, lat = (a[:1000] for a in china_points)
    vec = wgs84_to_gcj02(lon, lat)
    for i in range(1000):
        s = wgs84_to_gcj02(float(lon[i]), float(lat[i]))
        assert abs(s[0] - vec[0][i]) < 1e-9 and abs(s[1] - vec[1][i]) < 1e-9


def test_unknown_crs_raises_with_field():
    with pytest.raises(UnknownCoordinateSystem) as exc:
        to_wgs84(*CHIBI, "epsg:3857")
    assert isinstance(exc.value, GridcaseError)
    assert exc.value.field == "crs"


def test_mismatched_shapes_rejected():
    with pytest.raises(ValueError):
        to_wgs84(np.zeros(3), np.zeros(2), "gcj02")
