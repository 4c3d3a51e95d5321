"""The category catalogue (部件/事件 subclasses) as pickers and clients see it."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.store.models import Category


class CategoryOut(BaseModel):
    """A catalogue subclass: code, Chinese and English name, component or event."""

    code: str
    name: str
    name_en: str | None
    kind: str


def list_categories(session: Session) -> list[CategoryOut]:
    """Every subclass, events first (what inspectors report most), then by code."""
    rows = session.scalars(select(Category).order_by(Category.kind.desc(), Category.code))
    return [CategoryOut(code=c.code, name=c.name, name_en=c.name_en, kind=c.kind) for c in rows]
