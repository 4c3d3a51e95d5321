"""The tables of gridcase: areas in boundary generations, units, categories, layers, cases.

All geometries are SRID 4326 (WGS-84 lon/lat; CGCS2000 is the same at metre level) with GiST
indexes. Schema changes go through Alembic migrations in geo/migrations.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for Alembic."""

    metadata = MetaData(naming_convention=NAMING)


class AreaLevel(StrEnum):
    """Levels of the area hierarchy: 区/县 → 街道 → 社区 → 网格, and 小区 inside communities."""

    district = "district"
    street = "street"
    community = "community"
    grid = "grid"
    compound = "compound"


class UnitKind(StrEnum):
    """Kinds of responsible unit (责任单位)."""

    bureau = "bureau"
    street_office = "street_office"
    community_committee = "community_committee"
    property_company = "property_company"
    utility = "utility"


class CategoryKind(StrEnum):
    """部件 (components: things with an owner) and 事件 (events: things that happen)."""

    component = "component"
    event = "event"


class TimeLimitUnit(StrEnum):
    """How a category's time limit is counted."""

    urgent_hours = "urgent_hours"  # 24/7 clock
    working_hours = "working_hours"  # on the work calendar
    working_days = "working_days"
    natural_days = "natural_days"


class BoundaryGeneration(Base):
    """One load of boundaries; the newest whose valid_from has passed is current (MapIt's idea)."""

    __tablename__ = "boundary_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str | None] = mapped_column(Text)


class Area(Base):
    """A district, street, community, grid or compound polygon, valid for a range of generations.

    A row is never edited once a later generation exists: a changed boundary gets a new row, so a
    case that recorded `area.id` keeps the polygon that was valid when it was reported.
    """

    __tablename__ = "area"
    __table_args__ = (
        UniqueConstraint("code", "generation_low", name="code_generation"),
        CheckConstraint("generation_low <= generation_high", name="generation_range"),
        CheckConstraint("level IN ('district','street','community','grid','compound')", name="level"),
        Index("ix_area_level_code", "level", "code"),
        Index("ix_area_generations", "generation_low", "generation_high"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(String(32))
    generation_low: Mapped[int] = mapped_column(ForeignKey("boundary_generation.id"))
    generation_high: Mapped[int] = mapped_column(ForeignKey("boundary_generation.id"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True))


class Unit(Base):
    """A responsible unit (责任单位): bureau, street office, property company, utility."""

    __tablename__ = "unit"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))


class GridResponsibility(Base):
    """A unit's 包保 responsibility for a grid, by grid code (codes outlive boundary changes)."""

    __tablename__ = "grid_responsibility"

    unit_code: Mapped[str] = mapped_column(ForeignKey("unit.code", ondelete="CASCADE"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class Category(Base):
    """A catalogue subclass (部件/事件 class + subclass) with its department and time limit."""

    __tablename__ = "category"
    __table_args__ = (
        CheckConstraint("kind IN ('component','event')", name="kind"),
        CheckConstraint(
            "time_limit_unit IN ('urgent_hours','working_hours','working_days','natural_days')",
            name="time_limit_unit",
        ),
        CheckConstraint("time_limit > 0", name="time_limit_positive"),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)  # e.g. E0102, C0101
    kind: Mapped[str] = mapped_column(String(16))
    class_code: Mapped[str] = mapped_column(String(2))
    subclass_code: Mapped[str] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    department_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    time_limit: Mapped[float] = mapped_column(Numeric(8, 2))
    time_limit_unit: Mapped[str] = mapped_column(String(16))
    duplicate_radius_m: Mapped[float | None] = mapped_column(Float)
    duplicate_window_h: Mapped[float | None] = mapped_column(Float)


class ResponsibilityLayer(Base):
    """A thematic zone (river, lake, road, park) that overrides the grid for some categories.

    `geom` is the line or polygon as drawn; `zone` is it buffered by `buffer_m` metres (computed on
    the geography, so metres are true metres), which is what lookups test against.
    """

    __tablename__ = "responsibility_layer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    unit_code: Mapped[str] = mapped_column(ForeignKey("unit.code"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    buffer_m: Mapped[float] = mapped_column(Float, default=0.0)
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(16)), default=list)
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True))
    zone: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True))


class ReferenceVersion(Base):
    """A counter bumped by every import, so in-process indexes know when to rebuild."""

    __tablename__ = "reference_version"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Case(Base):
    """A reported problem and where it stands in the workflow (案件)."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_state_unit", "state", "unit_code"),
        Index("ix_cases_reported_at", "reported_at"),
        # The queues: a state's oldest reports first (migration 0008).
        Index("ix_cases_state_reported", "state", "reported_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(32), unique=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("category.code"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(32))
    reporter_contact: Mapped[str | None] = mapped_column(Text)  # private
    reported_by: Mapped[str | None] = mapped_column(String(64))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reported_crs: Mapped[str] = mapped_column(String(16), default="wgs84")
    reported_lon: Mapped[float | None] = mapped_column(Float)
    reported_lat: Mapped[float | None] = mapped_column(Float)
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    state: Mapped[str] = mapped_column(String(24))
    grid_area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"))
    grid_code: Mapped[str | None] = mapped_column(String(32), index=True)
    community_code: Mapped[str | None] = mapped_column(String(32), index=True)
    street_code: Mapped[str | None] = mapped_column(String(32))
    district_code: Mapped[str | None] = mapped_column(String(32))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    cooperating_unit_codes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    routing: Mapped[dict | None] = mapped_column(JSONB)
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Counted past the loaded work calendar (as if that year had no holidays): recomputed on loading it.
    deadline_provisional: Mapped[bool] = mapped_column(default=False, server_default="false")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # Hash of the first request with that key: a retry with a different body is refused.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    reporter_account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    time_limit: Mapped[float | None] = mapped_column(Numeric(8, 2))
    time_limit_unit: Mapped[str | None] = mapped_column(String(16))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parked_from_state: Mapped[str | None] = mapped_column(String(24))
    extensions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    extension_requested: Mapped[bool] = mapped_column(default=False, server_default="false")
    supervised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # An unsatisfied resident's rating asks the centre to look at the case again (it decides).
    review_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __mapper_args__ = {"version_id_col": version}


class Account(Base):
    """A person who signs in: inspector, resident, operator, dispatcher, unit handler, admin, planner."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint(
            "role IN ('inspector','resident','operator','dispatcher','unit_handler','admin','planner',"
            "'community_staff')",
            name="role",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    grid_codes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    display_name: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256."""

    __tablename__ = "api_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A page sign-in (cookie session), stored only as its token's SHA-256, with its CSRF token."""

    __tablename__ = "web_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CasePhoto(Base):
    """A photo of a case: the private original (with EXIF) and the public copy (without)."""

    __tablename__ = "case_photo"
    __table_args__ = (UniqueConstraint("case_id", "original_key", name="case_original"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_event.id"))
    purpose: Mapped[str] = mapped_column(String(16))  # report | after | check
    original_key: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    public_content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaseLink(Base):
    """A suggested duplicate: an open case of the same category near in space and time."""

    __tablename__ = "case_link"
    __table_args__ = (UniqueConstraint("case_id", "other_case_id", name="pair"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    other_case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    distance_m: Mapped[float] = mapped_column(Float)
    hours_apart: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="suggested")  # suggested|merged|dismissed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaseEvent(Base):
    """One step in a case's life; append-only (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "case_event"
    __table_args__ = (Index("ix_case_event_case_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32), index=True)
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    unit_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSONB)


class WorkCalendarYear(Base):
    """A year whose official holidays and make-up days are loaded (from that year's notice)."""

    __tablename__ = "work_calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    loaded_by: Mapped[str | None] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WorkCalendarDay(Base):
    """A day off (放假, `holiday`) or a weekend day worked (调休上班, `workday`) of a loaded year."""

    __tablename__ = "work_calendar_day"
    __table_args__ = (CheckConstraint("kind IN ('holiday','workday')", name="kind"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text, default="", server_default="")


class AdminLog(Base):
    """One change an administrator made: who, when, through what, to what, before and after."""

    __tablename__ = "admin_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))  # cli | web
    action: Mapped[str] = mapped_column(String(32))
    subject_kind: Mapped[str] = mapped_column(String(16))  # account | unit | category | calendar
    subject: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)


class CaseFollower(Base):
    """An e-mail address or phone number that hears when a case changes state (关注)."""

    __tablename__ = "case_follower"
    __table_args__ = (
        CheckConstraint("kind IN ('email','phone')", name="kind"),
        UniqueConstraint("case_id", "kind", "address", name="case_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(8))  # email (SMTP) | phone (SMS through the webhook)
    address: Mapped[str] = mapped_column(Text)
    # The reporter holds the tracking code; a follower of someone else's report never gets it.
    is_reporter: Mapped[bool] = mapped_column(default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Notice(Base):
    """The outbox: one notice of one state change to one follower, until it is sent.

    Written by a trigger on `case_event` in the event's own transaction (migration 0009).
    """

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("case_event.id"))
    follower_id: Mapped[int] = mapped_column(ForeignKey("case_follower.id"))
    kind: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    given_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class CaseRating(Base):
    """The verdict on a closed case (满意/基本满意/不满意), by the resident or the callback (回访)."""

    __tablename__ = "case_rating"
    __table_args__ = (
        CheckConstraint("rating IN ('satisfied','basically_satisfied','unsatisfied')", name="rating"),
        CheckConstraint("source IN ('resident','callback')", name="source"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    rating: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    source: Mapped[str] = mapped_column(String(16))
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseCallback(Base):
    """One call back to a closed case's reporter (回访): reached or not; a reached one rates it."""

    __tablename__ = "case_callback"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(64))
    reached: Mapped[bool] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
