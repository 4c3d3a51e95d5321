"""Hotspots over 10,000,000 cases in GeoParquet: dask-geopandas partition by partition vs geopandas
loading everything, time and peak memory of each, in separate processes, in the same run.

Run: `.venv/bin/python bench/hotspots.py [--cases 10000000] [--out DIR] [--keep] [--no-eager]`

1. Generates the cases as an export would write them (geo/export.py's `MonthlyGeoParquet`: one
   file per month, hive style `month=YYYY-MM`, WKB points with the GeoParquet metadata), month
   by month, deterministic (numpy's generator seeded with 421281), like bench/stats.py spread
   over ten years (2016–2025, 120 months): 70% of the cases uniform over a 30 km × 24 km city
   around Chibi, 30% around 400 hotspots (Gaussian, σ = 120 m); a grid code from a 100 × 100
   lattice (10,000 grids); 94% closed or rejected, the rest open in one of five states.
2. In a fresh process, `geo.hotspots` as the notebook runs it: `read_cases` (dask-geopandas, lazy,
   one partition per month), `hotspot_counts` (per 250 m square in UTM 49N and per grid, in one
   pass), `top_cells`.
3. In another fresh process, the obvious way: `geopandas.read_parquet` of the whole folder, then
   the same two counts on the one frame in memory (skipped with --no-eager, or when the machine
   has less than 12 GiB available).
Each process prints its wall time and its peak resident memory (ru_maxrss); the two top-20 tables
must be equal, and the ratios are printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import Transformer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from geo.export import MonthlyGeoParquet  # noqa: E402

CENTRE = (113.90, 29.72)  # Chibi's urban core, WGS-84
EXTENT_M = (30_000.0, 24_000.0)
OPEN_STATES = ["reported", "verified", "filed", "dispatched", "handled"]
SEED = 421281


def generate(out: Path, cases: int) -> float:
    """Write `cases` synthetic cases under `out` month by month; return the seconds it took."""
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32649", always_xy=True)
    to_wgs = Transformer.from_crs("EPSG:32649", "EPSG:4326", always_xy=True)
    cx, cy = to_utm.transform(*CENTRE)
    x0, y0 = cx - EXTENT_M[0] / 2, cy - EXTENT_M[1] / 2
    hotspots = np.column_stack([x0 + rng.uniform(0, EXTENT_M[0], 400), y0 + rng.uniform(0, EXTENT_M[1], 400)])
    months = pd.period_range("2016-01", "2025-12", freq="M")
    per_month = np.full(len(months), cases // len(months))
    per_month[: cases % len(months)] += 1
    writer = MonthlyGeoParquet(out)
    next_id = 1
    for month, n in zip(months, per_month, strict=True):
        clustered = rng.random(n) < 0.3
        x = x0 + rng.uniform(0, EXTENT_M[0], n)
        y = y0 + rng.uniform(0, EXTENT_M[1], n)
        which = rng.integers(0, len(hotspots), n)
        x[clustered] = hotspots[which[clustered], 0] + rng.normal(0, 120, clustered.sum())
        y[clustered] = hotspots[which[clustered], 1] + rng.normal(0, 120, clustered.sum())
        lon, lat = to_wgs.transform(x, y)
        gx = np.clip(((x - x0) / EXTENT_M[0] * 100).astype(int), 0, 99)
        gy = np.clip(((y - y0) / EXTENT_M[1] * 100).astype(int), 0, 99)
        grid = np.char.add("4212810", np.char.zfill((gx * 100 + gy).astype(str), 8))
        community = np.char.add("4212810", np.char.zfill(((gx // 10) * 10 + gy // 10).astype(str), 5))
        start = month.start_time.tz_localize("Asia/Shanghai").tz_convert("UTC")
        seconds = np.sort(rng.uniform(0, month.days_in_month * 86400, n))
        reported = (start + pd.to_timedelta(seconds, unit="s")).floor("us")
        category = rng.integers(1, 40, n)
        fate = rng.random(n)
        state = np.where(fate < 0.925, "closed", np.where(fate < 0.94, "rejected", "open")).astype(object)
        still_open = state == "open"
        state[still_open] = rng.choice(OPEN_STATES, still_open.sum())
        closed = pd.Series(reported + pd.to_timedelta(rng.uniform(1, 120, n), unit="h")).dt.floor("us")
        closed[state != "closed"] = pd.NaT
        table = pa.table(
            {
                "month": pa.array([str(month)] * n, pa.string()),
                "case_id": pa.array(np.arange(next_id, next_id + n), pa.int64()),
                "category_code": pa.array(np.char.add("E01", np.char.zfill(category.astype(str), 2))),
                "channel": pa.array(["inspector"] * n, pa.string()),
                "state": pa.array(state.astype(str)),
                "reported_at": pa.array(reported),
                "dispatched_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
                "deadline_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
                "closed_at": pa.array(closed),
                "grid_code": pa.array(grid),
                "community_code": pa.array(community),
                "street_code": pa.nulls(n, pa.string()),
                "district_code": pa.array(["421281"] * n, pa.string()),
                "unit_code": pa.nulls(n, pa.string()),
                "geometry": pa.array(shapely.to_wkb(shapely.points(lon, lat)), pa.binary()),
            }
        )
        writer.write(table)
        next_id += n
    report = writer.close()
    assert report.rows == cases, report.summary()
    return time.perf_counter() - started


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_hotspots(folder: str, eager: bool) -> None:
    """Step 2 or 3, in this (fresh) process: print one JSON line with time, memory and results."""
    import dask
    import geopandas as gpd

    from geo import hotspots

    started = time.perf_counter()
    if eager:
        cases = gpd.read_parquet(folder, columns=hotspots.COLUMNS)
        loaded = time.perf_counter() - started
    else:
        dask.config.set(scheduler="threads", num_workers=2)
        cases = hotspots.read_cases(folder)
        loaded = 0.0
    counts, grids = hotspots.hotspot_counts(cases)
    top = hotspots.top_cells(counts, n=20)
    grids = grids.head(20)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "load_seconds": loaded,
        "peak_mib": peak_mib(),
        "cells": len(counts),
        "cases": int(counts["cases"].sum()),
        "top": top[["ix", "iy", "cases", "unresolved"]].values.tolist(),
        "grids": grids[["grid_code", "cases", "unresolved"]].values.tolist(),
    }
    print(json.dumps(result, default=int))


def measure(folder: Path, eager: bool) -> dict:
    """Run one computation in a fresh interpreter (so its peak memory is its own)."""
    argv = [sys.executable, __file__, "--measure", str(folder)] + (["--eager"] if eager else [])
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, help="where to write the cases (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    parser.add_argument("--no-eager", action="store_true", help="skip geopandas loading everything")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--eager", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        run_hotspots(args.measure, args.eager)
        return
    folder = args.out or Path(tempfile.mkdtemp(prefix="gridcase-hotspots-"))
    try:
        if any(folder.glob("month=*")):
            print(f"reusing the cases under {folder}")
        else:
            seconds = generate(folder, args.cases)
            print(f"generated {args.cases:,} cases in {seconds:.1f} s under {folder}")
        size = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
        print(f"{len(list(folder.glob('month=*')))} monthly files, {size / 2**20:,.0f} MiB")
        lazy = measure(folder, eager=False)
        print(
            f"dask-geopandas: {lazy['seconds']:.1f} s, peak {lazy['peak_mib']:,.0f} MiB, "
            f"{lazy['cases']:,} cases in {lazy['cells']:,} cells of 250 m"
        )
        print("top 5 cells (ix, iy, cases, unresolved):", lazy["top"][:5])
        print("top 5 grids (code, cases, unresolved):", lazy["grids"][:5])
        if args.no_eager or available_gib() < 12:
            print(f"geopandas loading everything: skipped ({available_gib():.1f} GiB available)")
            return
        eager = measure(folder, eager=True)
        print(
            f"geopandas, all in memory: {eager['seconds']:.1f} s (reading {eager['load_seconds']:.1f} s), "
            f"peak {eager['peak_mib']:,.0f} MiB"
        )
        assert eager["top"] == lazy["top"] and eager["grids"] == lazy["grids"], "the two disagree"
        print(
            f"same top 20 cells and grids; memory: geopandas / dask-geopandas = "
            f"{eager['peak_mib'] / lazy['peak_mib']:.1f}×, time: {eager['seconds'] / lazy['seconds']:.2f}×"
        )
    finally:
        if not args.keep and not args.out:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
