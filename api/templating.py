"""The one Jinja environment of gridcase's pages (the screen, the phone page, the desks, docs)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
