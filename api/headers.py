"""Security headers on every answer: a Content-Security-Policy with no remote origin, and friends.

Pages load only what gridcase serves itself (and map tiles from the configured intranet server),
may not be framed by another site, and send no referrer outside. folium's map pages carry inline
scripts: their CSP allows exactly those scripts by hash (`script_hashes`), nothing else inline.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", re.DOTALL | re.IGNORECASE)
_DATA_BLOCK = re.compile(r"""\btype\s*=\s*["']?application/(ld\+)?json""", re.IGNORECASE)


def origin_of(url: str | None) -> str | None:
    """scheme://host[:port] of a URL template such as a tile server's, or None."""
    if not url:
        return None
    parts = urlsplit(url.replace("{s}", "a"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def script_hashes(html: str) -> list[str]:
    """CSP sources for each inline script of a page (JSON data blocks are not scripts)."""
    found = []
    for attributes, body in _INLINE_SCRIPT.findall(html):
        if _DATA_BLOCK.search(attributes):
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        found.append(f"'sha256-{digest}'")
    return sorted(set(found))


def content_security_policy(tiles_url: str | None = None, scripts: list[str] | None = None) -> str:
    """The policy: same origin only, the tile server for images, inline scripts only by hash."""
    tiles = origin_of(tiles_url)
    images = " ".join(filter(None, ["'self'", "data:", "blob:", tiles]))
    script_sources = " ".join(["'self'", *(scripts or [])])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_sources}",
            # Leaflet and folium set inline styles on the map's elements.
            "style-src 'self' 'unsafe-inline'",
            f"img-src {images}",
            "connect-src 'self'",
            "font-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        ]
    )


class SecurityHeaders:
    """ASGI middleware: adds the headers to every HTTP answer that does not set its own CSP."""

    def __init__(self, app: ASGIApp, tiles_url: str | None = None):
        self.app = app
        self.fixed = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"SAMEORIGIN"),
        ]
        self.csp = content_security_policy(tiles_url).encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in self.fixed if n not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", self.csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
