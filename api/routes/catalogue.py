"""The category catalogue: `GET /api/v1/categories` (public, for report forms)."""

from __future__ import annotations

from fastapi import APIRouter

from api.scaling import ReadSessionDep
from geo.catalogue import CategoryOut, list_categories

router = APIRouter(prefix="/api/v1", tags=["catalogue"])


@router.get("/categories", response_model=list[CategoryOut])
def categories(session: ReadSessionDep) -> list[CategoryOut]:
    """Every subclass (部件/事件): code, name, name_en, kind."""
    return list_categories(session)
