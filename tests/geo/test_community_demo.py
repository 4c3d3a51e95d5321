"""The community-governance demo comes out at the published scale and in the published form."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from geo.community import figures
from geo.community.models import AgendaItem, GovernanceItem, RoundTable

QUARTER_END = date(2026, 9, 30)
#: DOMAIN.md and issue 16, as Chibi published them.
PUBLISHED = {
    "branches": "383",
    "compound_claimed": "1,500+",
    "compound_closed": "870+",
    "unit_claimed": "1,600+",
    "unit_closed": "920+",
    "demands": "2,600",
    "wishes": "3,200",
    "agreements": "147",
    "resources": "341",
    "resource_claims": "149",
    "cadres": "6,000+",
    "posts": "3,200+",
}


def test_the_headline_is_the_published_one(demo_store):
    with demo_store.transaction() as session:
        headline = figures.headline(session, QUARTER_END)
    assert headline.published() == PUBLISHED


def test_city_figures_add_up_from_compounds(demo_store):
    with demo_store.transaction() as session:
        city = figures.item_figures(session, "city", QUARTER_END)
        streets = figures.item_figures(session, "street", QUARTER_END)
        compounds = figures.item_figures(session, "compound", QUARTER_END)
    (total,) = city
    assert total.raised == 2600 + 3200
    assert total.claimed == 1512 + 1608
    assert total.closed == 873 + 923
    assert len(streets) == 3 and sum(s.raised for s in streets) == total.raised
    assert sum(c.closed for c in compounds) == total.closed
    assert total.share_answered == (1512 + 1608) / 5800
    assert 0 < total.overdue < total.claimed - total.closed + 1


def test_every_compound_held_its_round_table_each_month(demo_store):
    with demo_store.transaction() as session:
        months = figures.meetings_by_month(session, date(2026, 7, 1), QUARTER_END)
        per = figures.meetings_per_compound(session, date(2026, 7, 1), QUARTER_END)
        big = session.scalar(
            select(func.count()).select_from(RoundTable).where(RoundTable.level == "community")
        )
        decided = session.scalar(
            select(func.count()).select_from(AgendaItem).where(AgendaItem.outcome == "claimed")
        )
        escalated_then_claimed = session.scalar(
            select(func.count())
            .select_from(GovernanceItem)
            .where(GovernanceItem.level == "community", GovernanceItem.claimer_kind == "unit")
        )
    assert [(m.month, m.compounds_meeting, m.compound_meetings, m.big_meetings) for m in months] == [
        ("2026-07", 383, 383, 27),
        ("2026-08", 383, 383, 27),
        ("2026-09", 383, 383, 27),
    ]
    assert set(per.values()) == {1} and len(per) == 383 * 3
    assert big == 81
    assert decided == 1512 + 1608
    assert escalated_then_claimed == 1608


def test_the_monthly_report_carries_the_governance_tables(demo_store):
    with demo_store.transaction() as session:
        tables = figures.report_tables(session, date(2026, 9, 1))
    items, meetings = tables["community governance"], tables["round tables"]
    city = items[items.area == "赤壁市"].iloc[0]
    assert list(items.area[:3]) == ["蒲圻街道", "赤马港街道", "陆水湖街道"]
    assert city.raised == items.raised[:3].sum() and city.raised > 0
    assert city.claimed >= city.closed_off > 0 and city.share_answered.endswith("%")
    assert meetings.compounds.sum() == 383 and meetings.compounds_meeting.sum() == 383
    assert meetings.big_meetings.sum() == 27
