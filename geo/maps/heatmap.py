"""Where unresolved cases pile up: a community heatmap and a city-wide density map (folium).

Unresolved means every open workflow state (`geo.cases.workflow.OPEN`: not closed, rejected,
voided or merged), `reported` and `parked` included: a problem not yet verified or on hold is
still on the street. Geometries are EPSG:4326 (lon/lat); Leaflet wants [lat, lon] pairs.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure
from folium.plugins import FastMarkerCluster, HeatMap
from folium.template import Template
from sqlalchemy import ColumnElement, Integer, Select, and_, case, cast, func, select
from sqlalchemy.orm import Session

from geo.areas import areas_frame, current_generation
from geo.cases.views import overdue_clause
from geo.cases.workflow import OPEN, STATE_LABELS_ZH, CaseState
from geo.errors import InvalidInput, NotFound, UnknownCategory
from geo.maps.offline import DEFAULT_PREFIX, localize
from geo.store.models import Area, Case, Category, ResponsibilityLayer

OPEN_STATES = sorted(s.value for s in OPEN)
BACKGROUND = "#eef0ea"  # the plain map background when no tile server is configured
# ColorBrewer YlOrRd, 7 classes: light = few cases, dark red = many.
PALETTE = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026"]
Bins = Literal["grid", "hex"]
# Ages are bounded so that `now - timedelta(days=age)` stays a date: a century covers every case.
MAX_AGE_DAYS = 36_525


@dataclass(frozen=True)
class MapFilter:
    """Which unresolved cases a map shows; ages are in days since the report."""

    category: str | None = None
    min_age_days: float | None = None
    max_age_days: float | None = None
    overdue_only: bool = False
    states: tuple[str, ...] = ()

    def describe(self) -> str:
        """The filter in words, for the map's caption."""
        parts = []
        if self.category:
            parts.append(f"类别 {self.category}")
        if self.min_age_days is not None:
            parts.append(f"≥{self.min_age_days:g} 天")
        if self.max_age_days is not None:
            parts.append(f"≤{self.max_age_days:g} 天")
        if self.overdue_only:
            parts.append("仅超期 overdue")
        if self.states:
            parts.append("状态 " + ",".join(self.states))
        return "; ".join(parts)


def map_filter(
    session: Session,
    *,
    category: str | None = None,
    min_age_days: float | None = None,
    max_age_days: float | None = None,
    overdue_only: bool = False,
    states: list[str] | tuple[str, ...] | None = None,
) -> MapFilter:
    """Check the filters and return them; a bad one raises naming its field."""
    if category is not None:
        category = category.strip()
        if not session.get(Category, category):
            raise UnknownCategory(f"no category {category!r} in the catalogue", field="category")
    for field, value in (("min_age_days", min_age_days), ("max_age_days", max_age_days)):
        if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_AGE_DAYS):
            raise InvalidInput(
                f"{field} must be a number of days from 0 to {MAX_AGE_DAYS}, not {value}", field=field
            )
    if min_age_days is not None and max_age_days is not None and min_age_days > max_age_days:
        raise InvalidInput(
            f"max_age_days ({max_age_days:g}) is below min_age_days ({min_age_days:g})", field="max_age_days"
        )
    wanted = tuple(dict.fromkeys(s.strip() for s in states or () if s.strip()))
    for state in wanted:
        if state not in OPEN_STATES:
            known = state in CaseState.__members__
            raise InvalidInput(
                f"state {state!r} is {'not an open state' if known else 'unknown'}; "
                f"maps show unresolved cases: {', '.join(OPEN_STATES)}",
                field="state",
            )
    return MapFilter(category, min_age_days, max_age_days, overdue_only, wanted)


def _clauses(f: MapFilter, now: datetime) -> list[ColumnElement[bool]]:
    """SQL conditions for the filter (bound parameters throughout)."""
    clauses: list[ColumnElement[bool]] = [
        Case.state.in_(list(f.states) or OPEN_STATES),
        Case.location.is_not(None),
    ]
    if f.category:
        clauses.append(Case.category_code == f.category)
    if f.min_age_days is not None:
        clauses.append(Case.reported_at <= now - timedelta(days=f.min_age_days))
    if f.max_age_days is not None:
        clauses.append(Case.reported_at >= now - timedelta(days=f.max_age_days))
    if f.overdue_only:
        clauses.append(overdue_clause(now))
    return clauses


def _base_map(
    bounds: tuple[float, float, float, float], tiles_url: str | None, tiles_attribution: str, title: str
) -> folium.Map:
    """A map page titled `title`, fitted to (minx, miny, maxx, maxy) in lon/lat, tiles only when a
    server is set."""
    minx, miny, maxx, maxy = bounds
    fmap = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=14, tiles=None, control_scale=True
    )
    # With no tile layer Leaflet has no zoom range, and MarkerCluster refuses to work without one.
    fmap.options.update(max_zoom=19, min_zoom=9)
    if tiles_url:
        folium.TileLayer(
            tiles=tiles_url,
            attr=tiles_attribution or "tiles: local server",
            name="底图 base map",
            max_zoom=19,
            overlay=False,
        ).add_to(fmap)
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root.title = html.escape(title)  # branca writes the title as is
    root.header.add_child(
        Element(
            '<meta charset="utf-8">'
            f"<style>.folium-map.leaflet-container {{ background: {BACKGROUND}; }}"
            "body { font-family: 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif; }"
            ".gridcase-label { font: 12px/1.2 'Noto Sans CJK SC', sans-serif; color: #234;"
            " white-space: nowrap; text-shadow: 0 0 3px #fff, 0 0 3px #fff;"
            " transform: translate(-50%, -50%); width: max-content; }"
            ".gridcase-community { font-size: 15px; font-weight: 700; color: #1f3a5f; }"
            ".gridcase-landmark { font-style: italic; color: #1d5fa8; }"
            # Labels let the mouse through to the grid below, whose tooltip has the code.
            ".gridcase-grid-name, .gridcase-landmark, .gridcase-community { pointer-events: none; }"
            ".gridcase-box { position: fixed; z-index: 1000; background: rgba(255,255,255,.92);"
            " padding: 6px 10px; border-radius: 4px; font: 14px/1.45 'Noto Sans CJK SC', sans-serif;"
            " box-shadow: 0 1px 4px rgba(0,0,0,.3); }"
            ".gridcase-box h1 { font-size: 16px; margin: 0 0 2px; }"
            ".gridcase-legend i { display: inline-block; width: 18px; height: 12px; margin-right: 6px;"
            " vertical-align: middle; }</style>"
        ),
        name="gridcase_style",
    )
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])  # Leaflet order: [lat, lon]
    return fmap


def _box(fmap: folium.Map, corner: str, inner_html: str) -> None:
    """A fixed caption or legend box on the page (content already escaped)."""
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root.html.add_child(Element(f'<div class="gridcase-box" style="{corner}">{inner_html}</div>'))


def _drawable(frame: gpd.GeoDataFrame, decimals: int = 6) -> gpd.GeoDataFrame:
    """The frame as a page draws it: text escaped, coordinates rounded to 1e-6° (about 0.1 m).

    folium's tooltips put property values into the page as HTML, so a name from an import file
    such as `<img onerror=…>` must arrive as text. Rounding shrinks the page; nothing visible moves.
    """
    frame = frame.copy()
    for column in frame.columns:
        if column != frame.geometry.name and not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: html.escape(v) if isinstance(v, str) else v)
    frame.geometry = shapely.transform(frame.geometry.values, lambda xy: np.round(xy, decimals))
    return frame


# How each kind of responsibility layer is drawn for orientation (as drawn, not buffered).
LANDMARK_STYLES: dict[str, dict[str, object]] = {
    "river_lake": {"color": "#3d8fd1", "weight": 4, "fillColor": "#9ecae1", "fillOpacity": 0.7},
    "road": {"color": "#b08d3c", "weight": 5, "fillOpacity": 0},
    "park": {"color": "#41ab5d", "weight": 1, "fillColor": "#a1d99b", "fillOpacity": 0.7},
}
LANDMARK_LEGEND = (
    ("river_lake", "河渠湖泊 canals and lakes"),
    ("road", "道路 roads"),
    ("park", "公园 parks"),
)


def landmarks_frame(session: Session) -> gpd.GeoDataFrame:
    """The thematic layers (canal, lake, roads, parks) as drawn, EPSG:4326, for orientation."""
    stmt = select(
        ResponsibilityLayer.code,
        ResponsibilityLayer.name,
        ResponsibilityLayer.kind,
        ResponsibilityLayer.geom,
    ).order_by(ResponsibilityLayer.code)
    frame = gpd.read_postgis(stmt, session.connection(), geom_col="geom").rename_geometry("geometry")
    return frame if frame.crs is not None else frame.set_crs(4326)


def _label(group: folium.FeatureGroup, point: shapely.Point, text: str, css: str) -> None:
    """A permanent text label at a point (a DivIcon: text escaped, no image icon)."""
    folium.Marker(
        [point.y, point.x],  # Leaflet order: lat, lon
        icon=folium.DivIcon(
            html=f'<div class="gridcase-label {css}">{html.escape(text)}</div>',
            icon_size=(0, 0),
            class_name=css,
        ),
    ).add_to(group)


def _add_landmarks(fmap: folium.Map, session: Session) -> None:
    """The canal, lake, roads and parks with their names, so a reader knows where they are."""
    frame = landmarks_frame(session)
    if frame.empty:
        return
    group = folium.FeatureGroup(name="地标 landmarks")
    folium.GeoJson(
        _drawable(frame).to_json(),
        style_function=lambda f: LANDMARK_STYLES.get(f["properties"]["kind"], {"color": "#777", "weight": 2}),
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
    ).add_to(group)
    for name, geometry in zip(frame.name, frame.geometry, strict=True):
        point = (
            geometry.interpolate(0.5, normalized=True)
            if geometry.geom_type.endswith("LineString")
            else (geometry.representative_point())
        )
        _label(group, point, str(name), "gridcase-landmark")
    group.add_to(fmap)


def _landmark_legend() -> str:
    rows = []
    for kind, label in LANDMARK_LEGEND:
        style = LANDMARK_STYLES[kind]
        fill = style.get("fillColor") if style.get("fillOpacity") else style["color"]
        rows.append(f'<div><i style="background:{fill};border:2px solid {style["color"]}"></i>{label}</div>')
    return "".join(rows)


_GRID_SERIAL = re.compile(r"第\s*\d+\s*网格$")


def short_grid_name(name: str, community_name: str, code: str) -> str:
    """A grid's name as a map writes it inside its community: 第3网格 (the code on hover)."""
    if found := _GRID_SERIAL.search(name):
        return found.group(0).replace(" ", "")
    if community_name and name.startswith(community_name) and len(name) > len(community_name):
        return name[len(community_name) :].strip()
    return name or f"第{int(code[-3:])}网格"


def _community(session: Session, code: str, generation: int | None) -> gpd.GeoDataFrame:
    frame = areas_frame(session, generation, levels=["community", "grid"])
    community = frame[(frame.level == "community") & (frame.code == code)]
    if community.empty:
        raise NotFound(f"no community {code!r} in the current boundaries", field="code")
    return frame


def community_heatmap(
    session: Session,
    community_code: str,
    *,
    category: str | None = None,
    min_age_days: float | None = None,
    max_age_days: float | None = None,
    overdue_only: bool = False,
    states: list[str] | tuple[str, ...] | None = None,
    tiles_url: str | None = None,
    tiles_attribution: str = "",
    asset_prefix: str = DEFAULT_PREFIX,
    tracking_codes: bool = True,
    now: datetime | None = None,
) -> folium.Map:
    """A community's unresolved cases as a heatmap over its boundary and labelled grids."""
    now = now or datetime.now(UTC)
    filters = map_filter(
        session,
        category=category,
        min_age_days=min_age_days,
        max_age_days=max_age_days,
        overdue_only=overdue_only,
        states=states,
    )
    generation = current_generation(session)
    areas = _community(session, community_code, generation)
    community = areas[(areas.level == "community") & (areas.code == community_code)]
    grids = areas[(areas.level == "grid") & (areas.parent_code == community_code)]

    rows = session.execute(
        select(
            Case.tracking_code,
            Case.category_code,
            Category.name,
            Case.state,
            Case.reported_at,
            Case.grid_code,
            func.ST_Y(Case.location).label("lat"),
            func.ST_X(Case.location).label("lon"),
        )
        .join(Category, Category.code == Case.category_code)
        .where(Case.community_code == community_code, *_clauses(filters, now))
        .order_by(Case.reported_at.desc())
    ).all()

    community_name = str(community.iloc[0]["name"])
    fmap = _base_map(
        tuple(community.total_bounds),
        tiles_url,
        tiles_attribution,
        f"{community_name}未办结案件热力图 · unresolved cases · gridcase",
    )
    _add_landmarks(fmap, session)
    folium.GeoJson(
        _drawable(community[["code", "name", "geometry"]]).to_json(),
        name="社区边界 community boundary",
        style_function=lambda _: {"color": "#1f3a5f", "weight": 3, "fill": False},
    ).add_to(fmap)

    per_grid: dict[str | None, int] = {}
    for row in rows:
        per_grid[row.grid_code] = per_grid.get(row.grid_code, 0) + 1
    grid_frame = _drawable(grids[["code", "name", "geometry"]])
    grid_frame["cases"] = [per_grid.get(c, 0) for c in grid_frame.code]
    folium.GeoJson(
        grid_frame.to_json(),
        name="网格 grids",
        style_function=lambda _: {
            "color": "#5b6b7a",
            "weight": 1,
            "fillColor": "#ffffff",
            "fillOpacity": 0.15,
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "code", "cases"], aliases=["网格 grid", "编码 code", "未办结 unresolved"]
        ),
    ).add_to(fmap)
    # Permanent names (第3网格) as DivIcons at a point inside each grid (a centroid can fall
    # outside); the full name and the 15-digit code are in the grid's tooltip.
    labels = folium.FeatureGroup(name="网格名称 grid names")
    for name, code, point in zip(grids.name, grids.code, grids.geometry.representative_point(), strict=True):
        _label(labels, point, short_grid_name(str(name), community_name, code), "gridcase-grid-name")
    labels.add_to(fmap)

    HeatMap(
        [[r.lat, r.lon] for r in rows],
        name="未办结案件热力 unresolved cases (heat)",
        radius=22,
        blur=16,
        min_opacity=0.35,
        max_zoom=17,
    ).add_to(fmap)

    markers = [
        [
            r.lat,
            r.lon,
            r.tracking_code if tracking_codes else None,
            f"{r.category_code} {r.name}",
            f"{STATE_LABELS_ZH.get(r.state, r.state)} {r.state}",
            max(0.0, round((now - r.reported_at).total_seconds() / 86400, 1)),
        ]
        for r in rows
    ]
    CaseMarkers(markers, callback=_POPUP_CALLBACK, name="案件标记 case markers", show=False).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)

    name = html.escape(community_name)
    caption = (
        f"<h1>{name} 未办结案件热力图</h1>{html.escape(community_code)} · unresolved cases: "
        f"<b>{len(rows)}</b>"
    )
    if described := filters.describe():
        caption += f"<br><small>{html.escape(described)}</small>"
    _box(fmap, "top: 10px; left: 54px;", caption)
    legend = (
        '<div class="gridcase-legend"><b>图例 legend</b>'
        '<div><i style="background:linear-gradient(to right,blue,cyan,lime,yellow,red)"></i>'
        "未办结案件密度：少 → 多 (few → many)</div>"
        '<div><i style="border:3px solid #1f3a5f"></i>社区边界 community</div>'
        '<div><i style="background:rgba(255,255,255,.4);border:1px solid #5b6b7a"></i>'
        "网格 grid (悬停看编码 hover for the code)</div>"
        f"{_landmark_legend()}</div>"
    )
    _box(fmap, "bottom: 28px; right: 10px;", legend)
    localize(fmap, asset_prefix)
    return fmap


class CaseMarkers(FastMarkerCluster):
    """Clustered case markers from one data array; honours show=False (folium's always adds)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
                {{ this.callback }}
                var data = {{ this.data|tojson }};
                var cluster = L.markerClusterGroup({{ this.options|tojavascript }});
                for (var i = 0; i < data.length; i++) {
                    callback(data[i]).addTo(cluster);
                }
                return cluster;
            })();
        {% endmacro %}""")


# Popups are built with textContent, never innerHTML, so no case field can inject markup.
_POPUP_CALLBACK = """function (row) {
    var marker = L.marker(new L.LatLng(row[0], row[1]));
    var box = document.createElement('div');
    [['编号 case', row[2]], ['类别 category', row[3]], ['状态 state', row[4]],
     ['已过 age', row[5] + ' 天 days']].forEach(function (pair) {
        if (pair[1] === null) { return; }
        var line = document.createElement('div');
        line.textContent = pair[0] + ': ' + pair[1];
        box.appendChild(line);
    });
    marker.bindPopup(box);
    return marker;
}"""


def utm_srid(lon: float, lat: float) -> int:
    """The WGS-84 UTM zone EPSG code for a place (metric, for hexagon sizes in metres)."""
    zone = int((lon + 180) // 6) + 1
    return (32600 if lat >= 0 else 32700) + zone


def density_frame(
    session: Session,
    *,
    bins: Bins = "grid",
    hex_size_m: float = 250.0,
    category: str | None = None,
    min_age_days: float | None = None,
    max_age_days: float | None = None,
    overdue_only: bool = False,
    states: list[str] | tuple[str, ...] | None = None,
    now: datetime | None = None,
) -> gpd.GeoDataFrame:
    """Unresolved cases counted in PostGIS per current grid or per hexagon (EPSG:4326 polygons)."""
    now = now or datetime.now(UTC)
    filters = map_filter(
        session,
        category=category,
        min_age_days=min_age_days,
        max_age_days=max_age_days,
        overdue_only=overdue_only,
        states=states,
    )
    generation = current_generation(session) or 0
    in_force = and_(
        Area.level == "grid", Area.generation_low <= generation, Area.generation_high >= generation
    )
    if bins == "grid":
        counts = (
            select(Case.grid_code, func.count().label("n"))
            .where(*_clauses(filters, now))
            .group_by(Case.grid_code)
            .subquery()
        )
        stmt = (
            select(Area.code.label("bin"), Area.name, func.coalesce(counts.c.n, 0).label("count"), Area.geom)
            .outerjoin(counts, counts.c.grid_code == Area.code)
            .where(in_force)
            .order_by(Area.code)
        )
    elif bins == "hex":
        if not (math.isfinite(hex_size_m) and 20 <= hex_size_m <= 20_000):
            raise InvalidInput("hex_size_m must be between 20 and 20000 metres", field="hex_size_m")
        centre = session.execute(
            select(
                func.ST_X(func.ST_Centroid(func.ST_Collect(Area.geom))),
                func.ST_Y(func.ST_Centroid(func.ST_Collect(Area.geom))),
            ).where(in_force)
        ).one()
        if centre[0] is None:
            return gpd.GeoDataFrame(
                {"bin": [], "name": [], "count": []}, geometry=gpd.GeoSeries([], crs=4326)
            )
        stmt = _hexagon_counts(utm_srid(centre[0], centre[1]), hex_size_m, _clauses(filters, now))
    else:
        raise InvalidInput(f"bins must be 'grid' or 'hex', not {bins!r}", field="bins")
    frame = gpd.read_postgis(stmt, session.connection(), geom_col="geom")
    frame = frame.rename_geometry("geometry")
    if frame.crs is None:
        frame = frame.set_crs(4326)
    if bins == "hex":
        # A hexagon is named by its column and row in the hexagon grid.
        frame.insert(0, "bin", [f"{i},{j}" for i, j in zip(frame.i, frame.j, strict=True)])
        frame["name"] = ""
        frame = frame.drop(columns=["i", "j"])
    frame["count"] = frame["count"].astype(int)
    frame.attrs["filters"] = filters
    frame.attrs["total"] = (
        session.scalar(select(func.count()).select_from(Case).where(*_clauses(filters, now))) or 0
    )
    return frame


def _hexagon_counts(srid: int, size: float, clauses: list[ColumnElement[bool]]) -> Select:
    """Cases per hexagon of `ST_HexagonGrid(size, ...)` in `srid` metres, by arithmetic per point.

    Joining ST_HexagonGrid to 1,000,000 points takes tens of seconds; instead each point's cell is
    computed: the hexagons are the Voronoi cells of their centres, so cube-rounding the point's
    axial coordinates finds it (flat-topped hexagons, edge = `size`, PostGIS's column i / row j
    numbering, odd columns half a row up). Only non-empty cells are built, with ST_Hexagon.
    """
    xy = func.ST_Transform(Case.location, srid)
    # OFFSET 0 keeps PostgreSQL from inlining the subqueries, which would repeat ST_Transform in
    # every reference to q and r below.
    points = select(func.ST_X(xy).label("x"), func.ST_Y(xy).label("y")).where(*clauses).offset(0).subquery()
    axial = (
        select(
            ((2 / 3) * points.c.x / size).label("q"),
            ((-points.c.x / 3 + math.sqrt(3) / 3 * points.c.y) / size).label("r"),
        )
        .offset(0)
        .subquery()
    )
    q, r = axial.c.q, axial.c.r
    rq, rr, rs = func.round(q), func.round(r), func.round(-q - r)
    dq, dr, ds = func.abs(rq - q), func.abs(rr - r), func.abs(rs + q + r)
    # Cube rounding: the coordinate that rounded furthest is recomputed from the other two.
    cell_q = case((and_(dq > dr, dq > ds), -rr - rs), else_=rq)
    cell_r = case((and_(dq > dr, dq > ds), rr), (dr > ds, -rq - rs), else_=rr)
    cells = select(
        cast(cell_q, Integer).label("i"), cast(cell_r + func.floor(cell_q / 2), Integer).label("j")
    ).subquery()
    counted = (
        select(cells.c.i, cells.c.j, func.count().label("count")).group_by(cells.c.i, cells.c.j).subquery()
    )
    origin = func.ST_SetSRID(func.ST_MakePoint(0, 0), srid)
    return select(
        counted.c.i,
        counted.c.j,
        counted.c.count,
        func.ST_Transform(func.ST_Hexagon(size, counted.c.i, counted.c.j, origin), 4326).label("geom"),
    ).order_by(counted.c.i, counted.c.j)


def _breaks(counts: np.ndarray) -> list[int]:
    """Upper bounds of up to 7 colour classes over the non-zero counts (rounded quantiles)."""
    positive = counts[counts > 0]
    if positive.size == 0:
        return []
    quantiles = np.quantile(positive, np.linspace(0, 1, len(PALETTE) + 1)[1:])
    return sorted({int(math.ceil(q)) for q in quantiles})


def city_density_map(
    session: Session,
    *,
    bins: Bins = "grid",
    hex_size_m: float = 250.0,
    category: str | None = None,
    min_age_days: float | None = None,
    max_age_days: float | None = None,
    overdue_only: bool = False,
    states: list[str] | tuple[str, ...] | None = None,
    tiles_url: str | None = None,
    tiles_attribution: str = "",
    asset_prefix: str = DEFAULT_PREFIX,
    now: datetime | None = None,
) -> folium.Map:
    """The whole city's unresolved cases as a choropleth of counts: never raw points."""
    frame = density_frame(
        session,
        bins=bins,
        hex_size_m=hex_size_m,
        category=category,
        min_age_days=min_age_days,
        max_age_days=max_age_days,
        overdue_only=overdue_only,
        states=states,
        now=now,
    )
    communities = areas_frame(session, levels=["community"])
    if communities.empty:
        raise NotFound("no community boundaries loaded", field="code")
    fmap = _base_map(
        tuple(communities.total_bounds),
        tiles_url,
        tiles_attribution,
        "全市未办结案件分布 · unresolved cases in the city · gridcase",
    )
    _add_landmarks(fmap, session)
    breaks = _breaks(frame["count"].to_numpy())
    colours = PALETTE[-len(breaks) :] if breaks else []

    def colour(n: int) -> str | None:
        for bound, fill in zip(breaks, colours, strict=True):
            if n <= bound:
                return fill
        return None

    shown = _drawable(frame[["bin", "name", "count", "geometry"]].fillna({"name": ""}))
    shown["fill"] = [colour(int(n)) if n else "" for n in shown["count"]]
    # folium checks tooltip fields against the first feature: hexagons with no case make none.
    tooltip = (
        None
        if shown.empty
        else folium.GeoJsonTooltip(
            fields=["bin", "name", "count"] if bins == "grid" else ["count"],
            aliases=["网格 grid", "名称 name", "未办结 unresolved"]
            if bins == "grid"
            else ["未办结 unresolved"],
        )
    )
    folium.GeoJson(
        shown.to_json(),
        name="未办结案件密度 unresolved cases per " + bins,
        style_function=lambda f: {
            "color": "#8a8f96",
            "weight": 0.5,
            "fillColor": f["properties"]["fill"] or "#ffffff",
            "fillOpacity": 0.75 if f["properties"]["fill"] else 0.05,
        },
        tooltip=tooltip,
    ).add_to(fmap)
    folium.GeoJson(
        _drawable(communities[["code", "name", "geometry"]]).to_json(),
        name="社区边界 communities",
        style_function=lambda _: {"color": "#1f3a5f", "weight": 1.5, "fill": False},
        tooltip=folium.GeoJsonTooltip(fields=["name", "code"], labels=False),
    ).add_to(fmap)
    names = folium.FeatureGroup(name="社区名称 community names")
    for name, point in zip(communities.name, communities.geometry.representative_point(), strict=True):
        _label(names, point, str(name), "gridcase-community")
    names.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)

    binned = int(frame["count"].sum())
    total = int(frame.attrs["total"])
    lower = 1
    # 0 first: a white area is one with no unresolved case, not one without data.
    rows = [
        '<div><i style="display:inline-block;width:14px;height:10px;background:#ffffff;'
        'border:1px solid #8a8f96;margin-right:6px"></i>0</div>'
    ]
    for bound, fill in zip(breaks, colours, strict=True):
        label = f"{lower}" if bound == lower else f"{lower}–{bound}"
        rows.append(
            f'<div><i style="display:inline-block;width:14px;height:10px;'
            f'background:{fill};margin-right:6px"></i>{label}</div>'
        )
        lower = bound + 1
    unit = "每网格 per grid" if bins == "grid" else f"每 {hex_size_m:g} m 六边形 per hexagon"
    legend = (
        f'<div class="gridcase-legend"><b>图例：未办结案件 unresolved cases</b><br>{unit}<br>'
        f"共 total <b>{total}</b>" + "".join(rows)
    )
    if total > binned:
        legend += f"<small>{total - binned} 件不在当前网格内 outside the current grids</small>"
    if described := frame.attrs["filters"].describe():
        legend += f"<br><small>{html.escape(described)}</small>"
    legend += _landmark_legend() + "</div>"
    _box(fmap, "bottom: 28px; right: 10px;", legend)
    _box(fmap, "top: 10px; left: 54px;", "<h1>全市未办结案件分布</h1>unresolved cases in the city")
    localize(fmap, asset_prefix)
    return fmap
