"""Map assets without a CDN: folium's links rewritten to gridcase's vendored copies, or inlined.

Command centres often run on an intranet with no internet, so every script, style and icon a
folium map needs comes from `api/static/vendor/` (fetched from npm by its `fetch.sh`). Served
pages link them under a URL prefix; files written for offline use carry them inline.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from branca.element import Element, Figure
from folium.elements import JSCSSMixin
from folium.map import Icon

# The files live with the web app that serves them; geo/ only reads them (it never imports api/).
VENDOR_DIR = Path(__file__).resolve().parents[2] / "api" / "static" / "vendor"
DEFAULT_PREFIX = "/static/vendor"

# folium's resource names (the first item of each default_js/default_css pair) → vendored file.
ASSETS: dict[str, str] = {
    "leaflet": "leaflet/leaflet.js",
    "leaflet_css": "leaflet/leaflet.css",
    # folium's Popup template builds the popup's DOM node with jQuery.
    "jquery": "jquery/jquery.min.js",
    "leaflet-heat.js": "leaflet.heat/leaflet-heat.js",
    "markerclusterjs": "leaflet.markercluster/leaflet.markercluster.js",
    "markerclustercss": "leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/MarkerCluster.Default.css",
}
# folium.Map also asks for these; they only serve folium.Icon (awesome markers and their fonts),
# which gridcase maps do not use, so they are dropped rather than vendored (about 1 MB saved).
UNUSED: frozenset[str] = frozenset(
    {
        "bootstrap",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers",
        "awesome_markers_css",
        "awesome_markers_font_css",
        "awesome_rotate_css",
    }
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", ""})


class MissingAsset(ValueError):
    """A map element needs a script or style that gridcase does not vendor (a programming error)."""


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def _needed(root: Element) -> tuple[list[str], list[str]]:
    """Names of the scripts and styles the tree asks for, in first-use order, unused ones dropped."""
    js: dict[str, None] = {}
    css: dict[str, None] = {}
    for element in _walk(root):
        if isinstance(element, Icon):
            raise MissingAsset(
                "folium.Icon needs awesome-markers and Font Awesome, which are not "
                "vendored: draw a DivIcon or a CircleMarker instead"
            )
        if isinstance(element, JSCSSMixin):
            for kind, out in (("default_js", js), ("default_css", css)):
                for name, _url in getattr(element, kind):
                    if name in UNUSED:
                        continue
                    if name not in ASSETS:
                        raise MissingAsset(
                            f"{type(element).__name__} needs {name!r}: vendor it "
                            "in api/static/vendor (fetch.sh) and list it in ASSETS"
                        )
                    out[name] = None
    return list(js), list(css)


def localize(element: Element, prefix: str = DEFAULT_PREFIX) -> Figure:
    """Point every script and style of a folium map at the vendored copies under `prefix`."""
    root = element.get_root()
    assert isinstance(root, Figure), "add the map to a Figure first (folium.Map does it itself)"
    prefix = prefix.rstrip("/")
    _needed(root)  # raises before anything is changed when an asset is missing
    for node in _walk(root):
        if isinstance(node, JSCSSMixin):
            # Instance attributes: folium's class-level lists are shared by every map in the process.
            node.default_js = [(n, f"{prefix}/{ASSETS[n]}") for n, _ in node.default_js if n not in UNUSED]
            node.default_css = [(n, f"{prefix}/{ASSETS[n]}") for n, _ in node.default_css if n not in UNUSED]
    return root


def render_local(element: Element, prefix: str = DEFAULT_PREFIX) -> str:
    """The map page with only same-origin asset URLs; refuses to return one that loads from a CDN."""
    html = localize(element, prefix).render()
    _refuse_external(html)
    return html


_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)


def _data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css(path: Path) -> str:
    """The stylesheet with its relative images turned into data: URIs."""

    def replace(match: re.Match[str]) -> str:
        target = match.group(2).strip()
        if target.startswith(("data:", "#")):
            return match.group(0)
        return f'url("{_data_uri((path.parent / target).resolve())}")'

    return _CSS_URL.sub(replace, path.read_text("utf-8")).replace("</style", "<\\/style")


def _inline_js(path: Path) -> str:
    # A source map would be fetched relative to the page; "</script" would end the element early.
    return _SOURCE_MAP.sub("", path.read_text("utf-8")).replace("</script", "<\\/script")


def render_inline(element: Element, vendor_dir: Path = VENDOR_DIR) -> str:
    """One self-contained HTML page: scripts, styles and icons inline, no server, no network."""
    root = element.get_root()
    assert isinstance(root, Figure), "add the map to a Figure first (folium.Map does it itself)"
    js, css = _needed(root)
    for node in _walk(root):
        if isinstance(node, JSCSSMixin):
            node.default_js, node.default_css = [], []
    for name in css:
        root.header.add_child(
            Element(f"<style>\n{_inline_css(vendor_dir / ASSETS[name])}\n</style>"), name=f"inline_{name}"
        )
    for name in js:
        source = _inline_js(vendor_dir / ASSETS[name])
        if name == "leaflet":
            # Leaflet finds its marker images through the stylesheet's URL, which a data: URI
            # defeats; give it the images themselves.
            images = vendor_dir / "leaflet" / "images"
            source += (
                "\nL.Icon.Default.imagePath = '';\nL.Icon.Default.mergeOptions({"
                f"iconUrl: '{_data_uri(images / 'marker-icon.png')}', "
                f"iconRetinaUrl: '{_data_uri(images / 'marker-icon-2x.png')}', "
                f"shadowUrl: '{_data_uri(images / 'marker-shadow.png')}'}});"
            )
        root.header.add_child(Element(f"<script>\n{source}\n</script>"), name=f"inline_{name}")
    html = root.render()
    _refuse_external(html)
    return html


class _Links(HTMLParser):
    """Collects src/href attributes of tags and url() in style elements and style attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for key, value in attrs:
            if value and key in ("src", "href", "srcset", "data", "poster"):
                self.urls.append(value.strip())
            elif value and key == "style":
                self.urls.extend(m.group(2) for m in _CSS_URL.finditer(value))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(m.group(2) for m in _CSS_URL.finditer(data))
            self.urls.extend(re.findall(r"""@import\s+['"]([^'"]+)['"]""", data))


def external_urls(html: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """URLs in src/href attributes and CSS url() that point at a non-local host."""
    parser = _Links()
    parser.feed(html)
    found = []
    for url in parser.urls:
        parts = urlsplit(url)
        remote = parts.scheme in ("http", "https") or url.startswith("//")
        if remote and (parts.hostname or "") not in LOCAL_HOSTS | allowed:
            found.append(url)
    return found


def _refuse_external(html: str) -> None:
    # Tile URLs (GRIDCASE_TILES_URL) live inside the map script, not in src/href: not refused here.
    if found := external_urls(html):
        raise MissingAsset(f"map page would load from the network: {found[:5]}")
