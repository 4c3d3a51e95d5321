"""The planners' notebooks run top to bottom against the demo database, as a planner would run them.

Each notebook is executed with nbclient in a kernel on this interpreter (the project's .venv), with
DATABASE_URL pointing at the demo database, so `Settings()` + `Store(settings)` in the notebook
connect there. Any cell error fails the test; key outputs are checked too. Their folium maps are
then drawn in Debian's Chromium with every request blocked: they must need no network at all.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from playwright.sync_api import Browser, Route

from geo.maps.offline import external_urls
from tests.browser.conftest import ARTIFACTS

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "gridcase-tests"

# What each notebook must print, beyond running without error.
EXPECTED = {
    "01_hotspots.ipynb": ["7,534 cases in 263 grids", "hexagons of 250 m cover the grids", "hotspots in"],
    "02_grid_workload.ipynb": [
        "assumption: 10 cases per grid worker per month",
        "validation findings: 0",
        "No findings",
        "all codes are 15 digits",
    ],
    "03_unit_performance.ipynb": ["weeks of indicators", "units ranked by returns"],
    "04_hotspots_at_scale.ipynb": [
        "exported 7,5",  # the demo's cases, written as GeoParquet by the notebook itself
        "squares of 250 m (checked against PostgreSQL",
        "hotspot grids:",
        "months: ",
    ],
}
# How many interactive (folium) maps each notebook draws.
MAPS = {
    "01_hotspots.ipynb": 2,
    "02_grid_workload.ipynb": 1,
    "03_unit_performance.ipynb": 0,
    "04_hotspots_at_scale.ipynb": 0,
}
EXECUTED: dict[str, nbformat.NotebookNode] = {}


@pytest.fixture(scope="module")
def kernel(demo_store, tmp_path_factory) -> Iterator[str]:
    """A kernelspec on this interpreter whose environment points DATABASE_URL at the demo database."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "gridcase tests",
                "language": "python",
                "env": {
                    "DATABASE_URL": demo_store.url,
                    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                },
            }
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        # JUPYTER_PATH comes first in the kernelspec search, so this spec wins over any installed one.
        patch.setenv("JUPYTER_PATH", str(root))
        yield KERNEL


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code), "clear outputs before committing"


def _executed(name: str, kernel: str) -> nbformat.NotebookNode:
    """The notebook run top to bottom (once per test session)."""
    if name not in EXECUTED:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        client = NotebookClient(
            notebook, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        client.execute()  # raises CellExecutionError, naming the cell, when any cell fails
        EXECUTED[name] = notebook
    return EXECUTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_reads_chinese_first(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    headings = [
        line
        for c in notebook.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("#")
    ]
    assert len(headings) >= 4
    for heading in headings:  # the first word a reader meets is Chinese
        assert re.match(r"#+ (\d+\. )?[\u4e00-\u9fff]", heading), heading
    titles = re.findall(
        r"set_(?:title|xlabel|ylabel)\((f?\"[^\"]*\")", "\n".join(c.source for c in notebook.cells)
    )
    assert titles and all(re.search(r"[\u4e00-\u9fff]", t) for t in titles), titles


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs(name, kernel):
    notebook = _executed(name, kernel)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "\n".join(
        o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
        for c in code
        for o in c.outputs
    )
    for expected in EXPECTED[name]:
        assert expected in text, f"{name} did not print {expected!r}"
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 3, "charts and maps are drawn"


def _map_pages(notebook: nbformat.NotebookNode) -> list[str]:
    """The pages of the notebook's interactive maps, as its HTML outputs carry them."""
    pages = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            page = output.get("data", {}).get("text/html", "")
            pages += [
                html.unescape(m) for m in re.findall(r'class="gridcase-offline-map" srcdoc="([^"]*)"', page)
            ]
            assert external_urls(page) == [], "a notebook output links the network"
    return pages


@pytest.mark.parametrize("name", [n for n, count in sorted(MAPS.items()) if count])
def test_notebook_maps_draw_offline(name, kernel, browser: Browser):
    pages = _map_pages(_executed(name, kernel))
    assert len(pages) == MAPS[name]
    ARTIFACTS.mkdir(exist_ok=True)
    blocked: list[str] = []
    errors: list[str] = []

    def refuse(route: Route) -> None:  # nothing at all may be fetched: the page is self-contained
        blocked.append(route.request.url)
        route.abort("blockedbyclient")

    context = browser.new_context(viewport={"width": 1100, "height": 700})
    context.route("**/*", refuse)
    try:
        for i, page_html in enumerate(pages):
            assert external_urls(page_html) == []
            assert "L.map(" in page_html and "<script src=" not in page_html
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.set_content(page_html, wait_until="load")
            page.wait_for_function(
                "window.L && document.querySelectorAll('path.leaflet-interactive').length > 10"
            )
            page.screenshot(path=str(ARTIFACTS / f"notebook-{name.split('_')[0]}-map-{i + 1}.png"))
            page.close()
    finally:
        context.close()
    assert blocked == [] and errors == []
