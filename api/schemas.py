"""Response schemas of the case API: the read side's models (geo/cases/views.py), under API names.

The contract tests validate responses with these same classes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from geo.cases.views import CasePage as CaseList
from geo.cases.views import CaseView as CaseOut
from geo.cases.views import DuplicateView as DuplicateOut
from geo.cases.views import EventView as EventOut
from geo.cases.views import PhotoView as PhotoOut
from geo.cases.views import PublicCaseView as CasePublic

__all__ = ["CaseList", "CaseOut", "CasePublic", "DuplicateOut", "EventOut", "PhotoOut", "inline_schema"]


def inline_schema(model: type[BaseModel]) -> dict:
    """A model's JSON schema with its `$defs` written in place, for a hand-written request body.

    pydantic refers to nested models as `#/$defs/...`, relative to its own schema; put into an
    OpenAPI document such a pointer resolves against the document's root, where Swagger UI and
    ReDoc find nothing (ReDoc stops with "Invalid reference token: $defs").
    """
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)
