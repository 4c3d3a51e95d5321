"""The tables of community governance (社区治理): people and organisations, the three lists, round tables.

- the three parties of a compound (小区党支部, 业委会, 物业公司) and who serves where (`governance_post`:
  a community's staff, a branch secretary's compound);
- co-building units (共建单位) with their agreements; cadres and party members registered to a
  compound (双报到) and the service posts they claimed;
- one table for the demand list (需求清单), the resource list (资源清单) and small wishes (微心愿):
  an item with a compound, a kind, who raised it, its claim (认领/领办), progress notes and its close off
  (销号) with a photo or a note;
- round tables (圆桌会: a compound's monthly one, a community's big round table 大圆桌会) and their agenda
  items, each ending claimed, escalated, turned into a case or closed with a reason.

Areas are referred to by code (codes outlive boundary generations, as `grid_responsibility` does).
Schema changes go through migration 0012.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.store.models import Base

PARTIES = ("branch", "owners_committee", "property")  # 小区党支部, 业委会, 物业公司
LISTS = ("demand", "resource", "wish")  # 需求清单, 资源清单, 微心愿
ITEM_STATES = ("open", "claimed", "closed")
CLAIMER_KINDS = ("unit", "member", "branch")  # 共建单位, 党员, 小区党支部
MEETING_LEVELS = ("compound", "community")  # 圆桌会, 大圆桌会
OUTCOMES = ("claimed", "escalated", "case", "closed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


class GovernancePost(Base):
    """Where a person of the community side serves: a community (staff) or a compound (secretary)."""

    __tablename__ = "governance_post"

    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(32), primary_key=True)


class CompoundParty(Base):
    """One of the three parties of a compound (三方): party branch, owners' committee, property company."""

    __tablename__ = "compound_party"
    __table_args__ = (CheckConstraint(_in("party", PARTIES), name="party"),)

    compound_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    party: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    head: Mapped[str] = mapped_column(Text, default="")  # 书记 / 主任 / 项目经理
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))  # the property company's unit


class CoBuildingUnit(Base):
    """A co-building unit (共建单位): an organisation that signed agreements with communities."""

    __tablename__ = "co_building_unit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="organisation")  # 机关, 企业, 学校, 医院…
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))


class CoBuildingAgreement(Base):
    """A co-building agreement (共建协议) between a unit and a community."""

    __tablename__ = "co_building_agreement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    co_unit_id: Mapped[int] = mapped_column(ForeignKey("co_building_unit.id"), index=True)
    community_code: Mapped[str] = mapped_column(String(32), index=True)
    signed_on: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(Text, default="")


class PartyMember(Base):
    """A cadre or party member registered to a compound where they live (双报到)."""

    __tablename__ = "party_member"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    compound_code: Mapped[str] = mapped_column(String(32), index=True)
    workplace: Mapped[str] = mapped_column(Text, default="")
    cadre: Mapped[bool] = mapped_column(default=True)
    registered_on: Mapped[date] = mapped_column(Date)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))


class ServicePost(Base):
    """A service post (服务岗位) a registered member claimed in their compound."""

    __tablename__ = "service_post"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("party_member.id"), index=True)
    post: Mapped[str] = mapped_column(String(32))  # a kind of service: see geo.community.people.POSTS
    claimed_on: Mapped[date] = mapped_column(Date)


class GovernanceItem(Base):
    """An item of the demand list, the resource list or the small wishes."""

    __tablename__ = "governance_item"
    __table_args__ = (
        CheckConstraint(_in("list", LISTS), name="list"),
        CheckConstraint(_in("state", ITEM_STATES), name="state"),
        CheckConstraint(f"claimer_kind IS NULL OR {_in('claimer_kind', CLAIMER_KINDS)}", name="claimer_kind"),
        CheckConstraint(_in("level", MEETING_LEVELS), name="level"),
        Index("ix_governance_item_list_community", "list", "community_code", "state"),
        Index("ix_governance_item_compound", "compound_code", "state"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    list: Mapped[str] = mapped_column(String(16))
    compound_code: Mapped[str | None] = mapped_column(String(32))  # none: community-wide (resources)
    community_code: Mapped[str] = mapped_column(String(32))
    street_code: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))  # see geo.community.lists.KINDS
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    raised_by: Mapped[str] = mapped_column(Text, default="")  # who raised it, as they said it
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str | None] = mapped_column(String(64))  # the account that entered it
    # compound: worked in the compound; community: escalated to (or raised at) the big round table.
    level: Mapped[str] = mapped_column(String(16), default="compound")
    offered_by_id: Mapped[int | None] = mapped_column(ForeignKey("co_building_unit.id"))  # a resource's
    state: Mapped[str] = mapped_column(String(16), default="open")
    claimer_kind: Mapped[str | None] = mapped_column(String(16))
    claimer_unit_id: Mapped[int | None] = mapped_column(ForeignKey("co_building_unit.id"))
    claimer_member_id: Mapped[int | None] = mapped_column(ForeignKey("party_member.id"))
    claimer_compound_code: Mapped[str | None] = mapped_column(String(32))  # a branch that claimed it
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("governance_item.id"))  # matched resource
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_on: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_note: Mapped[str | None] = mapped_column(Text)
    close_photo_key: Mapped[str | None] = mapped_column(String(64))  # the public copy in the blob store
    closed_by: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))  # turned into a case
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ItemNote(Base):
    """A progress note on an item (进展), with an optional photo; append-only."""

    __tablename__ = "governance_item_note"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("governance_item.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="progress")  # raise, claim, progress, close…
    text: Mapped[str] = mapped_column(Text, default="")
    photo_key: Mapped[str | None] = mapped_column(String(64))


class RoundTable(Base):
    """A round table (圆桌会) of a compound, or a community's big round table (大圆桌会)."""

    __tablename__ = "round_table"
    __table_args__ = (
        CheckConstraint(_in("level", MEETING_LEVELS), name="level"),
        Index("ix_round_table_area_held", "area_code", "held_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(32))  # the compound or the community
    community_code: Mapped[str] = mapped_column(String(32))
    street_code: Mapped[str] = mapped_column(String(32))
    held_on: Mapped[date] = mapped_column(Date)
    chair: Mapped[str] = mapped_column(Text, default="")
    # Attendees by party: {"branch": [...], "owners_committee": [...], "property": [...],
    # "residents": [...], "co_building": [...], "leader": [...]}.
    attendees: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    minutes: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="planned")  # planned, held
    created_by: Mapped[str | None] = mapped_column(String(64))


class AgendaItem(Base):
    """One item of a round table's agenda, and how it ended (a null outcome carries it to the next)."""

    __tablename__ = "agenda_item"
    __table_args__ = (
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', OUTCOMES)}", name="outcome"),
        Index("ix_agenda_item_meeting", "meeting_id", "position"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("round_table.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    # carried, repeated_cases, open_case, open_demand, unclaimed_wish, overdue_claim, escalated, added
    source: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(Text)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("governance_item.id"), index=True)
    case_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), default=list)
    category_code: Mapped[str | None] = mapped_column(String(16))
    carried_from_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_item.id"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_note: Mapped[str] = mapped_column(Text, default="")
    due_on: Mapped[date | None] = mapped_column(Date)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
