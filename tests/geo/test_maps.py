"""Heatmaps and density maps on the Chibi demo: the right cases, the grids, offline assets only."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import folium
import pytest
from folium.plugins import HeatMap, MarkerCluster
from folium.raster_layers import TileLayer
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geo.areas import current_generation
from geo.cases.views import overdue_clause
from geo.errors import InvalidInput, NotFound, UnknownCategory
from geo.maps.heatmap import (
    OPEN_STATES,
    city_density_map,
    community_heatmap,
    density_frame,
    short_grid_name,
    utm_srid,
)
from geo.maps.offline import (
    ASSETS,
    VENDOR_DIR,
    MissingAsset,
    external_urls,
    render_inline,
    render_local,
)
from geo.store.models import Area, Case
from tests.conftest import REPO

# A fixed clock: the demo quarter is Jul–Sep 2026, so ages and overdue are stable.
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def demo(demo_store) -> Iterator[Session]:
    """A session on the demo database, rolled back (the demo is shared and read-only)."""
    with demo_store.sessions() as session:
        yield session
        session.rollback()


@pytest.fixture(scope="module")
def busiest(demo_store) -> str:
    """The community with the most unresolved cases."""
    with demo_store.sessions() as session:
        return session.execute(
            select(Case.community_code)
            .where(Case.state.in_(OPEN_STATES))
            .group_by(Case.community_code)
            .order_by(func.count().desc(), Case.community_code)
            .limit(1)
        ).scalar_one()


def _unresolved(session: Session, *where) -> int:
    return (
        session.scalar(select(func.count()).select_from(Case).where(Case.state.in_(OPEN_STATES), *where)) or 0
    )


def _children(fmap: folium.Map, kind: type) -> list:
    return [c for c in fmap._children.values() if isinstance(c, kind)]


def _heat_count(fmap: folium.Map) -> int:
    (heat,) = _children(fmap, HeatMap)
    return len(heat.data)


def test_community_heatmap_holds_exactly_its_unresolved_cases(demo, busiest):
    fmap = community_heatmap(demo, busiest, now=NOW)
    (heat,) = _children(fmap, HeatMap)
    expected = demo.execute(
        select(func.ST_Y(Case.location), func.ST_X(Case.location)).where(
            Case.community_code == busiest, Case.state.in_(OPEN_STATES)
        )
    ).all()
    assert len(expected) > 20
    assert sorted(map(tuple, heat.data)) == sorted((lat, lon) for lat, lon in expected)


def test_community_heatmap_draws_its_grids_named_with_codes_on_hover(demo, busiest):
    generation = current_generation(demo)
    names = dict(
        demo.execute(
            select(Area.code, Area.name).where(
                Area.level == "grid",
                Area.parent_code == busiest,
                Area.generation_low <= generation,
                Area.generation_high >= generation,
            )
        ).all()
    )
    codes = set(names)
    assert len(codes) >= 5
    fmap = community_heatmap(demo, busiest, now=NOW)
    (grids,) = [c for c in _children(fmap, folium.GeoJson) if c.layer_name == "网格 grids"]
    assert {f["properties"]["code"] for f in grids.data["features"]} == codes
    assert {f["properties"]["name"] for f in grids.data["features"]} == set(names.values())
    assert sum(f["properties"]["cases"] for f in grids.data["features"]) == _heat_count(fmap)
    (tooltip,) = [c for c in grids._children.values() if isinstance(c, folium.GeoJsonTooltip)]
    assert tooltip.fields == ["name", "code", "cases"]  # the code on hover
    (labels,) = [c for c in _children(fmap, folium.FeatureGroup) if c.layer_name == "网格名称 grid names"]
    icons = [
        icon
        for marker in labels._children.values()
        for icon in marker._children.values()
        if isinstance(icon, folium.DivIcon)
    ]
    # Named as people say them inside their community: 第3网格 (the demo's names end so).
    assert {icon.options["html"] for icon in icons} == {
        f'<div class="gridcase-label gridcase-grid-name">第{int(code[-3:])}网格</div>' for code in codes
    }
    assert fmap.get_root().title.endswith("未办结案件热力图 · unresolved cases · gridcase")


def test_short_grid_names():
    assert short_grid_name("蒲圻街道金鸡山社区第3网格", "金鸡山社区", "421281001001003") == "第3网格"
    assert short_grid_name("金鸡山社区北片", "金鸡山社区", "421281001001004") == "北片"
    assert short_grid_name("", "金鸡山社区", "421281001001012") == "第12网格"
    # Any other name is kept as it is (and escaped where it is drawn).
    assert short_grid_name("<img onerror=x>", "金鸡山社区", "421281001001001") == "<img onerror=x>"


def test_case_markers_are_clustered_and_hidden_at_first(demo, busiest):
    fmap = community_heatmap(demo, busiest, now=NOW)
    (cluster,) = _children(fmap, MarkerCluster)
    assert cluster.show is False and len(cluster.data) == _heat_count(fmap)
    # The demo's cases of today were reported after NOW (they have no age yet, as of NOW).
    tracking, category, state, age = next(row for row in cluster.data if row[5] > 0)[2:]
    assert tracking and category[:1] in "CE" and state.split()[-1] in OPEN_STATES and age > 0
    html = render_local(fmap)
    # Hidden means created but never added to the map; the layer control can still show it.
    assert f"{cluster.get_name()}.addTo(" not in html
    assert f'case markers" : {cluster.get_name()},' in html  # listed in the layer control
    public = community_heatmap(demo, busiest, now=NOW, tracking_codes=False)
    assert all(row[2] is None for row in _children(public, MarkerCluster)[0].data)


def test_filters_narrow_the_cases(demo, busiest):
    everything = _heat_count(community_heatmap(demo, busiest, now=NOW))
    in_community = Case.community_code == busiest
    category = demo.scalar(
        select(Case.category_code)
        .where(in_community, Case.state.in_(OPEN_STATES))
        .group_by(Case.category_code)
        .order_by(func.count().desc())
        .limit(1)
    )
    cases = [
        ({"category": category}, [Case.category_code == category]),
        ({"states": ["signed", "rework"]}, [Case.state.in_(["signed", "rework"])]),
        ({"overdue_only": True}, [overdue_clause(NOW)]),
        ({"min_age_days": 100}, [Case.reported_at <= datetime(2026, 7, 24, tzinfo=UTC)]),
        ({"max_age_days": 100}, [Case.reported_at >= datetime(2026, 7, 24, tzinfo=UTC)]),
    ]
    for filters, where in cases:
        got = _heat_count(community_heatmap(demo, busiest, now=NOW, **filters))
        assert got == _unresolved(demo, in_community, *where), filters
        assert 0 < got < everything, filters


@pytest.mark.parametrize(
    ("filters", "error", "field"),
    [
        ({"category": "E9999"}, UnknownCategory, "category"),
        ({"min_age_days": -1}, InvalidInput, "min_age_days"),
        ({"min_age_days": 10, "max_age_days": 5}, InvalidInput, "max_age_days"),
        ({"states": ["closed"]}, InvalidInput, "state"),
        ({"states": ["nonsense"]}, InvalidInput, "state"),
    ],
)
def test_bad_filters_name_their_field(demo, busiest, filters, error, field):
    with pytest.raises(error) as caught:
        community_heatmap(demo, busiest, now=NOW, **filters)
    assert caught.value.field == field


def test_unknown_community_is_not_found(demo):
    with pytest.raises(NotFound) as caught:
        community_heatmap(demo, "421281999999")
    assert caught.value.field == "code"


def test_pages_reference_only_vendored_assets(demo, busiest):
    for fmap in (community_heatmap(demo, busiest, now=NOW), city_density_map(demo, now=NOW)):
        html = render_local(fmap)
        assert external_urls(html) == []
        assert "cdn" not in html and "cloudflare" not in html and "bootstrap" not in html
        assets = re.findall(r'<script src="([^"]+)"|<link rel="stylesheet" href="([^"]+)"', html)
        assets = [js or css for js, css in assets]
        assert "/static/vendor/leaflet/leaflet.js" in assets
        assert "/static/vendor/leaflet/leaflet.css" in assets
        for url in assets:
            assert url.startswith("/static/vendor/")
            assert (VENDOR_DIR / url.removeprefix("/static/vendor/")).is_file(), url


def test_external_urls_finds_what_would_load_from_the_network():
    html = (
        '<script src="https://cdn.example.com/a.js"></script><link href="//cdn.x.org/b.css">'
        '<img src="http://127.0.0.1:8000/ok.png"><style>.a{background:url("https://t.co/x.png")}'
        '</style><div style="background:url(/local.png)"></div><script>var a = "https://not-a'
        '-load.example";</script>'
    )
    assert external_urls(html) == ["https://cdn.example.com/a.js", "//cdn.x.org/b.css", "https://t.co/x.png"]


def test_tiles_only_when_a_tile_server_is_configured(demo, busiest):
    plain = community_heatmap(demo, busiest, now=NOW)
    assert _children(plain, TileLayer) == []
    assert "L.tileLayer" not in render_local(plain)
    template = "http://tiles.intranet.local/chibi/{z}/{x}/{y}.png"
    tiled = community_heatmap(demo, busiest, now=NOW, tiles_url=template, tiles_attribution="赤壁市测绘院")
    html = render_local(tiled)
    assert "L.tileLayer" in html and template in html
    assert json.dumps("赤壁市测绘院")[1:-1] in html  # folium writes non-ASCII as \\uXXXX


def test_folium_icons_are_refused_rather_than_loaded_from_a_cdn():
    fmap = folium.Map(tiles=None)
    folium.Marker([29.7, 113.9], icon=folium.Icon(color="red")).add_to(fmap)
    with pytest.raises(MissingAsset):
        render_local(fmap)


def test_city_map_counts_every_unresolved_case_per_grid(demo):
    frame = density_frame(demo, bins="grid", now=NOW)
    assert len(frame) == 263 and frame.crs.to_epsg() == 4326
    # Reports in no grid wait in the triage queue, not on a grid.
    total = _unresolved(demo, Case.grid_code.is_not(None))
    assert frame["count"].sum() == total < _unresolved(demo) == frame.attrs["total"]
    per_grid = dict(
        demo.execute(
            select(Case.grid_code, func.count())
            .where(Case.state.in_(OPEN_STATES), Case.grid_code.is_not(None))
            .group_by(Case.grid_code)
        ).all()
    )
    assert {c: n for c, n in zip(frame.bin, frame["count"], strict=True) if n} == per_grid


def test_city_map_hexagons_count_every_case_once(demo):
    frame = density_frame(demo, bins="hex", hex_size_m=300, now=NOW)
    assert frame["count"].sum() == _unresolved(demo) and (frame["count"] > 0).all()
    # A 300 m hexagon (edge length) covers 3√3/2·300² ≈ 0.234 km²; measured in UTM metres.
    areas = frame.to_crs(utm_srid(113.9, 29.7)).area
    assert areas.between(0.23e6, 0.24e6).all()
    # The same cells as PostGIS's own ST_HexagonGrid containment (the map bins by arithmetic).
    srid = utm_srid(113.9, 29.7)
    reference = demo.execute(
        text(
            # Over the grids and every open case (triage reports lie outside the grids); a
            # cell's (i, j) does not depend on the extent.
            "SELECT h.i, h.j, count(*) FROM cases c, ST_HexagonGrid(:size, (SELECT ST_Transform("
            "ST_Envelope(ST_Collect(g)), :srid) FROM (SELECT geom AS g FROM area WHERE level = 'grid' "
            "UNION ALL SELECT location FROM cases WHERE state = ANY(:states)) e)) h "
            "WHERE ST_Intersects(ST_Transform(c.location, :srid), h.geom) AND c.state = ANY(:states) "
            "GROUP BY h.i, h.j"
        ),
        {"size": 300, "srid": srid, "states": OPEN_STATES},
    ).all()
    assert {f"{i},{j}": n for i, j, n in reference} == dict(zip(frame.bin, frame["count"], strict=True))
    narrowed = density_frame(demo, bins="hex", states=["parked"], now=NOW)
    assert narrowed["count"].sum() == _unresolved(demo, Case.state == "parked")
    with pytest.raises(InvalidInput) as caught:
        density_frame(demo, bins="hex", hex_size_m=1)
    assert caught.value.field == "hex_size_m"


def test_city_map_pages_are_small_and_carry_no_points(demo):
    for bins in ("grid", "hex"):
        fmap = city_density_map(demo, bins=bins, now=NOW)
        assert _children(fmap, HeatMap) == [] and _children(fmap, MarkerCluster) == []
        assert len(render_local(fmap).encode()) < 300_000


def test_utm_zone_of_chibi():
    assert utm_srid(113.9, 29.7) == 32649 and utm_srid(-74.0, -40.0) == 32718


def test_inline_page_is_self_contained(demo, busiest):
    html = render_inline(community_heatmap(demo, busiest, now=NOW))
    assert external_urls(html) == []
    assert "<script src=" not in html and '<link rel="stylesheet"' not in html
    assert "sourceMappingURL" not in html and "/static/vendor" not in html
    assert "L.Icon.Default.mergeOptions" in html and "data:image/png;base64," in html
    assert "L.heatLayer" in html and "markerClusterGroup" in html


def test_vendored_files_match_their_checksums():
    sums = (VENDOR_DIR / "SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in sums:
        digest, name = line.split(maxsplit=1)
        listed[name.removeprefix("./")] = digest
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR_DIR / name).read_bytes()).hexdigest() == digest, name
    assert set(ASSETS.values()) <= set(listed)
    total = sum(p.stat().st_size for p in VENDOR_DIR.rglob("*") if p.is_file())
    assert total < 3_000_000
    for package in ("leaflet", "leaflet.markercluster", "leaflet.heat", "jquery"):
        assert any("LICEN" in p.name for p in (VENDOR_DIR / package).iterdir()), package


def test_cli_writes_a_self_contained_offline_file(demo_store, busiest, tmp_path):
    gridcase = str(Path(sys.executable).parent / "gridcase")
    env = {**os.environ, "DATABASE_URL": demo_store.url}
    env.pop("GRIDCASE_TILES_URL", None)
    heat = tmp_path / "heat.html"
    done = subprocess.run(
        [gridcase, "heatmap", busiest, "-o", str(heat), "--state", "signed"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    html = heat.read_text("utf-8")
    assert external_urls(html) == [] and "<script src=" not in html and "L.heatLayer" in html
    city = tmp_path / "city.html"
    done = subprocess.run(
        [gridcase, "citymap", "-o", str(city), "--bins", "hex"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert external_urls(city.read_text("utf-8")) == []
    bad = subprocess.run(
        [gridcase, "heatmap", "421281999999", "-o", str(tmp_path / "x.html")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert bad.returncode == 1 and "no community" in bad.stderr
