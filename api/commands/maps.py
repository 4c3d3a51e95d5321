"""`gridcase heatmap` and `gridcase citymap`: maps written as one self-contained HTML file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:  # the map modules load folium and geopandas: only when a command runs
    from geo.maps.heatmap import Bins

console = Console(soft_wrap=True)

Output = Annotated[
    Path, typer.Option("--output", "-o", help="HTML file to write", dir_okay=False, writable=True)
]
CategoryOpt = Annotated[str | None, typer.Option(help="category code, e.g. E0102")]
MinAge = Annotated[float | None, typer.Option(help="only cases at least this many days old")]
MaxAge = Annotated[float | None, typer.Option(help="only cases at most this many days old")]
Overdue = Annotated[bool, typer.Option("--overdue", help="only cases past their deadline")]
States = Annotated[list[str] | None, typer.Option("--state", help="an open state (repeatable)")]


class Binning(StrEnum):
    """What `citymap` counts cases per (an Enum: typer offers and checks the choices)."""

    grid = "grid"
    hex = "hex"


def _write(fmap, output: Path) -> None:  # noqa: ANN001
    from geo.maps.offline import render_inline

    # Inline: the file opens from disk with no server and no network (command-centre intranets).
    html = render_inline(fmap)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    console.print(f"wrote {output} ({len(html.encode()) / 1024:.0f} KiB, no external assets)")


def register(app: typer.Typer) -> None:
    """Add the map commands to the `gridcase` CLI."""

    @app.command("heatmap")
    def heatmap(
        community: Annotated[str, typer.Argument(help="community code, e.g. 421281001001")],
        output: Output,
        category: CategoryOpt = None,
        min_age_days: MinAge = None,
        max_age_days: MaxAge = None,
        overdue: Overdue = False,
        state: States = None,
    ) -> None:
        """Write a community's unresolved cases as a self-contained offline heatmap (HTML)."""
        from geo.maps.heatmap import community_heatmap
        from geo.settings import get_settings
        from geo.store import Store

        settings = get_settings()
        store = Store(settings)
        try:
            with store.transaction() as session:
                fmap = community_heatmap(
                    session,
                    community,
                    category=category,
                    min_age_days=min_age_days,
                    max_age_days=max_age_days,
                    overdue_only=overdue,
                    states=state,
                    tiles_url=settings.tiles_url,
                    tiles_attribution=settings.tiles_attribution,
                )
            _write(fmap, output)
        finally:
            store.dispose()

    @app.command("citymap")
    def citymap(
        output: Output,
        bins: Annotated[Binning, typer.Option(help="grid or hex")] = Binning.grid,
        hex_size_m: Annotated[float, typer.Option(help="hexagon size in metres")] = 250.0,
        category: CategoryOpt = None,
        min_age_days: MinAge = None,
        max_age_days: MaxAge = None,
        overdue: Overdue = False,
        state: States = None,
    ) -> None:
        """Write the city's unresolved cases per grid or hexagon as a self-contained HTML map."""
        from geo.maps.heatmap import city_density_map
        from geo.settings import get_settings
        from geo.store import Store

        per: Bins = "hex" if bins is Binning.hex else "grid"
        settings = get_settings()
        store = Store(settings)
        try:
            with store.transaction() as session:
                fmap = city_density_map(
                    session,
                    bins=per,
                    hex_size_m=hex_size_m,
                    category=category,
                    min_age_days=min_age_days,
                    max_age_days=max_age_days,
                    overdue_only=overdue,
                    states=state,
                    tiles_url=settings.tiles_url,
                    tiles_attribution=settings.tiles_attribution,
                )
            _write(fmap, output)
        finally:
            store.dispose()


__all__ = ["register"]
