"""The Chibi demo: real county boundary, synthetic urban-core grids, units, layers and a quarter of cases.

Loading is idempotent: reference files are imported through the same validated importers as
`gridcase import` (an unchanged file writes nothing), and the seeded quarter of cases is generated
only once. The case figures follow the published Chibi quarter (DOMAIN.md): 7,534 reported,
7,389 filed and dispatched, 6,967 closed (disposal rate 94.29%).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict, cast
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import CursorResult, func, insert, select, text
from sqlalchemy.orm import Session

from geo import importing, stats
from geo.areas import areas_frame, count_by_level
from geo.community import register_seed as community_register
from geo.community.demo_seed import seed_community
from geo.store import Store
from geo.store.models import (
    Account,
    BoundaryGeneration,
    Case,
    CaseEvent,
    Category,
    GridResponsibility,
    ReferenceVersion,
    Unit,
)

CHINA = ZoneInfo("Asia/Shanghai")
SEED = 421281
QUARTER_START = datetime(2026, 7, 1, tzinfo=CHINA)
QUARTER_DAYS = 92
REPORTED, DISPATCHED, CLOSED = 7534, 7389, 6967
DEMO_MARKER = "demo_cases"
TODAY_MARKER = "demo_today"

# Open cases at the end of the quarter (dispatched but not closed: 7,389 − 6,967 = 422).
OPEN_STATES = {"dispatched": 80, "signed": 120, "handled": 110, "returned": 22, "parked": 40, "rework": 50}
# Reported but never dispatched (7,534 − 7,389 = 145).
NOT_DISPATCHED = {"rejected": 118, "voided": 27}
CHANNELS = ["inspector", "resident", "hotline_12345", "video_patrol", "referral"]
CHANNEL_WEIGHTS = [0.55, 0.15, 0.2, 0.07, 0.03]
INSPECTORS = [f"inspector{n:02d}" for n in range(1, 31)]


def data_dir() -> Path:
    """Where the demo files are (GRIDCASE_DATA_DIR, else the repository's data/chibi)."""
    if env := os.environ.get("GRIDCASE_DATA_DIR"):
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data" / "chibi"


@dataclass
class DemoReport:
    """What load_demo did and what the database now holds."""

    imports: list[importing.ImportResult] = field(default_factory=list)
    cases_created: int = 0
    today_created: int = 0  # today's cases in the early queues (TODAY), once
    accounts_created: int = 0
    community_rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the console."""
        lines = []  # the imports were logged as they ran
        lines.append(
            f"cases: {self.cases_created} created"
            if self.cases_created
            else "cases: demo quarter already loaded"
        )
        if self.today_created:
            lines.append(f"today's cases: {self.today_created} created in the early queues")
        if self.accounts_created:
            lines.append(
                f"demo accounts: {self.accounts_created} created (password {DEMO_PASSWORD!r}: see README)"
            )
        lines.append("now: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        return "\n".join(lines)


def load_demo(
    store: Store, folder: Path | None = None, log: Callable[[str], None] | None = None, cases: bool = True
) -> DemoReport:
    """Import the demo reference data and generate the demo quarter of cases, once."""
    folder = folder or data_dir()
    report = DemoReport()
    steps = [
        ("grids", folder / "boundary.geojson"),
        ("grids", folder / "areas.geojson"),
        ("units", folder / "units.csv"),
        ("categories", folder / "categories.csv"),
        ("layers", folder / "layers.geojson"),
    ]
    for kind, path in steps:
        with store.transaction() as session:
            result = importing.IMPORTERS[kind](session, path)
        report.imports.append(result)
        if log:
            log(result.summary())
    with store.transaction() as session:
        # Serialise concurrent demo loads: only one generates the cases.
        session.execute(text("SELECT pg_advisory_xact_lock(421281)"))
        done = session.scalar(select(ReferenceVersion.version).where(ReferenceVersion.name == DEMO_MARKER))
        if not done and cases:
            report.cases_created = generate_cases(session)
            rate_demo_quarter(session)
            session.add(ReferenceVersion(name=DEMO_MARKER, version=1))
            stats.fold_rollup(session)  # the bulk load's rollup deltas, folded at once
    with store.transaction() as session:
        report.accounts_created = create_demo_accounts(session)
    report.community_rows = seed_community(store, cases=cases)  # 社区治理: issue 16's lists and round tables
    if cases:
        report.today_created = add_todays_cases(store)
    community_register.seed(store, cases)  # commitments (三方联动) and the reception register (会客室)
    if report.cases_created:
        # Fresh statistics after the bulk load, or the planner guesses row counts badly.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    with store.transaction() as session:
        report.counts = {
            **count_by_level(session),
            "units": session.scalar(select(func.count()).select_from(Unit)) or 0,
            "cases": session.scalar(select(func.count()).select_from(Case)) or 0,
        }
    return report


DEMO_PASSWORD = "gridcase-demo"
#: The demo's accounts, one per role and named after it (`gridcase user remove-demo` removes them).
DEMO_USERNAMES: tuple[str, ...] = (
    "inspector",
    "resident",
    "operator",
    "dispatcher",
    "unit_handler",
    "admin",
    "planner",
)
DEMO_USERNAMES += ("community_staff", "branch_secretary")  # geo/community/demo_seed.py makes them


class AccountExtras(TypedDict, total=False):
    """What a demo account has besides its role: `add_account`'s keyword arguments."""

    unit_code: str
    grid_codes: list[str]
    display_name: str


def create_demo_accounts(session: Session) -> int:
    """One account per role (password DEMO_PASSWORD); the inspector walks the North Canal grids."""
    from geo.accounts import add_account

    canal_grids: list[str] = list(
        session.scalars(
            text(
                """
        SELECT a.code FROM area a JOIN responsibility_layer l ON l.name = '北渠'
        WHERE a.level = 'grid' AND ST_Intersects(a.geom, l.zone)
          AND a.generation_high = (SELECT max(id) FROM boundary_generation)
        ORDER BY a.code
        """
            )
        )
    )
    wanted: list[tuple[str, AccountExtras]] = [
        ("inspector", {"grid_codes": canal_grids, "display_name": "网格员 (北渠沿线)"}),
        ("resident", {"display_name": "市民"}),
        ("operator", {"display_name": "受理员/值班长"}),
        ("dispatcher", {"display_name": "派遣员"}),
        ("unit_handler", {"unit_code": "WATER", "display_name": "水利和湖泊局 经办人"}),
        ("admin", {"display_name": "管理员"}),
        ("planner", {"display_name": "规划/领导"}),
    ]
    created = 0
    for role, extra in wanted:
        if session.scalar(select(func.count()).select_from(Account).where(Account.username == role)):
            continue
        add_account(session, role, DEMO_PASSWORD, role, **extra)
        created += 1
    return created


# -- the seeded quarter of cases ----------------------------------------------------------------
# -- today's cases: the early queues a newcomer works first ---------------------------------------
class _TodayCase(TypedDict):
    where: str  # "canal" (the water bureau's North Canal), "grid" (anywhere in the core), "outside"
    category: str
    text: str
    by: str  # the account that reports it
    channel: str | None
    upto: str  # the last action done to it


#: Today's cases and the queue each ends in: 待受理 (two of them unroutable, in triage), 待立案,
#: 待派遣, the water bureau's 待签收 and 已签收 (one asking for more time). The seeded quarter ends
#: on 30 September, so without these every early queue of a fresh demo is empty.
_UPTO = ("report", "verify", "file", "dispatch", "sign", "request_extension")
TODAY: tuple[_TodayCase, ...] = tuple(
    _TodayCase(where=w, category=c, text=t, by=b, channel=ch, upto=u)
    for w, c, t, b, ch, u in [
        ("canal", "E0102", "北渠边有少量垃圾", "inspector", None, "report"),
        ("canal", "E0106", "北渠水面漂浮塑料袋", "inspector", None, "report"),
        ("grid", "C0110", "路灯不亮，晚上很黑", "operator", "hotline_12345", "report"),
        ("grid", "E0104", "路面有大片油污", "operator", "video_patrol", "report"),
        ("grid", "C0205", "人行道板松动，容易绊倒", "inspector", None, "report"),
        ("grid", "E0105", "楼道口乱堆建材", "operator", "resident", "report"),
        ("grid", "C0302", "垃圾箱破损", "inspector", None, "report"),
        ("outside", "E0102", "来电称路边有垃圾，地址说不清", "operator", "hotline_12345", "report"),
        ("outside", "E0105", "来电称有人乱堆杂物，位置不详", "operator", "hotline_12345", "report"),
        ("canal", "E0102", "渠边垃圾堆积", "inspector", None, "verify"),
        ("grid", "C0402", "行道树枝条断裂悬挂", "inspector", None, "verify"),
        ("grid", "E0101", "屋顶加建彩钢棚", "operator", "referral", "verify"),
        ("grid", "C0203", "道路护栏被撞歪", "inspector", None, "verify"),
        ("grid", "E0103", "拆迁后渣土未清运", "operator", "hotline_12345", "verify"),
        ("canal", "C0602", "北渠护栏缺了一段", "inspector", None, "file"),
        ("canal", "E0102", "渠边有人倾倒生活垃圾", "inspector", None, "file"),
        ("grid", "C0301", "公厕水龙头坏了", "operator", "hotline_12345", "file"),
        ("grid", "C0201", "路口信号灯不亮", "inspector", None, "file"),
        ("grid", "E0108", "空地有人焚烧垃圾", "operator", "video_patrol", "file"),
        ("grid", "C0204", "公交站亭玻璃破裂", "inspector", None, "file"),
        ("canal", "E0102", "北渠桥下垃圾", "inspector", None, "dispatch"),
        ("canal", "E0106", "渠面有油污", "inspector", None, "dispatch"),
        ("canal", "C0601", "防汛沙袋破损", "inspector", None, "dispatch"),
        ("grid", "E0104", "菜市场门口路面脏", "inspector", None, "dispatch"),
        ("grid", "C0403", "绿地被踩出裸土", "inspector", None, "dispatch"),
        ("grid", "E0107", "小区旁绿地有垃圾", "operator", "hotline_12345", "dispatch"),
        ("canal", "E0102", "北渠边垃圾未清", "inspector", None, "sign"),
        ("canal", "C0602", "护栏锈蚀松动", "inspector", None, "sign"),
        ("canal", "C0601", "防汛闸门漏水，需要更换配件", "inspector", None, "request_extension"),
    ]
)
#: Far outside the urban core's grids: routing sends an event there to triage (a component would
#: still go to its owner: 部件先属主).
OUTSIDE = (113.5, 29.5)


def add_todays_cases(store: Store, now: datetime | None = None) -> int:
    """Today's cases in the early queues (TODAY), through the same intake and workflow as people's
    (real routing with names, events, deadlines, rollup), once; none while today is still within
    a month of the seeded quarter (its published figures are tested). The number created."""
    from geo.accounts import actor_of
    from geo.cases.service import CaseContext, Channel, ReportIn, act, submit_report
    from geo.cases.workflow import ActionIn
    from geo.routing import Router
    from geo.storage import blob_store

    now = now or datetime.now(CHINA)
    if now < QUARTER_START + timedelta(days=QUARTER_DAYS + 31):
        return 0
    with store.transaction() as session:
        session.execute(text("SELECT pg_advisory_xact_lock(421282)"))
        if session.scalar(select(ReferenceVersion.version).where(ReferenceVersion.name == TODAY_MARKER)):
            return 0
        actors = {a.username: actor_of(a) for a in session.scalars(select(Account))}
        points = _today_points(session, np.random.default_rng(SEED + 1))
        # Spread over the last three hours of today (China time), oldest first; but routed by the
        # boundaries in force, so not before they were loaded (on a fresh demo: moments ago).
        loaded = session.scalar(select(func.max(BoundaryGeneration.valid_from)))
        midnight = now.astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
        start = max(midnight, now - timedelta(hours=3), loaded + timedelta(seconds=1) if loaded else now)
        step = (now - start) / (len(TODAY) + 1)
        with Router(store.sessions) as router:
            ctx = CaseContext(router=router, blobs=blob_store(store.settings))
            for i, spec in enumerate(TODAY):
                at = start + step * i
                lon, lat = points[spec["where"]].pop()
                report = ReportIn(
                    category=spec["category"],
                    description=spec["text"],
                    lon=lon,
                    lat=lat,
                    channel=Channel(spec["channel"]) if spec["channel"] else None,
                )
                case, _ = submit_report(session, ctx, actors[spec["by"]], report, now=at)
                for k, action in enumerate(_UPTO[1 : _UPTO.index(spec["upto"]) + 1], 1):
                    who = {"verify": "operator", "file": "operator", "dispatch": "dispatcher"}.get(
                        action, "unit_handler"
                    )
                    reason = "需采购配件" if action == "request_extension" else None
                    act(
                        session,
                        ctx,
                        actors[who],
                        case.id,
                        action,
                        ActionIn(reason=reason),
                        now=at + step * k / 6,
                    )
        session.add(ReferenceVersion(name=TODAY_MARKER, version=1))
        stats.fold_rollup(session)
    return len(TODAY)


def _today_points(session: Session, rng: np.random.Generator) -> dict[str, list[tuple[float, float]]]:
    """Enough WGS-84 points for TODAY: inside the North Canal's zone, inside grids, outside."""
    canal = shapely.from_wkb(
        session.scalar(text("SELECT ST_AsBinary(zone) FROM responsibility_layer WHERE name = '北渠'"))
    )
    grids = areas_frame(session, levels=["grid"]).reset_index(drop=True)
    n = len(TODAY)
    zone = gpd.GeoSeries([canal.intersection(shapely.union_all(grids.geometry.to_numpy()))], crs=4326)
    lon_c, lat_c, _ = _sample_in(zone, np.ones(1), n, rng)
    lon_g, lat_g, _ = _sample_in(grids.geometry, np.ones(len(grids)), n, rng)
    return {
        "canal": [(round(float(x), 7), round(float(y), 7)) for x, y in zip(lon_c, lat_c, strict=True)],
        "grid": [(round(float(x), 7), round(float(y), 7)) for x, y in zip(lon_g, lat_g, strict=True)],
        "outside": [OUTSIDE, (OUTSIDE[0] + 0.01, OUTSIDE[1])],
    }


def _sample_in(
    polys: gpd.GeoSeries, weights: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n points uniformly inside polygons chosen by weight (rejection sampling in bounds)."""
    choice = rng.choice(len(polys), size=n, p=weights / weights.sum())
    lon = np.empty(n)
    lat = np.empty(n)
    bounds = polys.bounds.to_numpy()
    geoms = polys.to_numpy()
    pending = np.arange(n)
    while len(pending):
        b = bounds[choice[pending]]
        x = rng.uniform(b[:, 0], b[:, 2])
        y = rng.uniform(b[:, 1], b[:, 3])
        inside = shapely.contains_xy(geoms[choice[pending]], x, y)
        lon[pending[inside]] = x[inside]
        lat[pending[inside]] = y[inside]
        pending = pending[~inside]
    return lon, lat, choice


def _working_deadline(start: datetime, limit: float, unit: str) -> datetime:
    """Approximate deadline for seeded history (the workflow issue brings the real calendar)."""
    if unit == "urgent_hours":
        return start + timedelta(hours=limit)
    if unit == "working_hours":
        return start + timedelta(hours=limit * 3)  # 8 working hours spread over a day
    if unit == "working_days":
        return start + timedelta(days=limit * 7 / 5)
    return start + timedelta(days=limit)


# One event of a seeded case: (at, action, from_state, to_state, actor, role, note).
Step = tuple[datetime, str, str | None, str, str, str, str | None]
# A demo unit's layer zone: (unit_code, categories it lists, zone).
Zone = tuple[str, set[str], shapely.Geometry]


@dataclass(frozen=True)
class _Draws:
    """The random draws of each case's time, channel, inspector and pace, made in the seed's order."""

    day: np.ndarray
    minute: np.ndarray
    channel: np.ndarray
    inspector: np.ndarray
    overdue: np.ndarray
    durations: np.ndarray

    @classmethod
    def make(cls, rng: np.random.Generator, n: int) -> _Draws:
        """Draw them, in this order (changing it changes every generated case)."""
        day = rng.integers(0, QUARTER_DAYS, size=n)
        minute = np.clip(rng.normal(10.5 * 60, 3.2 * 60, size=n), 6 * 60, 21 * 60).astype(int)
        channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_WEIGHTS)
        inspector = rng.integers(0, len(INSPECTORS), size=n)
        return cls(day, minute, channel, inspector, rng.random(n), rng.random((n, 6)))


@dataclass
class _Timeline:
    """One seeded case's event log, each step some hours after the previous one."""

    t: datetime
    steps: list[Step] = field(default_factory=list)
    deadline: datetime | None = None
    closed_at: datetime | None = None

    def step(
        self,
        action: str,
        frm: str | None,
        to: str,
        hours: float,
        actor: str,
        role: str,
        note: str | None = None,
    ) -> None:
        """Append one event `hours` after the last."""
        self.t = self.t + timedelta(hours=hours)
        self.steps.append((self.t, action, frm, to, actor, role, note))


#: The demo quarter's verdicts (回访, 满意度): the share of closed cases whose reporter rated
#: them, and the mix of verdicts, in percent. Invented to look like a working centre's, not
#: published figures: 12345 cases are rated in the callback, the others on the case page.
DEMO_RATED_PERCENT = 72
DEMO_VERDICT_PERCENT = {"satisfied": 84, "basically_satisfied": 11, "unsatisfied": 5}


def rate_demo_quarter(session: Session) -> int:
    """Rate the demo's closed cases (a fixed share, verdicts by a hash of the case id, so the
    figures are the same in every load), 1–3 days after closing; a 12345 case's rating comes
    from its callback, which is recorded too. Returns the number of ratings."""
    satisfied = DEMO_VERDICT_PERCENT["satisfied"]
    basically = satisfied + DEMO_VERDICT_PERCENT["basically_satisfied"]
    rated = cast(
        CursorResult,
        session.execute(
            text(
                """
            INSERT INTO case_rating (case_id, rating, comment, source, rated_at)
            SELECT id,
                   CASE WHEN v < :satisfied THEN 'satisfied'
                        WHEN v < :basically THEN 'basically_satisfied'
                        ELSE 'unsatisfied' END,
                   '',
                   CASE WHEN channel = 'hotline_12345' THEN 'callback' ELSE 'resident' END,
                   closed_at + make_interval(hours => 24 + (v * 7) % 48)
            FROM (SELECT id, channel, closed_at,
                         abs(hashtext('verdict ' || id)) % 100 AS v,
                         abs(hashtext('rated ' || id)) % 100 AS r
                  FROM cases WHERE state = 'closed' AND closed_at IS NOT NULL) AS closed
            WHERE r < :rated
            """
            ),
            {"satisfied": satisfied, "basically": basically, "rated": DEMO_RATED_PERCENT},
        ),
    ).rowcount
    session.execute(
        text(
            """
            INSERT INTO case_callback (case_id, at, by, reached, note)
            SELECT r.case_id, r.rated_at, 'operator', true, ''
            FROM case_rating r WHERE r.source = 'callback'
            """
        )
    )
    return rated


def generate_cases(session: Session, seed: int = SEED) -> int:
    """Generate the demo quarter: clustered locations, realistic outcomes and full event logs."""
    # Every random draw is made before the loop, in one fixed order: reordering them (or drawing in
    # the loop) would change every seeded case, and the published figures are tested.
    rng = np.random.default_rng(seed)
    grids = areas_frame(session, levels=["grid"]).reset_index(drop=True)
    tree = shapely.STRtree(grids.geometry.to_numpy())
    lon, lat = _report_locations(grids, tree, REPORTED, rng)
    categories = session.execute(select(Category)).scalars().all()
    weights = np.array([6.0 if c.code == "E0102" else 3.0 if c.kind == "event" else 1.5 for c in categories])
    category_idx = rng.choice(len(categories), size=REPORTED, p=weights / weights.sum())
    zones, baobao = _demo_routing_tables(session)
    names = _demo_names(session)
    grid_hit = np.full(REPORTED, -1)
    pts_idx, grid_idx = tree.query(shapely.points(lon, lat), predicate="intersects")
    grid_hit[pts_idx] = grid_idx  # edges: last wins, good enough for seeded history
    outcomes = _shuffled_outcomes(rng, REPORTED)
    draws = _Draws.make(rng, REPORTED)

    case_rows: list[dict] = []
    event_plans: list[list[Step]] = []
    for i in range(REPORTED):
        cat = categories[category_idx[i]]
        grid = grids.iloc[grid_hit[i]] if grid_hit[i] >= 0 else None
        unit, rule = _demo_route(cat, shapely.Point(lon[i], lat[i]), grid, zones, baobao)
        reported_at = QUARTER_START + timedelta(days=int(draws.day[i]), minutes=int(draws.minute[i]))
        channel = CHANNELS[draws.channel[i]]
        inspector = INSPECTORS[draws.inspector[i]]
        line = _Timeline(reported_at)
        line.step(
            "report",
            None,
            "reported",
            0,
            inspector if channel == "inspector" else channel,
            "inspector" if channel == "inspector" else "operator",
        )
        if unit:
            _history(line, outcomes[i], unit, cat, draws.durations[i], inspector, draws.overdue[i] < 0.07)
        routing = _demo_routing(rule, unit, grid, names)
        case_rows.append(_case_row(i, cat, channel, inspector, lon[i], lat[i], grid, unit, routing, line))
        event_plans.append(line.steps)
    return _insert_cases(session, case_rows, event_plans)


def _report_locations(
    grids: gpd.GeoDataFrame, tree: shapely.STRtree, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Where problems concentrate: markets, schools, old compounds; ~60% of reports cluster."""
    metric = grids.to_crs(32649)  # UTM 49N: Chibi is at 113.9°E; sigmas below are metres
    area = metric.area.to_numpy()
    clustered = int(n * 0.6)
    hotspots = rng.choice(len(grids), size=24, replace=False)
    hotspot_weight = rng.pareto(1.5, size=24) + 1
    centre = metric.geometry.iloc[hotspots].centroid
    pick = rng.choice(24, size=clustered, p=hotspot_weight / hotspot_weight.sum())
    sigma = rng.uniform(60, 220, size=24)[pick]
    x = centre.x.to_numpy()[pick] + rng.normal(0, 1, clustered) * sigma
    y = centre.y.to_numpy()[pick] + rng.normal(0, 1, clustered) * sigma
    lon_c, lat_c = (
        gpd.GeoSeries(gpd.points_from_xy(x, y), crs=32649)
        .to_crs(4326)
        .pipe(lambda s: (s.x.to_numpy(), s.y.to_numpy()))
    )
    lon_u, lat_u, _ = _sample_in(grids.geometry, area, n - clustered, rng)
    lon = np.concatenate([lon_c, lon_u])
    lat = np.concatenate([lat_c, lat_u])
    order = rng.permutation(n)
    lon, lat = lon[order], lat[order]
    # A cluster near the edge of the core spills out of the grids: move those reports inside.
    outside = ~np.isin(np.arange(n), tree.query(shapely.points(lon, lat), predicate="intersects")[0])
    lon[outside], lat[outside], _ = _sample_in(grids.geometry, area, int(outside.sum()), rng)
    return lon, lat


@dataclass(frozen=True)
class _Names:
    """Names by code for the seeded routing: areas of the current generation, and units."""

    generation: int | None
    areas: dict[str, str]
    units: dict[str, tuple[str, str]]  # code → (name, kind)


def _demo_names(session: Session) -> _Names:
    frame = areas_frame(session, levels=["street", "community", "grid"])
    units = {
        code: (name, kind) for code, name, kind in session.execute(select(Unit.code, Unit.name, Unit.kind))
    }
    generation = session.scalar(text("SELECT max(id) FROM boundary_generation"))
    return _Names(generation, dict(zip(frame["code"], frame["name"], strict=True)), units)


def _demo_routing(rule: str, unit: str | None, grid: pd.Series | None, names: _Names) -> dict[str, Any]:
    """A seeded case's routing, shaped like a router's decision where pages read it: the grid,
    community, street and unit by code and name (so desks show names, not codes)."""

    def area(code: str | None) -> dict[str, str] | None:
        return {"code": code, "name": names.areas.get(code, code)} if code else None

    grid_code = grid.code if grid is not None else None
    unit_name, unit_kind = names.units.get(unit or "", (unit, ""))
    return {
        "source": "demo seed",
        "rule": rule,
        "generation": names.generation if grid is not None else None,
        "grid": area(grid_code),
        "community": area(grid.parent_code if grid is not None else None),
        "street": area(grid_code[:9] if grid_code else None),
        "primary_unit": {"code": unit, "name": unit_name, "kind": unit_kind} if unit else None,
    }


def _demo_routing_tables(session: Session) -> tuple[list[Zone], dict[str, str]]:
    """The layers' zones (highest priority first) and each grid's first 包保 unit on the ground."""
    layers = session.execute(
        text(
            "SELECT unit_code, priority, categories, ST_AsBinary(zone) AS zone "
            "FROM responsibility_layer ORDER BY priority DESC, code"
        )
    ).all()
    zones = [(r.unit_code, set(r.categories), shapely.from_wkb(r.zone)) for r in layers]
    baobao: dict[str, str] = {}
    for unit_code, grid_code, kind in session.execute(
        select(GridResponsibility.unit_code, GridResponsibility.grid_code, Unit.kind)
        .join(Unit, Unit.code == GridResponsibility.unit_code)
        .order_by(GridResponsibility.grid_code, GridResponsibility.unit_code)
    ):
        if kind not in ("street_office", "community_committee"):
            baobao.setdefault(grid_code, unit_code)
    return zones, baobao


def _demo_route(
    cat: Category, point: shapely.Point, grid: pd.Series | None, zones: list[Zone], baobao: dict[str, str]
) -> tuple[str | None, str]:
    """Demo routing (the router replaces this): layer zone for listed categories, else components
    to the category's department, events to the grid's 包保 unit; (unit, rule)."""
    for unit_code, listed, zone in zones:
        if cat.code in listed and zone.covers(point):
            return unit_code, "responsibility layer"
    if grid is None:
        return None, "outside every grid: triage"
    if cat.kind == "component" and cat.department_code:
        return cat.department_code, "component: owner department"
    return baobao.get(grid.code) or cat.department_code, "event: grid 包保 unit"


def _shuffled_outcomes(rng: np.random.Generator, n: int) -> list[str]:
    """Each case's final state: shuffled exact counts so the quarter reproduces the published figures."""
    outcomes = (
        ["closed"] * CLOSED
        + [s for s, k in OPEN_STATES.items() for _ in range(k)]
        + [s for s, k in NOT_DISPATCHED.items() for _ in range(k)]
    )
    assert len(outcomes) == n
    return list(np.array(outcomes)[rng.permutation(n)])


def _history(
    line: _Timeline, outcome: str, unit: str, cat: Category, d: np.ndarray, inspector: str, late: bool
) -> None:
    """A routed case's life after its report, up to the outcome it has at the quarter's end."""
    if outcome in ("rejected", "voided"):
        line.step("verify", "reported", "verified", 0.3 + d[0], "operator1", "operator")
        reason = "不属于城市管理范围" if outcome == "rejected" else "重复上报"
        line.step(
            "reject" if outcome == "rejected" else "void",
            "verified",
            outcome,
            0.2,
            "chief1",
            "operator",
            reason,
        )
        return
    line.step("verify", "reported", "verified", 0.2 + d[0] * 0.8, "operator1", "operator")
    line.step("file", "verified", "filed", 0.1 + d[1] * 0.2, "chief1", "operator")
    line.step("dispatch", "filed", "dispatched", 0.05 + d[1] * 0.2, "dispatcher1", "dispatcher")
    line.deadline = _working_deadline(line.t, float(cat.time_limit), cat.time_limit_unit)
    limit_h = (line.deadline - line.t).total_seconds() / 3600
    if outcome == "returned":
        line.step(
            "return",
            "dispatched",
            "returned",
            0.5 + d[2],
            unit,
            "unit_handler",
            "非本单位职责：权属有误，请改派",
        )
    elif outcome == "parked":
        line.step("sign", "dispatched", "signed", 0.3 + d[2], unit, "unit_handler")
        line.step("park", "signed", "parked", 1 + d[3] * 5, "chief1", "operator", "等待资金审批")
    elif outcome != "dispatched":
        line.step("sign", "dispatched", "signed", 0.2 + d[2] * 1.5, unit, "unit_handler")
        if outcome != "signed":
            _handled(line, outcome, unit, limit_h, d, inspector, late)


def _handled(
    line: _Timeline, outcome: str, unit: str, limit_h: float, d: np.ndarray, inspector: str, late: bool
) -> None:
    """Handled (about 7% late), then checked on site: reworked, closed, or still awaiting the check."""
    share = 1.1 + d[3] if late else 0.2 + d[3] * 0.7
    line.step("handle", "signed", "handled", limit_h * share, unit, "unit_handler", "已处置，附处置后照片")
    if outcome == "rework":
        line.step("check_fail", "handled", "rework", 1 + d[4] * 3, inspector, "inspector", "现场仍未整改到位")
    elif outcome == "closed":
        line.step("check_pass", "handled", "checked", 1 + d[4] * 3, inspector, "inspector")
        line.step("close", "checked", "closed", 0.2 + d[5], "chief1", "operator")
        line.closed_at = line.t


def _demo_tracking_code(i: int, reported_at: datetime) -> str:
    """A tracking code shaped like a real one (GC + date + 8 characters), not a counter to guess.

    Derived from the demo's seed and the case number, so a reload of the demo gives the same codes.
    """
    from geo.cases.service import TRACKING_ALPHABET

    digest = hashlib.sha256(f"gridcase-demo:{SEED}:{i}".encode()).digest()
    tail = "".join(TRACKING_ALPHABET[b % len(TRACKING_ALPHABET)] for b in digest[:8])
    return f"GC{reported_at:%y%m%d}{tail}"


def _case_row(
    i: int,
    cat: Category,
    channel: str,
    inspector: str,
    lon: float,
    lat: float,
    grid: pd.Series | None,
    unit: str | None,
    routing: dict[str, Any],
    line: _Timeline,
) -> dict[str, Any]:
    """The `cases` row of seeded case number i."""
    reported_at = line.steps[0][0]
    return {
        "tracking_code": _demo_tracking_code(i, reported_at),
        "category_code": cat.code,
        "description": f"{cat.name}（演示数据）",
        "channel": channel,
        "reporter_contact": None if channel == "inspector" else f"138{i:08d}",
        "reported_by": inspector if channel == "inspector" else None,
        "reported_at": reported_at,
        "reported_crs": "wgs84",
        "reported_lon": round(float(lon), 7),
        "reported_lat": round(float(lat), 7),
        # WGS-84 lon/lat, to 1e-7° (about 1 cm) as a phone's GPS gives it.
        "location": from_shape(Point(round(lon, 7), round(lat, 7)), srid=4326),
        "state": line.steps[-1][3],
        "grid_area_id": int(grid.id) if grid is not None else None,
        "grid_code": grid.code if grid is not None else None,
        "community_code": grid.parent_code if grid is not None else None,
        "street_code": grid.code[:9] if grid is not None else None,
        "district_code": grid.code[:6] if grid is not None else None,
        "unit_code": unit,
        "cooperating_unit_codes": [],
        "routing": routing,
        "deadline_at": line.deadline,
        "closed_at": line.closed_at,
        "version": 1,
        "created_at": reported_at,
        "updated_at": line.steps[-1][0],
    }


def _insert_cases(session: Session, case_rows: list[dict], event_plans: list[list[Step]]) -> int:
    """Write the cases and their events in bulk; the number of cases."""
    ids = (
        session.execute(insert(Case).returning(Case.id, sort_by_parameter_order=True), case_rows)
        .scalars()
        .all()
    )
    events = [
        {
            "case_id": case_id,
            "at": at,
            "action": action,
            "from_state": frm,
            "to_state": to,
            "actor": actor,
            "role": role,
            "note": note,
            "unit_code": case_rows[k]["unit_code"] if action not in ("report",) else None,
        }
        for k, case_id in enumerate(ids)
        for (at, action, frm, to, actor, role, note) in event_plans[k]
    ]
    for start in range(0, len(events), 5000):
        session.execute(insert(CaseEvent), events[start : start + 5000])
    return len(ids)
