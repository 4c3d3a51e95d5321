"""City map at scale: gridcase's PostGIS-aggregated density map vs folium's raw-point HeatMap.

Run: `.venv/bin/python bench/maps.py [--cases 1000000] [--reuse]`

In the database `gridcase_bench_maps` of the managed cluster (migrated, Chibi reference data
loaded with `load_demo(cases=False)`), N unresolved cases are generated in SQL: each of the 263
grids gets a random weight (uniform⁴: a few grids are hotspots), and `ST_GeneratePoints`
scatters that grid's share of points inside its polygon; states are drawn from the open states,
report times from the last 90 days. Generation is timed separately and not counted.

Then, in the same run:
- build: (a) `city_density_map` per grid and per 250 m hexagon (PostGIS aggregation + folium +
  render), (b) the naive map: every raw point read from PostGIS into `folium.plugins.HeatMap`;
- size of each HTML page;
- draw: each page opened in headless Chromium (Debian's, via Playwright; every non-local request
  aborted; vendored assets served from disk), timed from navigation until the layers are in the
  DOM and one animation frame has been painted (`.leaflet-interactive` paths for the choropleth,
  the heat canvas for the heatmap), best of a few runs for the small pages.
Goals printed against the measurements: aggregated page < 2 MB and drawn in < 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

import folium  # noqa: E402
from folium.plugins import HeatMap  # noqa: E402

from geo.demo import load_demo  # noqa: E402
from geo.maps.heatmap import OPEN_STATES, city_density_map  # noqa: E402
from geo.maps.offline import VENDOR_DIR, localize, render_local  # noqa: E402
from geo.settings import Settings  # noqa: E402
from geo.store import Store  # noqa: E402
from geo.store.db import create_database, drop_database, resolve_database_url  # noqa: E402
from geo.store.models import Case  # noqa: E402

DATABASE = "gridcase_bench_maps"
SEED = 0.4212  # setseed() takes a value in [-1, 1]
ORIGIN = "http://gridcase.bench"  # a made-up local origin; Playwright answers it from disk
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

# Each grid's share of the cases: weights uniform⁴ (a few hotspot grids) normalised, rounded down;
# the last grid takes the remainder so the total is exact. Points are scattered inside the polygon.
GENERATE = text("""
WITH g AS (
    SELECT code, parent_code, geom, row_number() OVER (ORDER BY code) AS k,
           power(random(), 4) + 0.01 AS w
    FROM area
    WHERE level = 'grid' AND generation_low <= :generation AND generation_high >= :generation
), shares AS (
    SELECT *, floor(:n * w / sum(w) OVER ())::int AS share, count(*) OVER () AS grids FROM g
), counted AS (
    SELECT code, parent_code, geom,
           CASE WHEN k = grids THEN :n - (sum(share) OVER () - share) ELSE share END AS share
    FROM shares
), points AS (
    SELECT code, parent_code, (ST_Dump(ST_GeneratePoints(geom, share::int, k_seed))).geom AS geom
    FROM (SELECT *, (row_number() OVER ())::int AS k_seed FROM counted WHERE share > 0) c
), cats AS (SELECT array_agg(code ORDER BY code) AS codes FROM category)
INSERT INTO cases (tracking_code, category_code, description, channel, reported_at, reported_crs,
                   reported_lon, reported_lat, location, state, grid_code, community_code,
                   cooperating_unit_codes, version, deadline_at)
SELECT 'BM' || lpad(n::text, 9, '0'),
       cats.codes[1 + floor(random() * array_length(cats.codes, 1))::int],
       '', 'bench', t, 'wgs84', ST_X(p.geom), ST_Y(p.geom), p.geom,
       ((:states)::text[])[1 + floor(random() * :n_states)::int],
       p.code, p.parent_code, '{}', 1, t + interval '5 days'
FROM (SELECT points.*, row_number() OVER () AS n,
             now() - random() * interval '90 days' AS t FROM points) p, cats
""")


def prepare(settings: Settings, n: int, reuse: bool) -> Store:
    """The bench database with n unresolved cases (generated in SQL, timed, not counted)."""
    url = resolve_database_url(settings, database=DATABASE)
    if reuse:
        store = Store(settings, url=url)
        with store.sessions() as session:
            have = session.scalar(select(func.count()).select_from(Case)) or 0
        if have == n:
            print(f"reusing {DATABASE}: {have:,} cases")
            return store
        store.dispose()
    drop_database(url)
    create_database(url)
    store = Store(settings, url=url)
    started = time.perf_counter()
    store.migrate()
    load_demo(store, cases=False)
    print(f"reference data loaded in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with store.transaction() as session:
        session.execute(text("SELECT setseed(:s)"), {"s": SEED})
        generation = session.scalar(text("SELECT max(id) FROM boundary_generation"))
        session.execute(
            GENERATE, {"n": n, "generation": generation, "states": OPEN_STATES, "n_states": len(OPEN_STATES)}
        )
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE cases"))
    print(f"generated {n:,} unresolved cases in SQL in {time.perf_counter() - started:.1f} s")
    return store


def naive_heatmap(store: Store) -> folium.Map:
    """What one would write first: every raw point into folium's HeatMap."""
    with store.sessions() as session:
        points = session.execute(
            select(func.ST_Y(Case.location), func.ST_X(Case.location)).where(Case.state.in_(OPEN_STATES))
        ).all()
    fmap = folium.Map(location=[29.72, 113.90], zoom_start=13, tiles=None)
    HeatMap([[lat, lon] for lat, lon in points]).add_to(fmap)
    return fmap


def timed(build) -> tuple[str, float]:  # noqa: ANN001
    """Build and render a page; the HTML and the seconds it took."""
    started = time.perf_counter()
    html = build()
    return html, time.perf_counter() - started


def draw_times(pages: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Seconds from navigation until each page's layers are drawn in headless Chromium."""
    from playwright.sync_api import Route, sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="gridcase-bench-"))
    for name, html in pages.items():
        (folder / f"{name}.html").write_text(html, "utf-8")
    blocked: list[str] = []

    def answer(route: Route) -> None:
        url = route.request.url
        if url.startswith(f"{ORIGIN}/static/vendor/"):
            route.fulfill(path=str(VENDOR_DIR / url.removeprefix(f"{ORIGIN}/static/vendor/")))
        elif url.startswith(f"{ORIGIN}/"):
            route.fulfill(
                path=str(folder / url.removeprefix(f"{ORIGIN}/")), content_type="text/html; charset=utf-8"
            )
        else:
            blocked.append(url)
            route.abort()

    drawn = """() => (document.querySelector('.leaflet-interactive')
                      || document.querySelector('canvas.leaflet-heatmap-layer'))
                     && new Promise(done => requestAnimationFrame(() => done(true)))"""
    times: dict[str, list[float]] = {name: [] for name in pages}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for name in pages:
                for run in range(runs if len(pages[name]) < 5_000_000 else 1):
                    page = browser.new_page(viewport={"width": 1600, "height": 900})
                    page.route("**/*", answer)
                    if run == 0 and name == next(iter(pages)):
                        page.goto(f"{ORIGIN}/{name}.html")  # warm-up: browser start, disk cache
                        page.wait_for_function(drawn, timeout=120_000)
                    started = time.perf_counter()
                    page.goto(f"{ORIGIN}/{name}.html", timeout=300_000)
                    page.wait_for_function(drawn, timeout=300_000, polling=50)
                    times[name].append(time.perf_counter() - started)
                    page.close()
        finally:
            browser.close()
    if blocked:
        print(f"blocked {len(blocked)} non-local requests, e.g. {blocked[:3]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the bench database if it already holds --cases cases"
    )
    parser.add_argument("--runs", type=int, default=3, help="draws per small page (best is kept)")
    args = parser.parse_args()
    settings = Settings(database_url=None)
    store = prepare(settings, args.cases, args.reuse)

    def city(bins: str) -> str:
        with store.sessions() as session:
            return render_local(city_density_map(session, bins=bins))  # type: ignore[arg-type]

    built = {
        "gridcase per grid": timed(lambda: city("grid")),
        "gridcase per 250 m hexagon": timed(lambda: city("hex")),
        # Same vendored assets for the naive page, so that only the data differs.
        "naive folium HeatMap": timed(lambda: localize(naive_heatmap(store)).render()),
    }
    store.dispose()
    slugs = {name: name.split()[0] + "-" + name.split()[-1] for name in built}
    draws = draw_times({slugs[name]: html for name, (html, _) in built.items()}, args.runs)

    print(f"\n{args.cases:,} unresolved cases; headless /usr/bin/chromium\n")
    print(f"{'page':<28} {'HTML size':>12} {'build s':>9} {'draw s (best)':>14} {'runs':>5}")
    results = {}
    for name, (html, build_s) in built.items():
        size = len(html.encode())
        draw = draws[slugs[name]]
        results[name] = (size, build_s, min(draw))
        print(
            f"{name:<28} {size / 1e6:>10.2f} MB {build_s:>9.2f} {min(draw):>14.2f} "
            f"{len(draw):>5}" + (f"   (median {statistics.median(draw):.2f})" if len(draw) > 1 else "")
        )
    naive = results["naive folium HeatMap"]
    print()
    for name in ("gridcase per grid", "gridcase per 250 m hexagon"):
        size, build_s, draw = results[name]
        print(
            f"{name}: {naive[0] / size:,.0f}x smaller, builds {naive[1] / build_s:,.1f}x "
            f"faster, draws {naive[2] / draw:,.1f}x faster than the naive page; goals "
            f"< 2 MB: {'met' if size < 2e6 else 'MISSED'}, < 2 s draw: "
            f"{'met' if draw < 2 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
