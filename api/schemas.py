"""Response schemas of the case API (the same models the contract tests validate against)."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2.shape import to_shape
from pydantic import BaseModel

from geo.store.models import Case, CaseEvent, CasePhoto


class PhotoOut(BaseModel):
    """A photo's public copy (EXIF removed)."""

    id: int
    url: str
    purpose: str
    width: int
    height: int
    taken_at: datetime | None = None


class EventOut(BaseModel):
    """One step of the case's life."""

    at: datetime
    action: str
    from_state: str | None
    to_state: str
    actor: str | None = None
    role: str | None = None
    unit_code: str | None = None
    note: str | None = None
    data: dict | None = None


class CasePublic(BaseModel):
    """What anyone with the tracking code may see: no contacts, no people, no private photos."""

    tracking_code: str
    category_code: str
    description: str
    state: str
    reported_at: datetime
    community_code: str | None
    lon: float | None
    lat: float | None
    photos: list[PhotoOut]
    events: list[EventOut]


class CaseOut(BaseModel):
    """The full case, for staff and the people it belongs to."""

    id: int
    tracking_code: str
    version: int
    category_code: str
    description: str
    channel: str
    reporter_contact: str | None
    reported_by: str | None
    reported_at: datetime
    state: str
    lon: float | None
    lat: float | None
    grid_code: str | None
    community_code: str | None
    street_code: str | None
    district_code: str | None
    unit_code: str | None
    cooperating_unit_codes: list[str]
    routing: dict | None
    deadline_at: datetime | None
    overdue: bool
    extensions: int
    extension_requested: bool
    parked_at: datetime | None
    supervised_at: datetime | None
    merged_into_id: int | None
    closed_at: datetime | None
    allowed_actions: list[str]
    photos: list[PhotoOut] = []
    events: list[EventOut] = []
    duplicates: list[dict] = []


class CaseList(BaseModel):
    """One page of cases."""

    total: int
    page: int
    page_size: int
    items: list[CaseOut]


def photo_out(photo: CasePhoto) -> PhotoOut:
    """The public URL of a photo."""
    return PhotoOut(
        id=photo.id,
        url=f"/api/v1/photos/{photo.public_key}",
        purpose=photo.purpose,
        width=photo.width,
        height=photo.height,
        taken_at=photo.taken_at,
    )


def event_out(event: CaseEvent, public: bool = False) -> EventOut:
    """An event; the public view hides who did it and internal notes."""
    if public:
        return EventOut(
            at=event.at, action=event.action, from_state=event.from_state, to_state=event.to_state
        )
    return EventOut(
        at=event.at,
        action=event.action,
        from_state=event.from_state,
        to_state=event.to_state,
        actor=event.actor,
        role=event.role,
        unit_code=event.unit_code,
        note=event.note,
        data=event.data,
    )


def location_of(case: Case) -> tuple[float | None, float | None]:
    """WGS-84 lon/lat of the case's stored point."""
    if case.location is None:
        return None, None
    if isinstance(case.location, str):  # just created: the EWKT we wrote
        x, y = case.location.split("POINT(")[1].rstrip(")").split()
        return float(x), float(y)
    point = to_shape(case.location)
    return point.x, point.y
