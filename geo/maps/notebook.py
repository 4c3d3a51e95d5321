"""The planners' notebooks draw like the server: folium maps offline, charts in Chinese first.

`show(fmap)` puts a folium map in a notebook as one self-contained page (scripts, styles and
images inline from `api/static/vendor/`, `render_inline`) inside a sandboxed iframe: no CDN, so
it draws on an intranet and in an exported HTML file. folium's own display links its CDNs.
`chinese_fonts()` lets matplotlib draw Chinese labels with Noto Sans CJK (run.sh installs it).
"""

from __future__ import annotations

import html

import folium

from geo.maps.offline import render_inline


class OfflineMap:
    """A folium map as a notebook cell shows it (IPython calls `_repr_html_`)."""

    def __init__(self, fmap: folium.Map, height: int = 560) -> None:
        self.page = render_inline(fmap)  # raises MissingAsset before anything would load remotely
        self.height = height

    def _repr_html_(self) -> str:
        # srcdoc keeps the page in the notebook file; the sandbox lets only its own scripts run.
        return (
            f'<iframe class="gridcase-offline-map" srcdoc="{html.escape(self.page, quote=True)}" '
            f'sandbox="allow-scripts" style="width: 100%; height: {self.height}px; border: 0"></iframe>'
        )


def show(fmap: folium.Map, height: int = 560) -> OfflineMap:
    """The map for a notebook cell, drawn from the vendored assets only."""
    return OfflineMap(fmap, height)


def legend(fmap: folium.Map, title: str, low: float, high: float, colours: tuple[str, ...]) -> None:
    """A colour-scale legend drawn as plain HTML (branca's colormap legend needs d3 from a CDN)."""
    gradient = ",".join(colours)
    fmap.get_root().html.add_child(  # type: ignore[attr-defined]
        folium.Element(
            '<div style="position: fixed; bottom: 24px; right: 12px; z-index: 1000; padding: 6px 10px;'
            " background: rgba(255,255,255,.92); border-radius: 4px; font: 13px/1.4 'Noto Sans CJK SC',"
            f' sans-serif"><b>{html.escape(title)}</b><div style="width: 180px; height: 12px;'
            f' background: linear-gradient(to right,{gradient})"></div>'
            f'<div style="display: flex; justify-content: space-between"><span>{low:g}</span>'
            f"<span>{high:g}</span></div></div>"
        )
    )


def chinese_fonts() -> None:
    """Chinese labels in matplotlib charts: Noto Sans CJK SC first, then the usual fonts."""
    import matplotlib

    fonts = matplotlib.rcParams["font.sans-serif"]
    if "Noto Sans CJK SC" not in fonts:
        matplotlib.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", *fonts]
    matplotlib.rcParams["axes.unicode_minus"] = False  # the CJK font has no U+2212 minus
