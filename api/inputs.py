"""Reading what a request carries: text PostgreSQL can store, JSON Python can read.

Each check lives here once and names the input it refuses: `text_parameters` guards every path and
query parameter of every route, `read_json` every JSON body, `check_text` the fields of a form.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from geo.errors import InvalidInput

# In JSON text a NUL or a UTF-16 surrogate can only be written as an escape: a body without one
# needs no walk through its values.
_SUSPECT_ESCAPE = re.compile(r"\\u(0000|[dD][89a-fA-F])")


def check_string(value: str, field: str) -> None:
    """Refuse a string PostgreSQL cannot store: a NUL character, or half a surrogate pair."""
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL character (U+0000), which text cannot hold", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{field} contains a lone UTF-16 surrogate: it is not Unicode text", field=field
        ) from None


def check_text(value: Any, field: str = "") -> None:
    """Check every string (keys too) in nested JSON-like values; the field is its dotted path."""
    # Breadth first with a queue, not recursion: a body may nest as deeply as the parser allowed.
    pending: deque[tuple[str, Any]] = deque([(field, value)])
    while pending:
        where, item = pending.popleft()
        if isinstance(item, str):
            check_string(item, where or "body")
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str):
                    check_string(key, path)
                pending.append((path, inner))
        elif isinstance(item, list | tuple):
            pending.extend((f"{where}[{number}]", inner) for number, inner in enumerate(item))


def read_json(body: bytes, field: str = "body") -> Any:
    """A JSON body as Python values, or InvalidInput naming `field` and saying what is wrong."""
    try:
        # RFC 8259: JSON exchanged between systems is UTF-8 (a byte order mark is tolerated).
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{field} is not UTF-8 text: byte {body[exc.start]:#04x} at offset {exc.start}", field=field
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{field} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field=field
        ) from None
    except ValueError as exc:
        # e.g. an integer of more than 4,300 digits (sys.get_int_max_str_digits())
        raise InvalidInput(f"{field} has a value Python cannot read: {exc}", field=field) from None
    except RecursionError:
        raise InvalidInput(f"{field} nests arrays or objects too deeply to be read", field=field) from None
    if _SUSPECT_ESCAPE.search(text):
        check_text(data)
    return data


async def text_parameters(request: Request) -> None:
    """Every route's path and query parameters: no text PostgreSQL cannot store (a NUL byte)."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_string(value, name)
    for name, value in request.query_params.multi_items():
        check_string(value, name)
