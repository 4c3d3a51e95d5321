"""The duplicate search (`suggest_duplicates`): metres on the spheroid, candidates through the
geometry's GiST index, and only the nearest few linked at a hotspot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from geo.cases.intake import suggest_duplicates
from geo.store.models import Case, CaseLink
from tests.conftest import add_exposed_garbage

NOW = datetime(2026, 8, 3, 2, tzinfo=UTC)
LON, LAT = 113.9, 29.72
METRE_LON = 1 / (111_320 * 0.8684)  # degrees of longitude per metre at 29.72°N


def _case(session, code: str, dx_m: float, *, hours_ago: float = 1, state: str = "reported") -> Case:
    lon = LON + dx_m * METRE_LON
    case_id = session.execute(
        insert(Case)
        .values(
            tracking_code=code,
            category_code="E0102",
            channel="inspector",
            description="",
            reported_at=NOW - timedelta(hours=hours_ago),
            reported_crs="wgs84",
            location=f"SRID=4326;POINT({lon} {LAT})",
            state=state,
            cooperating_unit_codes=[],
            version=1,
            routing={"lon": lon, "lat": LAT},
        )
        .returning(Case.id)
    ).scalar_one()
    return session.get(Case, case_id)


def test_the_nearest_ten_open_cases_within_the_radius_are_linked(session):
    add_exposed_garbage(session)
    for n in range(12):  # 12 open reports at 2, 4, ... 24 m
        _case(session, f"H{n}", 2 + 2 * n)
    _case(session, "FAR", 60)  # outside 50 m
    _case(session, "OLD", 1, hours_ago=30)  # outside the 24 h window
    _case(session, "SHUT", 1, state="closed")
    new = _case(session, "NEW", 0, hours_ago=0)
    found = suggest_duplicates(session, [new], default_radius_m=50, default_window_h=24)
    assert [link.tracking_code for link in found[new.id]] == [f"H{n}" for n in range(10)]
    links = session.execute(
        select(Case.tracking_code, CaseLink.distance_m)
        .join(Case, Case.id == CaseLink.other_case_id)
        .where(CaseLink.case_id == new.id)
        .order_by(CaseLink.distance_m)
    ).all()
    assert [code for code, _ in links] == [f"H{n}" for n in range(10)]
    for (_, metres), n in zip(links, range(10), strict=True):
        assert abs(metres - (2 + 2 * n)) < 0.2  # metres on the spheroid, not degrees
