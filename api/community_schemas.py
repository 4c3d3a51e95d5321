"""What the community-governance API (/api/v1/community/...) reads and answers (pydantic)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.inputs import check_text
from geo.cases.views import BIGINT_MAX
from geo.errors import InvalidInput

ListName = Literal["demand", "resource", "wish"]
Kind = Literal[
    "elderly",
    "children",
    "environment",
    "facilities",
    "safety",
    "health",
    "culture",
    "employment",
    "legal",
    "greening",
]
ClaimerKind = Literal["unit", "member", "branch"]
Outcome = Literal["claimed", "escalated", "case", "closed"]


class Body(BaseModel):
    """A request body: extra fields refused, and only text PostgreSQL can store (no NUL)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def storable_text(cls, data: object) -> object:
        try:
            check_text(data)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return data


class ItemIn(Body):
    """A new demand, resource or small wish."""

    list: ListName
    area: str = Field(
        min_length=12,
        max_length=32,
        pattern=r"^[0-9]{12}(C[0-9]{3})?$",
        description="a compound's code (a resource: or a community's)",
    )
    kind: Kind
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    raised_by: str = Field(default="", max_length=200, description="who raised it, as they said it")
    due_on: date | None = None
    offered_by: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="a resource's co-building unit id"
    )


class ItemOut(BaseModel):
    """An item of the lists, with names."""

    id: int
    list: str
    kind: str
    title: str
    description: str
    raised_by: str
    raised_on: date
    compound_code: str | None
    compound: str
    community_code: str
    community: str
    level: str = Field(description="compound, or community once escalated to the big round table")
    state: str = Field(description="open, claimed or closed (closed off, 销号)")
    claimer_kind: str | None
    claimer: str
    due_on: date | None
    overdue: bool
    closed_on: date | None
    close_note: str | None
    close_photo_key: str | None
    offered_by: str
    resource_id: int | None
    case_id: int | None


class ItemList(BaseModel):
    """One page of items and how many match."""

    total: int
    page: int
    page_size: int
    items: list[ItemOut]


class NoteOut(BaseModel):
    """One entry of an item's history."""

    at: str
    by: str
    kind: str
    text: str
    photo_key: str | None


class ItemDetail(BaseModel):
    """An item with its history and the resources it could be matched to."""

    item: ItemOut
    history: list[NoteOut]
    matches: list[ItemOut]


class ClaimIn(Body):
    """Who claims (认领/领办) and by when."""

    claimer: ClaimerKind
    unit: int | None = Field(default=None, ge=1, le=2**31 - 1, description="a co-building unit id")
    member: int | None = Field(default=None, ge=1, le=2**31 - 1, description="a registered member id")
    compound: str | None = Field(default=None, min_length=16, max_length=16, pattern=r"^[0-9]{12}C[0-9]{3}$")
    due_on: date
    resource: int | None = Field(default=None, ge=1, le=BIGINT_MAX, description="the matched resource item")
    note: str = Field(default="", max_length=2000)


class NoteIn(Body):
    """A progress note."""

    text: str = Field(min_length=1, max_length=2000)


class MeetingIn(Body):
    """A round table to prepare (its agenda is proposed)."""

    area: str = Field(
        min_length=12,
        max_length=32,
        pattern=r"^[0-9]{12}(C[0-9]{3})?$",
        description="a compound (圆桌会) or a community (大圆桌会)",
    )
    held_on: date
    chair: str = Field(default="", max_length=200)
    attendees: dict[str, list[str]] = Field(
        default_factory=dict,
        description="names by party: branch, owners_committee, property, residents, co_building, leader",
    )


class RecordIn(Body):
    """What the meeting recorded."""

    chair: str | None = Field(default=None, max_length=200)
    attendees: dict[str, list[str]] | None = None
    minutes: str | None = Field(default=None, max_length=20000)
    held: bool | None = None


class AddIn(Body):
    """An item of the lists to put on the agenda."""

    item: int = Field(ge=1, le=BIGINT_MAX)


class DecisionIn(Body):
    """How an agenda item ends."""

    outcome: Outcome
    claimer: ClaimerKind | None = None
    unit: int | None = Field(default=None, ge=1, le=2**31 - 1)
    member: int | None = Field(default=None, ge=1, le=2**31 - 1)
    compound: str | None = Field(default=None, min_length=16, max_length=16, pattern=r"^[0-9]{12}C[0-9]{3}$")
    due_on: date | None = None
    note: str = Field(
        default="", max_length=2000, description="the reason (closed), or a word for the record"
    )
    category: str | None = Field(default=None, min_length=1, max_length=16, description="a case's category")
    resource: int | None = Field(default=None, ge=1, le=BIGINT_MAX)


class AgendaOut(BaseModel):
    """An agenda item."""

    id: int
    position: int
    source: str
    title: str
    item: ItemOut | None
    case_count: int
    category_code: str | None
    outcome: str | None
    outcome_note: str
    due_on: date | None
    case_tracking_code: str | None


class MeetingOut(BaseModel):
    """A round table and its agenda."""

    id: int
    level: str
    area_code: str
    area: str
    community_code: str
    held_on: date
    chair: str
    attendees: dict[str, list[str]]
    minutes: str
    state: str
    agenda: list[AgendaOut]


class MeetingSummary(BaseModel):
    """A round table in a list."""

    id: int
    level: str
    area_code: str
    held_on: date
    chair: str
    state: str


class ProposalOut(BaseModel):
    """One item of a proposed agenda."""

    source: str
    title: str
    item_id: int | None
    case_ids: list[int]
    category_code: str | None


class MemberIn(Body):
    """A cadre or party member registering to the compound they live in (双报到)."""

    compound: str = Field(min_length=16, max_length=16, pattern=r"^[0-9]{12}C[0-9]{3}$")
    name: str = Field(min_length=1, max_length=100)
    workplace: str = Field(default="", max_length=200)
    cadre: bool = True
    posts: list[
        Literal["patrol", "elderly", "environment", "mediation", "policy", "volunteer", "youth", "health"]
    ] = Field(default_factory=list, max_length=8)


class MemberOut(BaseModel):
    """A registered member and the posts they claimed."""

    id: int
    name: str
    compound_code: str
    workplace: str
    cadre: bool
    registered_on: date
    posts: list[str]


class PartyOut(BaseModel):
    """One of a compound's three parties."""

    party: str
    name: str
    head: str


class CompoundOut(BaseModel):
    """A compound: its three parties and registered members."""

    code: str
    name: str
    community_code: str
    parties: list[PartyOut]
    members: list[MemberOut]


class CoUnitIn(Body):
    """A co-building agreement with a unit (created if new)."""

    community: str = Field(min_length=12, max_length=12, pattern=r"^[0-9]{12}$")
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="organisation", min_length=1, max_length=32)
    signed_on: date


class CoUnitOut(BaseModel):
    """A co-building unit."""

    id: int
    name: str
    kind: str


class FiguresRow(BaseModel):
    """One area's figures."""

    area_code: str
    area: str
    raised: int
    claimed: int
    closed: int
    overdue: int
    answered: int
    share_answered: float | None


class Headline(BaseModel):
    """The published headline: counts, and the published form of each (1,500+)."""

    as_of: date
    counts: dict[str, int]
    published: dict[str, str]


class ScreenFigures(BaseModel):
    """The big screen's community-governance strip."""

    month: str
    raised: int
    claimed: int
    closed: int
    overdue: int
    share_answered: float | None
    compounds: int
    compounds_meeting: int
    big_meetings: int
