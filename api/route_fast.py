"""`GET /api/v1/route` answered without the framework's per-request work, when the request is plain.

The lookup is the API's busiest read and its decision takes tens of microseconds, yet FastAPI's
routing, dependency resolution and parameter validation cost several times that per request
(`bench/route_http.py`). This ASGI middleware answers the plain form of the request itself: `lon`
and `lat` as decimal numbers, and optionally `category` (a code of letters and digits) and `crs`
(a system's name), each at most once, nothing percent-encoded and no other parameter, when the
cached index answers. Its body is the endpoint's (`api/routes/routing.py`, which stays the declared
and documented operation): the same decision serialised by the same model, `application/json`.
It sits inside `SecurityHeaders`, so its answers carry the same headers as every other.

Everything else goes down the stack to the endpoint unchanged: another parameter, a repeated or
encoded one, a number spelled otherwise (`1e3`, `nan`, ` 1`), an unknown system, any domain error
(an unknown category, swapped coordinates: the endpoint raises the same error again and answers its
422 naming the field), or a cache that must read PostGIS first (the endpoint does that on a worker
thread). So every refusal is the endpoint's own, and the fast path never answers what the
endpoint would not answer with the same bytes.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from geo.coords import CoordinateSystem
from geo.errors import GridcaseError

PATH = "/api/v1/route"
# What FastAPI reads as the same float: a plain decimal (pydantic and float() agree on it exactly).
_NUMBER = re.compile(rb"-?[0-9]{1,3}(?:\.[0-9]{1,17})?")
_CODE = re.compile(rb"[A-Za-z0-9_-]{1,32}")
_SYSTEMS = {system.value.encode(): system for system in CoordinateSystem}
_HEADERS = [(b"content-type", b"application/json")]


def plain_query(query: bytes) -> tuple[float, float, str | None, CoordinateSystem] | None:
    """lon, lat, category and system of a plain query string, or None (the endpoint reads it)."""
    found: dict[bytes, bytes] = {}
    for part in query.split(b"&"):
        name, equals, value = part.partition(b"=")
        if not equals or name in found:
            return None
        found[name] = value
    lon, lat = found.pop(b"lon", None), found.pop(b"lat", None)
    category, crs = found.pop(b"category", None), found.pop(b"crs", b"wgs84")
    if found or lon is None or lat is None or not (_NUMBER.fullmatch(lon) and _NUMBER.fullmatch(lat)):
        return None
    if category is not None and not _CODE.fullmatch(category):
        return None
    system = _SYSTEMS.get(crs)
    if system is None:
        return None
    return float(lon), float(lat), category.decode() if category is not None else None, system


class RoutePointFastPath:
    """ASGI middleware: answers a plain `GET /api/v1/route` from the cached index, else passes it on."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            body = self._answer(scope)
            if body is not None:
                headers = [(b"content-length", str(len(body)).encode()), *_HEADERS]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _answer(scope: Scope) -> bytes | None:
        """The decision's JSON, or None when the endpoint must answer."""
        if scope.get("root_path"):
            return None  # served under a prefix: the framework's routing decides what the path is
        point = plain_query(scope["query_string"])
        if point is None:
            return None
        router = scope["app"].state.router
        if not router.answers_from_memory():
            return None  # the endpoint reads PostGIS on a worker thread
        lon, lat, category, system = point
        try:
            decision = router.route(lon, lat, category, system)
        except GridcaseError:
            return None  # the endpoint raises it again and answers with its status and field
        return decision.model_dump_json().encode()
