"""The planners' notebooks run top to bottom against the demo database, as a planner would run them.

Each notebook is executed with nbclient in a kernel on this interpreter (the project's .venv), with
DATABASE_URL pointing at the demo database, so `Settings()` + `Store(settings)` in the notebook
connect there. Any cell error fails the test; key outputs are checked too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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
}


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


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs(name, kernel):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, when any cell fails
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
