"""Hotspots over an export of any size: cases per square cell and per grid, with dask-geopandas.

An export (geo/export.py) is read lazily, month by month (a partition per file): each partition
is projected to metres, counted per cell, and only the counts are combined, so memory holds a few
partitions and the counts, never all the cases. The same functions run eagerly on a plain
GeoDataFrame (`eager=True` paths in bench/hotspots.py) to compare with loading everything.

Cells are squares of `size_m` metres in a projected CRS (default UTM zone 49N, EPSG:32649, where
Chibi and Hubei lie; pass the zone of another city), identified by their column and row
(floor(x / size), floor(y / size)): equal-area, and the same cell for the same place every time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import dask
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely import box

from geo.cases.workflow import TERMINAL

UTM_49N = "EPSG:32649"
TERMINAL_STATES = sorted(str(s) for s in TERMINAL)
#: The columns hotspot counting reads (a parquet file is read column by column: the rest stay on disk).
COLUMNS = ["state", "category_code", "grid_code", "geometry"]


def read_cases(path: Path | str, columns: list[str] | None = None) -> dask_geopandas.GeoDataFrame:
    """The export under `path` as a lazy GeoDataFrame, one partition per month file (with `month`)."""
    return dask_geopandas.read_parquet(str(path), columns=columns or COLUMNS)


@lru_cache(maxsize=8)
def _to_metres(crs: str) -> Transformer:
    # One transformer per CRS and process: building one costs more than projecting a month of cases.
    return Transformer.from_crs("OGC:CRS84", crs, always_xy=True)


def _cell_counts(part: gpd.GeoDataFrame, size_m: float, crs: str) -> pd.DataFrame:
    """Cases per square cell in one partition: columns ix, iy, cases, unresolved."""
    part = part[part.geometry.notna()]
    points = part.geometry.to_numpy()
    # The export's points are lon, lat on WGS-84 (OGC:CRS84); always_xy keeps that order.
    x, y = _to_metres(crs).transform(shapely.get_x(points), shapely.get_y(points))
    frame = pd.DataFrame(
        {
            "ix": np.floor(x / size_m).astype("int64"),
            "iy": np.floor(y / size_m).astype("int64"),
            "cases": 1,
            "unresolved": (~part["state"].isin(TERMINAL_STATES)).to_numpy().astype("int64"),
        }
    )
    return frame.groupby(["ix", "iy"], as_index=False)[["cases", "unresolved"]].sum()


_CELL_META = pd.DataFrame(
    {
        "ix": pd.Series(dtype="int64"),
        "iy": pd.Series(dtype="int64"),
        "cases": pd.Series(dtype="int64"),
        "unresolved": pd.Series(dtype="int64"),
    }
)


def _per_cell(counts: pd.DataFrame) -> pd.DataFrame:
    return counts.groupby(["ix", "iy"], as_index=False)[["cases", "unresolved"]].sum()


def _per_grid(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reset_index().sort_values(
        ["unresolved", "cases", "grid_code"], ascending=[False, False, True], ignore_index=True
    )


def _grid_sums(cases: dask_geopandas.GeoDataFrame | gpd.GeoDataFrame) -> Any:
    frame = cases[["grid_code", "state"]]
    frame = frame.assign(cases=1, unresolved=(~frame["state"].isin(TERMINAL_STATES)).astype("int64"))
    return frame.groupby("grid_code")[["cases", "unresolved"]].sum()


def hotspot_counts(
    cases: dask_geopandas.GeoDataFrame | gpd.GeoDataFrame, size_m: float = 250.0, crs: str = UTM_49N
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per square cell of `size_m` metres and per grid code: cases and unresolved cases, in one
    pass over the partitions (each month file is read once for both); cases in no grid are left
    out of the second."""
    if isinstance(cases, gpd.GeoDataFrame):  # already in memory: one partition
        return _per_cell(_cell_counts(cases, size_m, crs)), _per_grid(_grid_sums(cases))
    cells = cases.map_partitions(_cell_counts, size_m, crs, meta=_CELL_META).groupby(["ix", "iy"]).sum()
    cell_frame, grid_frame = dask.compute(cells, _grid_sums(cases))
    return _per_cell(cell_frame.reset_index()), _per_grid(grid_frame)


def top_cells(
    counts: pd.DataFrame, n: int = 20, by: str = "unresolved", size_m: float = 250.0, crs: str = UTM_49N
) -> gpd.GeoDataFrame:
    """The `n` cells with the most `by`, as squares in WGS-84 (for a map), largest first."""
    top = counts.sort_values([by, "cases", "ix", "iy"], ascending=[False, False, True, True]).head(n)
    squares = [
        box(ix * size_m, iy * size_m, (ix + 1) * size_m, (iy + 1) * size_m)
        for ix, iy in zip(top["ix"], top["iy"], strict=True)
    ]
    cells = gpd.GeoDataFrame(top.reset_index(drop=True), geometry=squares, crs=crs).to_crs("EPSG:4326")
    cells.insert(0, "rank", range(1, len(cells) + 1))
    return cells
