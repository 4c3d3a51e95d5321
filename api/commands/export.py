"""`gridcase export cases --format parquet --out DIR`: cases as monthly GeoParquet for planners."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from geo.errors import GridcaseError
from geo.export import export_cases
from geo.settings import get_settings
from geo.store import Store


class ExportFormat(StrEnum):
    parquet = "parquet"


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"error: {option} must be YYYY-MM-DD, not {value!r}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add `export cases` to the CLI."""
    export = typer.Typer(help="Export data for planners' tools (GeoParquet).", no_args_is_help=True)
    app.add_typer(export, name="export")

    @export.command("cases")
    def export_cases_command(
        out: Annotated[Path, typer.Option(help="the folder to write (month=YYYY-MM/part-0.parquet)")],
        format: Annotated[ExportFormat, typer.Option(help="the file format")] = ExportFormat.parquet,
        start: Annotated[str | None, typer.Option("--from", help="first report day, YYYY-MM-DD")] = None,
        end: Annotated[str | None, typer.Option("--to", help="day after the last, YYYY-MM-DD")] = None,
        replace: Annotated[bool, typer.Option(help="replace the months of an earlier export")] = False,
        chunk_rows: Annotated[
            int, typer.Option(min=1000, help="cases read from PostgreSQL at a time")
        ] = 50_000,
    ) -> None:
        """Write the cases as GeoParquet (WKB points, WGS-84), one folder per month (China time), read
        from PostgreSQL in chunks through a server-side cursor: memory holds one chunk."""
        first, last = _day(start, "--from"), _day(end, "--to")
        store = Store(get_settings())
        try:
            report = export_cases(
                store.engine, out, start=first, end=last, chunk_rows=chunk_rows, replace=replace
            )
        except GridcaseError as exc:
            typer.echo(f"error: {exc.field}: {exc.message}", err=True)
            raise typer.Exit(2) from None
        finally:
            store.dispose()
        typer.echo(f"{report.summary()} under {out}")
