"""The published OpenAPI document says what the API really answers (issue 11): one error body,
every error status, and no reference that leads nowhere."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from api.errors import ERROR_RESPONSES, ErrorOut
from geo.settings import Settings

DOCUMENT = create_app(Settings(database_url=None)).openapi()
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]


def refs(node: Any) -> list[str]:
    """Every `$ref` in a part of the document."""
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_every_reference_resolves_in_the_document():
    found = set(refs(DOCUMENT))
    assert found, "the document references its schemas"
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref  # never a model's local #/$defs
        assert ref.rsplit("/", 1)[-1] in DOCUMENT["components"]["schemas"], ref


def test_the_error_body_is_the_one_served():
    schemas = DOCUMENT["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    detail = schemas["ErrorDetail"]
    assert set(detail["properties"]) == {"field", "message", "type"} == set(detail["required"])
    assert ErrorOut.model_validate({"detail": [{"field": "month", "message": "why", "type": "InvalidInput"}]})


#: Errors answered as an HTML page (a person reads them in the browser), each declared by its route.
PAGE_ERRORS = {("GET /maps/communities/{code}/heatmap", 404)}


@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=[name for name, _ in OPERATIONS])
def test_every_operation_documents_its_errors_as_json(name, operation):
    for status in ERROR_RESPONSES:
        response = operation["responses"][str(status)]
        expected = (
            {"text/html": {"schema": {"type": "string"}}}
            if (name, status) in PAGE_ERRORS
            else {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        )
        assert response["content"] == expected, f"{name} {status}"
        assert response["description"]
        assert "x-gridcase-page" not in response  # the mark is read, not published


def test_report_bodies_document_the_model_fields():
    body = DOCUMENT["paths"]["/api/v1/cases"]["post"]["requestBody"]
    json_schema = body["content"]["application/json"]["schema"]
    assert json_schema["properties"]["crs"]["enum"] == ["wgs84", "cgcs2000", "gcj02", "bd09"]
    assert "photos" in body["content"]["multipart/form-data"]["schema"]["properties"]
    action = DOCUMENT["paths"]["/api/v1/cases/{ref}/actions/{action}"]["post"]
    assert "expected_version" in action["requestBody"]["content"]["application/json"]["schema"]["properties"]
