"""People and organisations of community governance: where each person serves, the three parties of a
compound (三方), co-building units (共建单位) and their agreements, party members registered to a compound
(双报到) and the service posts they claimed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.access import CommunityAction, Seat, require_community
from geo.accounts import Actor, Role
from geo.community.models import (
    PARTIES,
    CoBuildingAgreement,
    CoBuildingUnit,
    CompoundParty,
    GovernancePost,
    PartyMember,
    ServicePost,
)
from geo.errors import InvalidInput, NotFound
from geo.store.models import Area

#: The service posts a registered member may claim (认领服务岗位), by code.
POSTS = ("patrol", "elderly", "environment", "mediation", "policy", "volunteer", "youth", "health")


def seat_of(session: Session, actor: Actor) -> Seat:
    """Where this person serves (`governance_post`): communities for staff, compounds for secretaries."""
    codes = frozenset(
        session.scalars(select(GovernancePost.area_code).where(GovernancePost.account_id == actor.id))
    )
    if actor.role is Role.community_staff:
        return Seat(communities=codes)
    if actor.role is Role.branch_secretary:
        return Seat(compounds=codes)
    return Seat()


@dataclass(frozen=True)
class Place:
    """A compound or a community by code, with its community and street and its name."""

    code: str
    level: str  # compound or community
    name: str
    community_code: str
    street_code: str


def place(session: Session, code: str, field: str = "compound") -> Place:
    """The current compound or community of this code (a NotFound naming the field otherwise)."""
    row = session.execute(
        select(Area.level, Area.name, Area.parent_code)
        .where(Area.code == code, Area.level.in_(("compound", "community")))
        .order_by(Area.generation_high.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no compound or community {code!r}", field=field)
    level, name, parent = row
    community = parent if level == "compound" and parent else code
    return Place(code, level, name, community, community[:9])


def names_of(session: Session, codes: set[str]) -> dict[str, str]:
    """Area names by code (the newest generation's)."""
    if not codes:
        return {}
    rows = session.execute(
        select(Area.code, Area.name).where(Area.code.in_(sorted(codes))).order_by(Area.generation_high)
    )
    return dict(rows.all())


def three_parties(session: Session, compound_code: str) -> list[CompoundParty]:
    """The compound's party branch, owners' committee and property company, in that order."""
    rows = {
        p.party: p
        for p in session.scalars(select(CompoundParty).where(CompoundParty.compound_code == compound_code))
    }
    return [rows[p] for p in PARTIES if p in rows]


def members_of(session: Session, compound_code: str) -> list[tuple[PartyMember, list[str]]]:
    """The members registered to a compound (双报到), each with the posts they claimed."""
    members = list(
        session.scalars(
            select(PartyMember).where(PartyMember.compound_code == compound_code).order_by(PartyMember.id)
        )
    )
    posts: dict[int, list[str]] = {}
    for member_id, post in session.execute(
        select(ServicePost.member_id, ServicePost.post).where(
            ServicePost.member_id.in_([m.id for m in members] or [0])
        )
    ):
        posts.setdefault(member_id, []).append(post)
    return [(m, posts.get(m.id, [])) for m in members]


def co_units_of(session: Session, community_code: str) -> list[CoBuildingUnit]:
    """The co-building units with an agreement in this community."""
    return list(
        session.scalars(
            select(CoBuildingUnit)
            .where(
                CoBuildingUnit.id.in_(
                    select(CoBuildingAgreement.co_unit_id).where(
                        CoBuildingAgreement.community_code == community_code
                    )
                )
            )
            .order_by(CoBuildingUnit.name)
        )
    )


def register_member(
    session: Session,
    actor: Actor,
    seat: Seat,
    compound_code: str,
    name: str,
    workplace: str = "",
    cadre: bool = True,
    posts: list[str] | None = None,
    on: date | None = None,
) -> PartyMember:
    """Register a cadre or party member to the compound they live in (双报到), with posts claimed."""
    where = place(session, compound_code)
    require_community(actor, seat, CommunityAction.register, where.community_code, compound_code)
    if not name.strip():
        raise InvalidInput("a member needs a name", field="name")
    for post in posts or []:
        if post not in POSTS:
            raise InvalidInput(f"post {post!r} is not one of {', '.join(POSTS)}", field="posts")
    member = PartyMember(
        name=name.strip(),
        compound_code=compound_code,
        workplace=workplace.strip(),
        cadre=cadre,
        registered_on=on or date.today(),
    )
    session.add(member)
    session.flush()
    for post in posts or []:
        session.add(ServicePost(member_id=member.id, post=post, claimed_on=member.registered_on))
    session.flush()
    return member


def add_co_unit(
    session: Session, actor: Actor, seat: Seat, community_code: str, name: str, kind: str, signed_on: date
) -> CoBuildingUnit:
    """Sign a co-building agreement (共建协议) with a unit (created if new) for this community."""
    where = place(session, community_code, field="community")
    require_community(actor, seat, CommunityAction.register, where.community_code)
    if not date(2000, 1, 1) <= signed_on <= date(2100, 12, 31):
        raise InvalidInput("signed_on must be between 2000-01-01 and 2100-12-31", field="signed_on")
    if not name.strip():
        raise InvalidInput("a co-building unit needs a name", field="name")
    unit = session.scalar(select(CoBuildingUnit).where(CoBuildingUnit.name == name.strip()))
    if unit is None:
        unit = CoBuildingUnit(name=name.strip(), kind=kind or "organisation")
        session.add(unit)
        session.flush()
    session.add(
        CoBuildingAgreement(
            co_unit_id=unit.id, community_code=where.community_code, signed_on=signed_on, title="共建协议"
        )
    )
    session.flush()
    return unit


def member(session: Session, member_id: int) -> PartyMember:
    """A registered member by id (NotFound naming the field)."""
    found = session.get(PartyMember, member_id)
    if found is None:
        raise NotFound(f"no registered member {member_id}", field="member")
    return found


def co_unit(session: Session, unit_id: int) -> CoBuildingUnit:
    """A co-building unit by id (NotFound naming the field)."""
    found = session.get(CoBuildingUnit, unit_id)
    if found is None:
        raise NotFound(f"no co-building unit {unit_id}", field="unit")
    return found


def counts(session: Session) -> dict[str, int]:
    """How many of each: members, posts, co-building units and agreements, branches."""
    return {
        "members": session.scalar(select(func.count()).select_from(PartyMember)) or 0,
        "posts": session.scalar(select(func.count()).select_from(ServicePost)) or 0,
        "co_units": session.scalar(select(func.count()).select_from(CoBuildingUnit)) or 0,
        "agreements": session.scalar(select(func.count()).select_from(CoBuildingAgreement)) or 0,
        "branches": session.scalar(
            select(func.count()).select_from(CompoundParty).where(CompoundParty.party == "branch")
        )
        or 0,
    }
