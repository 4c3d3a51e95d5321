"""Analyses for planners' notebooks: hotspots, hexagonal bins, seasonality, grid workload, re-cuts.

Framework-free: every function takes a SQLAlchemy session (or frames read through one) and returns
a (Geo)DataFrame or a small dataclass, so the notebooks in notebooks/ hold analysis, not domain
logic. Reading goes through `geopandas.read_postgis` on SQLAlchemy selects with bound parameters.

Geometry: areas and cases are stored in EPSG:4326 (lon/lat, degrees). Anything measured in metres
(hexagon size, areas, split axes) is done in UTM zone 49N (EPSG:32649, Chibi is at 113.9° E), and
results come back in EPSG:4326. Times are read as Asia/Shanghai local time; a period is
[start, end), dates meaning local midnight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geoalchemy2 import Geography, Geometry
from pyproj import Transformer
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    not_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Subquery

from geo.areas import areas_frame, current_generation
from geo.cases.workflow import TERMINAL
from geo.store.models import Account, Area, Case, CaseEvent, Category, Unit
from geo.validation import CODE_PATTERNS, Finding, check_areas

__all__ = [
    "NORM",
    "METRIC_SRID",
    "RecutProposal",
    "WorkloadNorm",
    "case_points",
    "flag_grids",
    "grid_workload",
    "hex_bins",
    "propose_recut",
    "repeat_hotspots",
    "seasonality",
    "unit_returns",
    "unresolved_by_grid",
]

CHINA = ZoneInfo("Asia/Shanghai")
METRIC_SRID = 32649  # UTM zone 49N: metres around Chibi (113.9° E)
WGS84_SRID = 4326
DAYS_PER_MONTH = 365.25 / 12
TERMINAL_STATES = sorted(str(s) for s in TERMINAL)

Moment = date | datetime | str | None


@dataclass(frozen=True)
class WorkloadNorm:
    """A target workload for one grid worker (网格员), and the band around it that counts as normal.

    ASSUMPTION, not a published figure: no national standard fixes how many cases a grid worker
    should handle. GB/T 34300-2017 (城乡社区网格化服务管理规范) and the 2019 central guidance size a
    grid at about 300–500 households so that one full-time worker can cover it; Chibi's published
    quarter (DOMAIN.md: 7,534 reports over 263 grids) gives 7,534 / 263 / 3 ≈ 9.5 cases per grid per
    month. We therefore take **10 cases per worker per month** as the norm, a grid above 1.5× the
    norm as too loaded and below 0.5× as too idle. Change it when a city publishes its own target.
    """

    cases_per_worker_month: float = 10.0
    high: float = 1.5
    low: float = 0.5
    source: str = (
        "assumption: 10 cases per grid worker per month (Chibi's published quarter averages 9.5 "
        "per grid per month; grids sized at 300–500 households per GB/T 34300-2017); "
        "too loaded above 1.5× the norm, too idle below 0.5×"
    )


NORM = WorkloadNorm()


# ------------------------------------------------------------------------------------ periods


def _moment(value: Moment) -> datetime | None:
    """A date is local midnight in China; a naive datetime is China local time; ISO text is parsed."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    return value if value.tzinfo else value.replace(tzinfo=CHINA)


def _period(start: Moment, end: Moment) -> tuple[datetime | None, datetime | None]:
    return _moment(start), _moment(end)


def _months(start: datetime, end: datetime) -> float:
    """Length of [start, end) in average months (365.25 / 12 days)."""
    return (end - start).total_seconds() / 86400 / DAYS_PER_MONTH


# ------------------------------------------------------------------------- the case selection


def _local(ts: Any) -> ColumnElement:
    """A timestamptz as Asia/Shanghai wall-clock time (for months and weeks as planners count them)."""
    return func.timezone("Asia/Shanghai", ts)


def _cases_subquery(start: datetime | None, end: datetime | None, as_of: datetime | None) -> Subquery:
    """Cases reported in the period with their state (as of `as_of`, from the event log) and flags.

    unresolved: the case is in no terminal state (closed, rejected, voided, merged) at `as_of`.
    past_deadline: it had a deadline (处置时限) and the unit had not reported it handled (first
    处置回告, or 销号 on the claim path) by then: handled late, or still unhandled at `as_of` (None:
    now). The deadline is the stored one (after approved extensions). This is a per-case map flag;
    the official indicator `overdue` (超期数: due cases not closed by their deadline) is defined in
    `geo.stats`.
    """
    handled = (
        select(CaseEvent.case_id, func.min(CaseEvent.at).label("handled_at"))
        .where(CaseEvent.action.in_(["handle", "close_off"]))
        .group_by(CaseEvent.case_id)
        .subquery("first_handled")
    )
    state: ColumnElement[Any]
    closed_at: ColumnElement[Any]
    if as_of is not None:
        # The state at `as_of` is the target state of the case's last event by then.
        ranked = (
            select(
                CaseEvent.case_id,
                CaseEvent.to_state.label("state_at"),
                func.row_number()
                .over(partition_by=CaseEvent.case_id, order_by=(CaseEvent.at.desc(), CaseEvent.id.desc()))
                .label("rank"),
            )
            .where(CaseEvent.at <= as_of)
            .subquery("ranked_events")
        )
        last = select(ranked.c.case_id, ranked.c.state_at).where(ranked.c.rank == 1).subquery("last_event")
        state = func.coalesce(last.c.state_at, literal("reported"))
        closed_at = case((Case.closed_at <= as_of, Case.closed_at), else_=None)
        handled_at = case((handled.c.handled_at <= as_of, handled.c.handled_at), else_=None)
        clock = func.coalesce(handled_at, literal(as_of))
    else:
        state = Case.__table__.c.state
        closed_at = Case.__table__.c.closed_at
        clock = func.coalesce(handled.c.handled_at, func.now())
    local = _local(Case.reported_at)
    stmt = (
        select(
            Case.id.label("case_id"),
            Case.tracking_code,
            Case.category_code,
            Category.name.label("category_name"),
            Category.name_en.label("category_name_en"),
            Category.kind.label("category_kind"),
            func.substr(Case.category_code, 1, 3).label("category_class"),
            Case.grid_code,
            Case.community_code,
            Case.street_code,
            Case.unit_code,
            func.coalesce(Case.time_limit_unit, Category.time_limit_unit).label("time_limit_unit"),
            state.label("state"),
            not_(state.in_(TERMINAL_STATES)).label("unresolved"),
            and_(Case.deadline_at.is_not(None), clock > Case.deadline_at).label("past_deadline"),
            handled.c.handled_at,
            Case.reported_at,
            Case.deadline_at,
            closed_at.label("closed_at"),
            func.to_char(local, "YYYY-MM").label("month"),
            # Week of the quarter, 1..14: the demo quarter is Jul–Sep, so this is "season" too.
            (
                cast(
                    func.floor(func.extract("epoch", local - func.date_trunc("quarter", local)) / 604800),
                    Integer,
                )
                + 1
            ).label("week_of_quarter"),
            Case.location,
        )
        .join(Category, Category.code == Case.category_code)
        .outerjoin(handled, handled.c.case_id == Case.id)
        .where(Case.merged_into_id.is_(None))
    )
    if as_of is not None:
        stmt = stmt.outerjoin(last, last.c.case_id == Case.id)
    if start is not None:
        stmt = stmt.where(Case.reported_at >= start)
    if end is not None:
        stmt = stmt.where(Case.reported_at < end)
    return stmt.subquery("c")


def _as_of(end: datetime | None, as_of: Moment) -> datetime | None:
    """States are read at `as_of`, by default the end of the period (None: the current state)."""
    return _moment(as_of) if as_of is not None else end


def _read(stmt: Select, session: Session, geom_col: str = "geometry") -> gpd.GeoDataFrame:
    frame = gpd.read_postgis(stmt, session.connection(), geom_col=geom_col)
    if frame.crs is None:
        frame = frame.set_crs(WGS84_SRID)
    return frame


def _localise(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for name in columns:
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], utc=True).dt.tz_convert(CHINA)
    return frame


def case_points(
    session: Session, *, start: Moment = None, end: Moment = None, as_of: Moment = None
) -> gpd.GeoDataFrame:
    """One row per case reported in [start, end): category, grid, unit, state, flags, point (4326)."""
    start_, end_ = _period(start, end)
    cases = _cases_subquery(start_, end_, _as_of(end_, as_of))
    stmt = select(*[c for c in cases.c if c.name != "location"], cases.c.location.label("geometry"))
    frame = _read(stmt.order_by(cases.c.reported_at, cases.c.case_id), session)
    return _localise(frame, "reported_at", "deadline_at", "closed_at", "handled_at")


_GROUPS = {"category", "category_class", "month", "week_of_quarter"}


def _group_columns(cases: Subquery, by: str | None) -> list[ColumnElement]:
    if by is None:
        return []
    if by not in _GROUPS:
        raise ValueError(f"by must be one of {sorted(_GROUPS)}, not {by!r}")
    return [cases.c.category_code if by == "category" else cases.c[by]]


def _counts(cases: Subquery) -> list[ColumnElement]:
    """Counts per place: reported, unresolved, past deadline."""
    return [
        func.count(cases.c.case_id).label("cases"),
        func.count(cases.c.case_id).filter(cases.c.unresolved).label("unresolved"),
        func.count(cases.c.case_id).filter(cases.c.past_deadline).label("past_deadline"),
    ]


def _current_grids(session: Session):
    generation = current_generation(session) or 0
    return and_(Area.level == "grid", Area.generation_low <= generation, Area.generation_high >= generation)


# ------------------------------------------------------------------------------------ hotspots


def unresolved_by_grid(
    session: Session,
    *,
    start: Moment = None,
    end: Moment = None,
    as_of: Moment = None,
    by: str | None = None,
) -> gpd.GeoDataFrame:
    """Per current grid (and `by`: category, category_class, month or week_of_quarter): reported,
    unresolved and past-deadline cases, with the unresolved share; grid polygons in EPSG:4326."""
    start_, end_ = _period(start, end)
    cases = _cases_subquery(start_, end_, _as_of(end_, as_of))
    groups = _group_columns(cases, by)
    counts = (
        select(cases.c.grid_code, *groups, *_counts(cases))
        .where(cases.c.grid_code.is_not(None))
        .group_by(cases.c.grid_code, *groups)
        .subquery("counts")
    )
    extra = [counts.c[g.name] for g in groups]
    stmt = (
        select(
            Area.code.label("grid_code"),
            Area.name.label("grid_name"),
            Area.parent_code.label("community_code"),
            *extra,
            func.coalesce(counts.c.cases, 0).label("cases"),
            func.coalesce(counts.c.unresolved, 0).label("unresolved"),
            func.coalesce(counts.c.past_deadline, 0).label("past_deadline"),
            Area.geom.label("geometry"),
        )
        .outerjoin(counts, counts.c.grid_code == Area.code)
        .where(_current_grids(session))
        .order_by(Area.code, *extra)
    )
    frame = _read(stmt, session)
    frame["unresolved_share"] = frame["unresolved"] / frame["cases"].where(frame["cases"] > 0)
    return frame


def _hexagons(size_m: float, bounds: ColumnElement, name: str):
    """`ST_HexagonGrid(size_m, bounds)` as a table (geom, i, j); the lattice is anchored at the
    SRID's origin, so (i, j) name the same hexagon whatever bounds produced it."""
    return func.ST_HexagonGrid(literal(float(size_m)), bounds).table_valued(
        column("geom", Geometry), column("i", Integer), column("j", Integer), name=name
    )


def _case_hexagons(cases: Subquery, size_m: float, srid: int) -> Subquery:
    """(case_id, i, j): the hexagon holding each case, found per point with a LATERAL hexagon grid
    over the point's own bounds (one or two candidates, no full-lattice join). A point on an edge
    shared by two hexagons goes to the one with the smallest (i, j)."""
    point = func.ST_Transform(cases.c.location, srid)
    hexes = _hexagons(size_m, point, "hex").lateral()
    ranked = (
        select(
            cases.c.case_id,
            hexes.c.i,
            hexes.c.j,
            func.row_number()
            .over(partition_by=cases.c.case_id, order_by=(hexes.c.i, hexes.c.j))
            .label("rank"),
        )
        .select_from(cases)
        .join(hexes, func.ST_Intersects(hexes.c.geom, point))
        .subquery("ranked_hex")
    )
    return select(ranked.c.case_id, ranked.c.i, ranked.c.j).where(ranked.c.rank == 1).subquery("case_hex")


def hex_bins(
    session: Session,
    size_m: float,
    *,
    start: Moment = None,
    end: Moment = None,
    as_of: Moment = None,
    by: str | None = None,
    srid: int = METRIC_SRID,
) -> gpd.GeoDataFrame:
    """Hexagonal bins over the current grids, with reported, unresolved and past-deadline counts.

    PostGIS `ST_HexagonGrid(size_m, ...)` in a metric SRID (default EPSG:32649, UTM 49N), where
    `size_m` is the hexagon's edge length (= circumradius) in metres; returned in EPSG:4326. Every
    hexagon touching a current grid is returned, with zeros where nothing was reported.
    """
    if size_m <= 0:
        raise ValueError("size_m must be positive (metres)")
    start_, end_ = _period(start, end)
    cases = _cases_subquery(start_, end_, _as_of(end_, as_of))
    grids = _current_grids(session)
    assigned = _case_hexagons(cases, size_m, srid)
    groups = _group_columns(cases, by)
    counts = (
        select(assigned.c.i, assigned.c.j, *groups, *_counts(cases))
        .join_from(assigned, cases, cases.c.case_id == assigned.c.case_id)
        .group_by(assigned.c.i, assigned.c.j, *groups)
        .subquery("counts")
    )
    extra = [counts.c[g.name] for g in groups]
    bounds = (
        select(func.ST_Transform(func.ST_Envelope(func.ST_Collect(Area.geom)), srid))
        .where(grids)
        .scalar_subquery()
    )
    lattice = _hexagons(size_m, bounds, "lattice")
    cell = func.ST_Transform(lattice.c.geom, WGS84_SRID)
    touches_grids = select(Area.id).where(grids, func.ST_Intersects(Area.geom, cell)).exists()
    cells = select(lattice.c.i, lattice.c.j, cell.label("geom")).where(touches_grids).subquery("cells")
    stmt = (
        select(
            cells.c.i,
            cells.c.j,
            *extra,
            func.coalesce(counts.c.cases, 0).label("cases"),
            func.coalesce(counts.c.unresolved, 0).label("unresolved"),
            func.coalesce(counts.c.past_deadline, 0).label("past_deadline"),
            cells.c.geom.label("geometry"),
        )
        .outerjoin(counts, and_(counts.c.i == cells.c.i, counts.c.j == cells.c.j))
        .order_by(cells.c.i, cells.c.j, *extra)
    )
    frame = _read(stmt, session)
    frame.insert(0, "hex_id", frame["i"].astype(str) + "_" + frame["j"].astype(str))
    frame["size_m"] = float(size_m)
    return frame


def _case_hex_ids(session: Session, start: Moment, end: Moment, size_m: float, srid: int) -> pd.DataFrame:
    """The hexagon id (same lattice as `hex_bins`) of each case in the period, from PostGIS."""
    start_, end_ = _period(start, end)
    assigned = _case_hexagons(_cases_subquery(start_, end_, None), size_m, srid)
    rows = pd.DataFrame(session.execute(select(assigned)).all(), columns=["case_id", "i", "j"])
    rows["hex_id"] = rows["i"].astype(str) + "_" + rows["j"].astype(str)
    return rows[["case_id", "hex_id"]]


def repeat_hotspots(
    session: Session,
    *,
    start: Moment = None,
    end: Moment = None,
    window_days: float = 30,
    min_repeats: int = 3,
    hex_size_m: float | None = None,
    srid: int = METRIC_SRID,
) -> gpd.GeoDataFrame:
    """Places (grids, or hexagons of `hex_size_m` metres) where the same category keeps coming back.

    A report is a *repeat* when the same category was reported in the same place within
    `window_days` before it. A place × category is a hotspot with at least `min_repeats` repeats.
    Rows are sorted by repeats, most first; geometry is the grid or hexagon in EPSG:4326.
    """
    cases = case_points(session, start=start, end=end)
    cases = cases[cases["grid_code"].notna()].copy()
    if hex_size_m is None:
        cases["place"] = cases["grid_code"]
        places = unresolved_by_grid(session, start=start, end=end)[
            ["grid_code", "grid_name", "community_code", "geometry"]
        ].rename(columns={"grid_code": "place"})
    else:
        hex_ids = _case_hex_ids(session, start, end, hex_size_m, srid)
        cases = cases.merge(hex_ids, on="case_id", how="inner")
        cases["place"] = cases["hex_id"]
        places = hex_bins(session, hex_size_m, start=start, end=end, srid=srid)[
            ["hex_id", "geometry"]
        ].rename(columns={"hex_id": "place"})
    cases = cases.sort_values(["place", "category_code", "reported_at"])
    gap = cases.groupby(["place", "category_code"])["reported_at"].diff()
    cases["repeat"] = gap.notna() & (gap <= pd.Timedelta(days=window_days))
    summary = cases.groupby(["place", "category_code", "category_name"], as_index=False).agg(
        cases=("case_id", "size"),
        repeats=("repeat", "sum"),
        unresolved=("unresolved", "sum"),
        first_reported=("reported_at", "min"),
        last_reported=("reported_at", "max"),
    )
    summary = summary[summary["repeats"] >= min_repeats]
    out = places.merge(summary, on="place", how="inner")
    out = out.sort_values(["repeats", "cases", "place"], ascending=[False, False, True])
    out = gpd.GeoDataFrame(out.reset_index(drop=True), geometry="geometry", crs=WGS84_SRID)
    out["place_kind"] = "grid" if hex_size_m is None else "hex"
    return out


def seasonality(
    session: Session,
    *,
    start: Moment = None,
    end: Moment = None,
    period: str = "month",
    by: str = "category_class",
) -> pd.DataFrame:
    """Cases per period (`month` or `week_of_quarter`) and `by` (category, category_class or
    category_kind): reported, unresolved, past deadline, and each group's share of its period.

    The demo holds one quarter (Jul–Sep), so "season" there means month or week of the quarter.
    """
    if period not in ("month", "week_of_quarter"):
        raise ValueError("period must be 'month' or 'week_of_quarter'")
    if by not in ("category", "category_class", "category_kind"):
        raise ValueError("by must be 'category', 'category_class' or 'category_kind'")
    start_, end_ = _period(start, end)
    cases = _cases_subquery(start_, end_, end_)
    key = cases.c.category_code if by == "category" else cases.c[by]
    stmt = (
        select(cases.c[period], key.label(by), *_counts(cases))
        .group_by(cases.c[period], key)
        .order_by(cases.c[period], key)
    )
    frame = pd.DataFrame(session.execute(stmt).mappings().all())
    if frame.empty:
        return pd.DataFrame(columns=[period, by, "cases", "unresolved", "past_deadline", "share"])
    frame["share"] = frame["cases"] / frame.groupby(period)["cases"].transform("sum")
    return frame


def unit_returns(session: Session, *, start: Moment = None, end: Moment = None) -> pd.DataFrame:
    """One row per return (回退) in [start, end): the unit that returned the case, its reason
    (`case_event.note`), the case's category, grid and community, and where the case went next."""
    start_, end_ = _period(start, end)
    nxt = (
        select(func.min(CaseEvent.at))
        .where(CaseEvent.case_id == Case.id, CaseEvent.action == "redispatch")
        .correlate(Case)
        .scalar_subquery()
    )
    stmt = (
        select(
            CaseEvent.case_id,
            CaseEvent.at.label("returned_at"),
            CaseEvent.unit_code,
            Unit.name.label("unit_name"),
            Unit.kind.label("unit_kind"),
            CaseEvent.note.label("reason"),
            Case.category_code,
            Category.name.label("category_name"),
            Category.name_en.label("category_name_en"),
            Category.kind.label("category_kind"),
            Case.grid_code,
            Case.community_code,
            Case.state.label("state_now"),
            Case.unit_code.label("unit_now"),
            nxt.label("redispatched_at"),
        )
        .join(Case, Case.id == CaseEvent.case_id)
        .join(Category, Category.code == Case.category_code)
        .outerjoin(Unit, Unit.code == CaseEvent.unit_code)
        .where(CaseEvent.action == "return")
        .order_by(CaseEvent.at, CaseEvent.id)
    )
    if start_ is not None:
        stmt = stmt.where(CaseEvent.at >= start_)
    if end_ is not None:
        stmt = stmt.where(CaseEvent.at < end_)
    frame = pd.read_sql(stmt, session.connection())
    return _localise(frame, "returned_at", "redispatched_at")


# ------------------------------------------------------------------------------------ workload


def grid_workload(
    session: Session, start: Moment, end: Moment, *, norm: WorkloadNorm = NORM
) -> gpd.GeoDataFrame:
    """Cases per current grid and per grid worker per month in [start, end), against `norm`.

    Workers per grid: the inspector accounts (网格员) assigned to it, and at least one: every grid has
    a grid worker even when their account is not in gridcase (the demo assigns only one inspector).
    `load_ratio` = cases per worker per month / norm.
    """
    start_, end_ = _period(start, end)
    if start_ is None or end_ is None or end_ <= start_:
        raise ValueError("grid_workload needs a period with start before end")
    cases = _cases_subquery(start_, end_, end_)
    counts = (
        select(cases.c.grid_code, *_counts(cases))
        .where(cases.c.grid_code.is_not(None))
        .group_by(cases.c.grid_code)
        .subquery("counts")
    )
    workers = (
        select(func.count(Account.id))
        .where(
            Account.role == "inspector",
            Account.active.is_(True),
            Area.code == func.any(Account.grid_codes),
        )
        .scalar_subquery()
    )
    stmt = (
        select(
            Area.code.label("grid_code"),
            Area.name.label("grid_name"),
            Area.parent_code.label("community_code"),
            func.greatest(workers, 1).label("workers"),
            func.coalesce(counts.c.cases, 0).label("cases"),
            func.coalesce(counts.c.unresolved, 0).label("unresolved"),
            func.coalesce(counts.c.past_deadline, 0).label("past_deadline"),
            # Area on the spheroid (geography), in true square metres.
            (func.ST_Area(cast(Area.geom, Geography(srid=WGS84_SRID))) / 1e6).label("area_km2"),
            Area.geom.label("geometry"),
        )
        .outerjoin(counts, counts.c.grid_code == Area.code)
        .where(_current_grids(session))
        .order_by(Area.code)
    )
    frame = _read(stmt, session)
    months = _months(start_, end_)
    frame["months"] = months
    frame["cases_per_month"] = frame["cases"] / months
    frame["cases_per_worker_month"] = frame["cases_per_month"] / frame["workers"]
    frame["norm"] = norm.cases_per_worker_month
    frame["load_ratio"] = frame["cases_per_worker_month"] / norm.cases_per_worker_month
    frame["cases_per_km2"] = frame["cases"] / frame["area_km2"]
    frame.attrs["norm"] = norm
    return frame


def flag_grids(
    workload: gpd.GeoDataFrame, high: float | None = None, low: float | None = None
) -> gpd.GeoDataFrame:
    """Add `flag`: 'too loaded' above `high` × norm, 'too idle' below `low` × norm, else 'normal'."""
    norm: WorkloadNorm = workload.attrs.get("norm", NORM)
    high = norm.high if high is None else high
    low = norm.low if low is None else low
    if not low < high:
        raise ValueError("low must be below high")
    out = workload.copy()
    out["flag"] = np.select(
        [out["load_ratio"] > high, out["load_ratio"] < low], ["too loaded", "too idle"], "normal"
    )
    out.attrs = {**workload.attrs, "high": high, "low": low}
    return out


# -------------------------------------------------------------------------------------- re-cut


@dataclass
class RecutProposal:
    """A proposed re-cut: the new grid layer, what changed, workload after, and validation findings."""

    grids: gpd.GeoDataFrame  # every grid after the re-cut: level, code, name, parent_code, geometry
    changes: pd.DataFrame  # one row per change: action (merge/split), old codes, new codes
    workload: gpd.GeoDataFrame  # load per new grid (when cases were given), else empty
    findings: list[Finding] = field(default_factory=list)  # check_areas on the new layer: must be []

    @property
    def valid(self) -> bool:
        """True when the new layer tiles every community with no gap and no overlap."""
        return not self.findings


def _next_serials(codes: list[str], community: str) -> list[str]:
    """Unused 3-digit serials in a community, after the highest one in use (old codes stay retired)."""
    used = [int(c[12:]) for c in codes if c.startswith(community)]
    start = max(used, default=0) + 1
    return [f"{community}{n:03d}" for n in range(start, 1000)]


def _bisect(geometry, points: np.ndarray, k: int, to_metric) -> list:
    """Cut a grid into `k` pieces by recursive bisection across the longer axis (in metres), each cut
    at the case quantile that shares the load in proportion to the pieces on either side.

    Cuts are lines of constant longitude or latitude in EPSG:4326: both sides of a cut get exactly
    the same new vertices and the outer vertices stay untouched, so the pieces tile the grid.
    """
    if k <= 1:
        return [geometry]
    minx, miny, maxx, maxy = geometry.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    # Width and height of the bounding box in metres (a degree of longitude is shorter than one of
    # latitude away from the equator, so degrees cannot be compared directly).
    xs, ys = to_metric([minx, maxx, cx, cx], [cy, cy, miny, maxy])
    width = math.dist((xs[0], ys[0]), (xs[1], ys[1]))
    height = math.dist((xs[2], ys[2]), (xs[3], ys[3]))
    axis = 0 if width >= height else 1
    lo, hi = (minx, maxx) if axis == 0 else (miny, maxy)
    left_k = k // 2
    share = left_k / k
    cut = float(np.quantile(points[:, axis], share)) if len(points) >= 2 else lo + (hi - lo) * share
    # Keep the cut inside the middle 80% of the extent so no piece becomes a sliver.
    cut = min(max(cut, lo + 0.1 * (hi - lo)), hi - 0.1 * (hi - lo))
    if axis == 0:
        boxes = shapely.box(minx - 1, miny - 1, cut, maxy + 1), shapely.box(cut, miny - 1, maxx + 1, maxy + 1)
    else:
        boxes = shapely.box(minx - 1, miny - 1, maxx + 1, cut), shapely.box(minx - 1, cut, maxx + 1, maxy + 1)
    below = points[:, axis] < cut
    return _bisect(shapely.intersection(geometry, boxes[0]), points[below], left_k, to_metric) + _bisect(
        shapely.intersection(geometry, boxes[1]), points[~below], k - left_k, to_metric
    )


def _polygonal(geometry) -> shapely.MultiPolygon:
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, shapely.Polygon) and not p.is_empty]
    return shapely.MultiPolygon(parts)


def propose_recut(
    grids_gdf: gpd.GeoDataFrame,
    workload: gpd.GeoDataFrame,
    *,
    cases: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    high: float | None = None,
    low: float | None = None,
    tolerance_m2: float = 1.0,
    max_pieces: int = 16,
) -> RecutProposal:
    """Propose a re-cut: merge pairs of too-idle neighbouring grids within a community (while the
    pair stays at or under the norm), and split each too-loaded grid by recursive bisection into
    ceil(load ratio) pieces (at most `max_pieces`), each near the norm.

    `grids_gdf` holds the current grids (code, name, parent_code, geometry in EPSG:4326, e.g. from
    `geo.areas.areas_frame`); `workload` comes from `grid_workload` (flagged or not); `cases`
    (from `case_points`) places the split at case quantiles, so pieces share the load evenly.
    Changed grids get new 15-digit codes (community + next unused serial); old codes are retired,
    never reused, so history keeps the grid a case was reported in. The new layer is checked with
    `geo.validation.check_areas` against the communities (no gap, no overlap, inside its community);
    `findings` must be empty.
    """
    flagged = workload if "flag" in workload.columns else flag_grids(workload, high, low)
    if high is not None or low is not None:
        flagged = flag_grids(workload, high, low)
    load = flagged.set_index("grid_code")
    grids = grids_gdf.copy()
    if "parent_code" not in grids.columns:
        grids["parent_code"] = grids["code"].str[:12]
    grids = grids.set_index("code", drop=False)
    grids = grids.to_crs(WGS84_SRID)
    to_metric = Transformer.from_crs(WGS84_SRID, METRIC_SRID, always_xy=True).transform

    removed: set[str] = set()
    new_rows: list[dict] = []
    changes: list[dict] = []
    all_codes = list(grids["code"])
    serials: dict[str, list[str]] = {}

    def new_code(community: str) -> str:
        if community not in serials:
            serials[community] = _next_serials(all_codes, community)
        if not serials[community]:
            raise ValueError(f"community {community} has no free grid serial left (001–999)")
        code = serials[community].pop(0)
        if not CODE_PATTERNS["grid"].fullmatch(code):
            raise ValueError(f"proposed code {code} is not 15 digits")
        return code

    # Splits: a too-loaded grid into k = ceil(load ratio) pieces, each near the norm.
    for code in flagged.loc[flagged["flag"] == "too loaded", "grid_code"]:
        grid = grids.loc[code]
        ratio = float(load.at[code, "load_ratio"])
        k = min(max(2, math.ceil(ratio)), max_pieces)
        pts = np.empty((0, 2))
        if cases is not None:
            inside = cases[cases["grid_code"] == code]
            pts = np.column_stack([inside.geometry.x.to_numpy(), inside.geometry.y.to_numpy()])
        pieces = _bisect(grid.geometry, pts, k, to_metric)
        codes = []
        for n, piece in enumerate(pieces, start=1):
            c = new_code(grid["parent_code"])
            codes.append(c)
            new_rows.append(
                {
                    "level": "grid",
                    "code": c,
                    "name": f"{grid['name']}-{n}",
                    "parent_code": grid["parent_code"],
                    "geometry": _polygonal(piece),
                }
            )
        removed.add(code)
        changes.append(
            {
                "action": "split",
                "community_code": grid["parent_code"],
                "old_codes": [code],
                "new_codes": codes,
                "load_ratio_before": ratio,
            }
        )

    # Merges: pair each too-idle grid with its least-loaded too-idle neighbour in the same community
    # (sharing an edge, not only a corner), while the pair stays under the norm.
    idle = flagged[(flagged["flag"] == "too idle") & ~flagged["grid_code"].isin(removed)]
    idle = idle.sort_values(["load_ratio", "grid_code"])
    idle_codes = set(idle["grid_code"])
    paired: set[str] = set()
    for code in idle["grid_code"]:
        if code in paired:
            continue
        grid = grids.loc[code]
        candidates = [
            other
            for other in idle_codes - paired - {code}
            if grids.at[other, "parent_code"] == grid["parent_code"]
            and shapely.intersection(grid.geometry, grids.at[other, "geometry"]).length > 0
        ]
        candidates = [
            c for c in candidates if float(load.at[code, "load_ratio"] + load.at[c, "load_ratio"]) <= 1.0
        ]
        if not candidates:
            continue
        other = min(candidates, key=lambda c: (float(load.at[c, "load_ratio"]), c))
        merged = shapely.union_all([grid.geometry, grids.at[other, "geometry"]])
        c = new_code(grid["parent_code"])
        new_rows.append(
            {
                "level": "grid",
                "code": c,
                "name": f"{grid['name']}+{grids.at[other, 'name']}",
                "parent_code": grid["parent_code"],
                "geometry": _polygonal(merged),
            }
        )
        paired |= {code, other}
        removed |= {code, other}
        changes.append(
            {
                "action": "merge",
                "community_code": grid["parent_code"],
                "old_codes": sorted([code, other]),
                "new_codes": [c],
                "load_ratio_before": float(load.at[code, "load_ratio"] + load.at[other, "load_ratio"]),
            }
        )

    kept = grids.loc[~grids["code"].isin(removed), ["code", "name", "parent_code", "geometry"]]
    kept = kept.assign(level="grid")
    added = gpd.GeoDataFrame(
        new_rows,
        columns=["level", "code", "name", "parent_code", "geometry"],
        geometry="geometry",
        crs=WGS84_SRID,
    )
    layer = gpd.GeoDataFrame(
        pd.concat([kept.reset_index(drop=True), added], ignore_index=True),
        geometry="geometry",
        crs=WGS84_SRID,
    )
    layer = layer[["level", "code", "name", "parent_code", "geometry"]]
    layer["geometry"] = [_polygonal(g) for g in layer.geometry]
    layer = layer.sort_values("code").reset_index(drop=True)

    # Check the whole new layer, with the communities as the parents the grids must tile.
    existing = None
    if communities is not None:
        existing = communities.assign(level="community")[["level", "code", "name", "parent_code", "geometry"]]
    _, findings = check_areas(layer, existing=existing, tolerance_m2=tolerance_m2)

    after = gpd.GeoDataFrame(columns=["code", "cases"], geometry=[], crs=WGS84_SRID)
    if cases is not None:
        joined = gpd.sjoin(
            cases[["case_id", "geometry"]], layer[["code", "geometry"]], how="inner", predicate="intersects"
        )
        per = joined.drop_duplicates("case_id").groupby("code").size().rename("cases")
        after = layer.merge(per, left_on="code", right_index=True, how="left").fillna({"cases": 0})
        months = float(flagged["months"].iloc[0]) if "months" in flagged.columns else 1.0
        norm: WorkloadNorm = flagged.attrs.get("norm", NORM)
        # New grids get one worker each; kept grids keep theirs.
        workers = load["workers"].reindex(after["code"]).fillna(1).to_numpy()
        after["workers"] = workers
        after["cases_per_worker_month"] = after["cases"] / months / after["workers"]
        after["load_ratio"] = after["cases_per_worker_month"] / norm.cases_per_worker_month
        after["new"] = after["code"].isin(added["code"])
    return RecutProposal(
        grids=layer,
        changes=pd.DataFrame(
            changes, columns=["action", "community_code", "old_codes", "new_codes", "load_ratio_before"]
        ),
        workload=after,
        findings=findings,
    )


def communities_frame(session: Session) -> gpd.GeoDataFrame:
    """Current communities (社区) in EPSG:4326, the parents a re-cut must keep tiled."""
    return areas_frame(session, levels=["community"])


def grids_frame(session: Session) -> gpd.GeoDataFrame:
    """Current grids (网格) in EPSG:4326."""
    return areas_frame(session, levels=["grid"])
