"""Building a compound's governance data by hand, for the agenda and round-table tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from geo.accounts import Actor, actor_of, add_account
from geo.cases.intake import ReportIn
from geo.cases.service import CaseContext, submit_report
from geo.community import lists, people
from geo.community.models import GovernanceItem, GovernancePost
from geo.demo import DEMO_PASSWORD
from geo.store.models import Account, Case

# A community of its own (陆水湖街道's first): the API and page tests commit items in the demo
# accounts' 金鸡山社区 on the same database, and these tests must see only what they made.
COMPOUND = "421281003001C001"
OTHER_COMPOUND = "421281003001C002"
COMMUNITY = "421281003001"
#: The test's own people, made in its rolled-back transaction: a secretary of COMPOUND, staff of COMMUNITY.
SEATS = {"branch_secretary": COMPOUND, "community_staff": COMMUNITY}


def actor(session: Session, username: str) -> Actor:
    return actor_of(session.scalar(select(Account).where(Account.username == username)))


def seat(session: Session, role: str):
    """The test's own person in this role (made once per transaction) and where they serve."""
    username = f"t_{role}"
    if session.scalar(select(Account.id).where(Account.username == username)) is None:
        account = add_account(session, username, DEMO_PASSWORD, role)
        session.add(GovernancePost(account_id=account.id, area_code=SEATS[role]))
        session.flush()
    who = actor(session, username)
    return who, people.seat_of(session, who)


def points_in(session: Session, compound: str, n: int) -> list[tuple[float, float]]:
    """Points inside a compound's polygon (PostGIS's seeded random points: the same every run)."""
    rows = session.execute(
        text(
            "SELECT ST_X(d.geom), ST_Y(d.geom) FROM area a, "
            "LATERAL ST_Dump(ST_GeneratePoints(a.geom, :n, 7)) d "
            "WHERE a.code = :code AND a.level = 'compound' "
            "ORDER BY d.path"
        ),
        {"n": n, "code": compound},
    ).all()
    return [(x, y) for x, y in rows]


def report(
    session: Session, ctx: CaseContext, category: str, where: tuple[float, float], at: datetime
) -> Case:
    case, _ = submit_report(
        session,
        ctx,
        actor(session, "inspector"),
        ReportIn(category=category, lon=where[0], lat=where[1]),
        now=at,
    )
    return case


def raise_(
    session: Session, list_name: str, title: str, at: datetime, kind: str = "elderly", area: str = COMPOUND
) -> GovernanceItem:
    who, where = seat(session, "community_staff")
    return lists.raise_item(session, who, where, list_name, area, kind, title, raised_by="居民代表", now=at)


def force_due(session: Session, item: GovernanceItem, due: date) -> None:
    """Set a claim's due date into the past (a claim cannot be made so: time has to pass)."""
    session.execute(update(GovernanceItem).where(GovernanceItem.id == item.id).values(due_on=due))
    session.refresh(item)


def china_tomorrow() -> date:
    return (datetime.now(UTC) + timedelta(hours=8)).date() + timedelta(days=1)
