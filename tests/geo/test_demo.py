"""The Chibi demo loads the published scale and figures, and loading it again changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from geo.areas import count_by_level
from geo.demo import QUARTER_DAYS, QUARTER_START, TODAY, add_todays_cases, load_demo
from geo.store.models import Case, CaseEvent, GridResponsibility, Unit

QUARTER_END = QUARTER_START + timedelta(days=QUARTER_DAYS)  # 1 October, 00:00 China time


def test_published_scale(demo_store):
    with demo_store.transaction() as session:
        counts = count_by_level(session)
        assert counts["district"] == 1
        assert counts["street"] == 3
        assert counts["community"] == 27
        assert counts["grid"] == 263
        assert counts["compound"] == 383
        assert session.scalar(select(func.count()).select_from(Unit)) >= 100
        responsible = session.scalar(select(func.count(func.distinct(GridResponsibility.unit_code))))
        assert responsible >= 100


def test_published_quarter(demo_store):
    in_quarter = Case.reported_at.between(QUARTER_START, QUARTER_END)
    with demo_store.transaction() as session:
        reported = session.scalar(select(func.count()).select_from(Case).where(in_quarter))
        dispatched = session.scalar(
            select(func.count(func.distinct(CaseEvent.case_id)))
            .join(Case)
            .where(CaseEvent.action == "dispatch", in_quarter)
        )
        closed = session.scalar(select(func.count()).where(Case.state == "closed", in_quarter))
        assert (reported, dispatched, closed) == (7534, 7389, 6967)
        assert round(100 * closed / dispatched, 2) == 94.29
        # Every case has its report event and ends in the state its log ends in.
        mismatched = session.scalar(
            text(
                """
            SELECT count(*) FROM cases c
            WHERE c.state <> (SELECT to_state FROM case_event e WHERE e.case_id = c.id
                              ORDER BY at DESC, id DESC LIMIT 1)
            """
            )
        )
        assert mismatched == 0
        # Exposed garbage by the North Canal went to the water bureau, not sanitation.
        canal = session.scalar(
            text(
                """
            SELECT count(*) FROM cases c JOIN responsibility_layer l ON l.name = '北渠'
            WHERE c.category_code = 'E0102' AND ST_Covers(l.zone, c.location)
              AND c.unit_code = l.unit_code
            """
            )
        )
        assert canal > 0
        outside = session.scalar(
            text(
                """
            SELECT count(*) FROM cases c WHERE c.unit_code IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM area a WHERE a.level = 'grid' AND a.id = c.grid_area_id
                AND ST_Covers(a.geom, c.location))
            """
            )
        )
        assert outside == 0


def test_loading_again_changes_nothing(demo_store):
    with demo_store.transaction() as session:
        before = session.execute(
            text(
                "SELECT (SELECT count(*) FROM area), (SELECT count(*) FROM boundary_generation), "
                "(SELECT count(*) FROM cases), (SELECT count(*) FROM case_event), "
                "(SELECT count(*) FROM grid_responsibility)"
            )
        ).one()
    report = load_demo(demo_store)
    assert report.cases_created == 0
    assert all(r.generation is None for r in report.imports if r.kind == "areas")
    with demo_store.transaction() as session:
        after = session.execute(
            text(
                "SELECT (SELECT count(*) FROM area), (SELECT count(*) FROM boundary_generation), "
                "(SELECT count(*) FROM cases), (SELECT count(*) FROM case_event), "
                "(SELECT count(*) FROM grid_responsibility)"
            )
        ).one()
    assert tuple(after) == tuple(before)


def test_demo_tracking_codes_look_like_real_ones(demo_store):
    """Before: GC2026093006297 and its neighbours, a counter anyone could walk through /track."""
    import re

    from sqlalchemy import select

    from geo.cases.service import TRACKING_ALPHABET
    from geo.store.models import Case

    with demo_store.sessions() as session:
        codes = list(session.scalars(select(Case.tracking_code).order_by(Case.id)))
    shape = re.compile(rf"^GC\d{{6}}[{TRACKING_ALPHABET}]{{8}}$")
    assert len(codes) >= 7534 and all(shape.match(c) for c in codes), codes[:3]
    assert len(set(codes)) == len(codes)
    tails = [c[8:] for c in codes[:1000]]
    assert len({t[:3] for t in tails}) > 500  # no shared counter prefix among neighbours


def test_todays_cases_fill_the_early_queues_with_names_and_leave_the_quarter_alone(demo_store):
    """A newcomer's demo: today's cases wait in 待受理 (two in triage), 待立案, 待派遣 and the water
    bureau's 待签收 and 已签收 (one asking for more time), routed with names."""
    today = Case.reported_at >= QUARTER_END
    with demo_store.transaction() as session:
        states = dict(
            session.execute(select(Case.state, func.count()).where(today).group_by(Case.state)).all()
        )
        triage = session.scalar(
            select(func.count()).where(today, Case.unit_code.is_(None), Case.state == "reported")
        )
        water = session.scalar(
            select(func.count()).where(today, Case.unit_code == "WATER", Case.state == "dispatched")
        )
        asking = session.scalar(select(func.count()).where(today, Case.extension_requested.is_(True)))
        routed = session.scalars(select(Case.routing).where(today, Case.unit_code.is_not(None))).all()
        seeded = session.scalars(
            select(Case.routing).where(~today, Case.grid_code.is_not(None)).limit(50)
        ).all()
    assert sum(states.values()) == len(TODAY) and 20 <= len(TODAY) <= 40
    assert {"reported", "verified", "filed", "dispatched", "signed"} <= set(states), states
    assert triage >= 1 and water >= 1 and asking == 1
    for routing in [*routed, *seeded]:
        assert routing["grid"]["name"].endswith("网格") and routing["primary_unit"]["name"], routing
        assert not routing["primary_unit"]["name"].isascii()
    # Loading again adds nothing (the marker), and the published quarter is unchanged (above).
    assert add_todays_cases(demo_store) == 0
