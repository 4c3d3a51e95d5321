"""The Chibi demo: real county boundary, synthetic urban-core grids, units, layers and a quarter of cases.

Loading is idempotent: reference files are imported through the same validated importers as
`gridcase import` (an unchanged file writes nothing), and the seeded quarter of cases is generated
only once. The case figures follow the published Chibi quarter (DOMAIN.md): 7,534 reported,
7,389 filed and dispatched, 6,967 closed (disposal rate 94.29%).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from geo import importing, stats
from geo.areas import areas_frame, count_by_level
from geo.store import Store
from geo.store.models import (
    Account,
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
    accounts_created: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the console."""
        lines = []  # the imports were logged as they ran
        lines.append(
            f"cases: {self.cases_created} created"
            if self.cases_created
            else "cases: demo quarter already loaded"
        )
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
            session.add(ReferenceVersion(name=DEMO_MARKER, version=1))
            stats.fold_rollup(session)  # the bulk load's rollup deltas, folded at once
    with store.transaction() as session:
        report.accounts_created = create_demo_accounts(session)
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


def create_demo_accounts(session: Session) -> int:
    """One account per role (password DEMO_PASSWORD); the inspector walks the North Canal grids."""
    from geo.accounts import add_account

    canal_grids = list(
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
    wanted = [
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


def generate_cases(session: Session, seed: int = SEED) -> int:
    """Generate the demo quarter: clustered locations, realistic outcomes and full event logs."""
    rng = np.random.default_rng(seed)
    grids = areas_frame(session, levels=["grid"]).reset_index(drop=True)
    metric = grids.to_crs(32649)  # UTM 49N: Chibi is at 113.9°E
    area = metric.area.to_numpy()

    # Where problems concentrate: markets, schools, old compounds; ~60% of reports cluster.
    n = REPORTED
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
    tree = shapely.STRtree(grids.geometry.to_numpy())
    outside = ~np.isin(np.arange(n), tree.query(shapely.points(lon, lat), predicate="intersects")[0])
    lon[outside], lat[outside], _ = _sample_in(grids.geometry, area, int(outside.sum()), rng)

    categories = session.execute(select(Category)).scalars().all()
    codes = [c.code for c in categories]
    weights = np.array([6.0 if c.code == "E0102" else 3.0 if c.kind == "event" else 1.5 for c in categories])
    category_idx = rng.choice(len(codes), size=n, p=weights / weights.sum())

    # Demo routing (the router replaces this): layer zone for listed categories, else
    # components to the category's department, events to the grid's 包保 unit.
    layers = session.execute(
        text(
            "SELECT unit_code, priority, categories, ST_AsBinary(zone) AS zone "
            "FROM responsibility_layer ORDER BY priority DESC, code"
        )
    ).all()
    zones = [(r.unit_code, set(r.categories), shapely.from_wkb(r.zone)) for r in layers]
    grid_hit = np.full(n, -1)
    pts_idx, grid_idx = tree.query(shapely.points(lon, lat), predicate="intersects")
    grid_hit[pts_idx] = grid_idx  # edges: last wins, good enough for seeded history
    baobao: dict[str, str] = {}
    for unit_code, grid_code, kind in session.execute(
        select(GridResponsibility.unit_code, GridResponsibility.grid_code, Unit.kind)
        .join(Unit, Unit.code == GridResponsibility.unit_code)
        .order_by(GridResponsibility.grid_code, GridResponsibility.unit_code)
    ):
        if kind not in ("street_office", "community_committee"):
            baobao.setdefault(grid_code, unit_code)

    # Outcomes: shuffled exact counts so the quarter reproduces the published figures.
    outcomes = (
        ["closed"] * CLOSED
        + [s for s, k in OPEN_STATES.items() for _ in range(k)]
        + [s for s, k in NOT_DISPATCHED.items() for _ in range(k)]
    )
    assert len(outcomes) == n
    outcomes = list(np.array(outcomes)[rng.permutation(n)])

    day = rng.integers(0, QUARTER_DAYS, size=n)
    minute = np.clip(rng.normal(10.5 * 60, 3.2 * 60, size=n), 6 * 60, 21 * 60).astype(int)
    channel_idx = rng.choice(len(CHANNELS), size=n, p=CHANNEL_WEIGHTS)
    inspector_idx = rng.integers(0, len(INSPECTORS), size=n)
    overdue_draw = rng.random(n)
    durations = rng.random((n, 6))

    case_rows: list[dict] = []
    event_plans: list[list[tuple]] = []
    for i in range(n):
        cat = categories[category_idx[i]]
        point = shapely.Point(lon[i], lat[i])
        g = grid_hit[i]
        grid = grids.iloc[g] if g >= 0 else None
        unit = None
        rule = "outside every grid: triage"
        for unit_code, listed, zone in zones:
            if cat.code in listed and zone.covers(point):
                unit, rule = unit_code, "responsibility layer"
                break
        if unit is None and grid is not None:
            if cat.kind == "component" and cat.department_code:
                unit, rule = cat.department_code, "component: owner department"
            else:
                unit = baobao.get(grid.code) or cat.department_code
                rule = "event: grid 包保 unit"
        reported_at = QUARTER_START + timedelta(days=int(day[i]), minutes=int(minute[i]))
        channel = CHANNELS[channel_idx[i]]
        outcome = outcomes[i] if unit else "reported"
        t = reported_at
        steps: list[tuple] = []

        def step(
            action: str,
            frm: str | None,
            to: str,
            hours: float,
            actor: str,
            role: str,
            note: str | None = None,
            _steps=steps,
        ) -> None:
            nonlocal t
            t = t + timedelta(hours=hours)
            _steps.append((t, action, frm, to, actor, role, note))

        d = durations[i]
        t = reported_at
        steps.append(
            (
                t,
                "report",
                None,
                "reported",
                INSPECTORS[inspector_idx[i]] if channel == "inspector" else channel,
                "inspector" if channel == "inspector" else "operator",
                None,
            )
        )
        deadline = None
        closed_at = None
        if outcome in ("rejected", "voided"):
            step("verify", "reported", "verified", 0.3 + d[0], "operator1", "operator")
            step(
                "reject" if outcome == "rejected" else "void",
                "verified",
                outcome,
                0.2,
                "chief1",
                "operator",
                "not a public-space problem" if outcome == "rejected" else "duplicate report",
            )
        elif outcome != "reported":
            step("verify", "reported", "verified", 0.2 + d[0] * 0.8, "operator1", "operator")
            step("file", "verified", "filed", 0.1 + d[1] * 0.2, "chief1", "operator")
            step("dispatch", "filed", "dispatched", 0.05 + d[1] * 0.2, "dispatcher1", "dispatcher")
            deadline = _working_deadline(t, float(cat.time_limit), cat.time_limit_unit)
            limit_h = (deadline - t).total_seconds() / 3600
            if outcome == "returned":
                step(
                    "return",
                    "dispatched",
                    "returned",
                    0.5 + d[2],
                    unit,
                    "unit_handler",
                    "not our responsibility: wrong owner",
                )
            elif outcome == "parked":
                step("sign", "dispatched", "signed", 0.3 + d[2], unit, "unit_handler")
                step(
                    "park",
                    "signed",
                    "parked",
                    1 + d[3] * 5,
                    "chief1",
                    "operator",
                    "waiting for budget approval",
                )
            elif outcome != "dispatched":
                step("sign", "dispatched", "signed", 0.2 + d[2] * 1.5, unit, "unit_handler")
                if outcome != "signed":
                    late = overdue_draw[i] < 0.07
                    share = 1.1 + d[3] if late else 0.2 + d[3] * 0.7
                    step(
                        "handle",
                        "signed",
                        "handled",
                        limit_h * share,
                        unit,
                        "unit_handler",
                        "handled, after-photo attached",
                    )
                    if outcome == "rework":
                        step(
                            "check_fail",
                            "handled",
                            "rework",
                            1 + d[4] * 3,
                            INSPECTORS[inspector_idx[i]],
                            "inspector",
                            "still there on site",
                        )
                    elif outcome == "closed":
                        step(
                            "check_pass",
                            "handled",
                            "checked",
                            1 + d[4] * 3,
                            INSPECTORS[inspector_idx[i]],
                            "inspector",
                        )
                        step("close", "checked", "closed", 0.2 + d[5], "chief1", "operator")
                        closed_at = t
        routing = {
            "source": "demo seed",
            "rule": rule,
            "unit": unit,
            "grid": grid.code if grid is not None else None,
        }
        case_rows.append(
            {
                "tracking_code": f"GC{reported_at:%Y%m%d}{i + 1:05d}",
                "category_code": cat.code,
                "description": f"{cat.name}（演示数据）",
                "channel": channel,
                "reporter_contact": None if channel == "inspector" else f"138{i:08d}",
                "reported_by": INSPECTORS[inspector_idx[i]] if channel == "inspector" else None,
                "reported_at": reported_at,
                "reported_crs": "wgs84",
                "reported_lon": round(float(lon[i]), 7),
                "reported_lat": round(float(lat[i]), 7),
                "location": f"SRID=4326;POINT({lon[i]:.7f} {lat[i]:.7f})",
                "state": steps[-1][3],
                "grid_area_id": int(grid.id) if grid is not None else None,
                "grid_code": grid.code if grid is not None else None,
                "community_code": grid.parent_code if grid is not None else None,
                "street_code": grid.code[:9] if grid is not None else None,
                "district_code": grid.code[:6] if grid is not None else None,
                "unit_code": unit,
                "cooperating_unit_codes": [],
                "routing": routing,
                "deadline_at": deadline,
                "closed_at": closed_at,
                "version": 1,
                "created_at": reported_at,
                "updated_at": steps[-1][0],
            }
        )
        event_plans.append(steps)

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
