"""`gridcase stats` and `gridcase report weekly|monthly`: indicators and reports from the console."""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from geo import stats
from geo.community import figures as community_figures
from geo.errors import GridcaseError
from geo.settings import get_settings
from geo.store import Store


def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"error: {field} must be YYYY-MM-DD, not {value!r}", err=True)
        raise typer.Exit(2) from None


def write_report(report: stats.Report, folder: Path, stem: str) -> list[Path]:
    """Write the report as HTML, CSV and XLSX files in `folder`; return their paths."""
    from api.routes.stats import render_report_html

    folder.mkdir(parents=True, exist_ok=True)
    html = folder / f"{stem}.html"
    csv = folder / f"{stem}.csv"
    xlsx = folder / f"{stem}.xlsx"
    html.write_text(render_report_html(report), encoding="utf-8")
    csv.write_text("\ufeff" + stats.report_csv(report), encoding="utf-8")
    xlsx.write_bytes(stats.report_xlsx(report))
    return [html, csv, xlsx]


def register(app: typer.Typer) -> None:
    """Add `stats`, `rebuild-stats`, `fold-stats` and `report` to the CLI."""
    _register_indicators(app)
    _register_rollup(app)
    _register_reports(app)


def _register_indicators(app: typer.Typer) -> None:
    @app.command("stats")
    def stats_command(
        start: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")],
        end: Annotated[str, typer.Option("--to", help="last day (included), YYYY-MM-DD")],
        group_by: Annotated[
            str | None, typer.Option(help="unit, street, community, grid, inspector, category or day")
        ] = None,
        csv: Annotated[bool, typer.Option(help="print CSV instead of a table")] = False,
    ) -> None:
        """Print every indicator for a period (China time), in total or per group."""
        first, last = _parse_date(start, "--from"), _parse_date(end, "--to")
        store = Store(get_settings())
        try:
            with store.sessions() as session:
                frame = stats.indicators(session, start=first, end=last, group_by=group_by)
        except GridcaseError as exc:
            typer.echo(f"error: {exc.field}: {exc.message}", err=True)
            raise typer.Exit(2) from None
        finally:
            store.dispose()
        if csv:
            typer.echo(frame.to_csv(index=False), nl=False)
        elif group_by is None:
            # Column by column: a row of a frame with int and float columns would turn counts into floats.
            for name in frame.columns:
                value = frame[name].iloc[0]
                label = stats.BY_NAME[name].name_zh if name in stats.BY_NAME else ""
                typer.echo(f"{name:24s} {label:8s} {value}")
        else:
            with_names = frame.to_string(index=False, max_rows=200)
            typer.echo(with_names)


def _register_rollup(app: typer.Typer) -> None:
    @app.command("rebuild-stats")
    def rebuild_stats_command() -> None:
        """Recompute the indicator rollups (stats_daily, stats_handling) from the whole event log.

        Needed only after events were loaded behind the application's back with triggers off
        (a bulk import of history); every normal write keeps the rollups exact by itself.
        """
        store = Store(get_settings())
        try:
            with store.transaction() as session:
                started = datetime.now()
                rows = stats.rebuild_rollup(session)
        finally:
            store.dispose()
        seconds = (datetime.now() - started).total_seconds()
        typer.echo(f"rebuilt the daily rollup: {rows:,} rows in {seconds:.1f} s")

    @app.command("fold-stats")
    def fold_stats_command(
        every: Annotated[
            float, typer.Option(help="keep folding every this many seconds (0: fold once and exit)")
        ] = 0.0,
    ) -> None:
        """Fold the rollup deltas that writes appended (stats_delta) into stats_daily.

        Figures are exact without it (readers add unfolded deltas); folding keeps reads fast. Run it
        with --every where the server does not fold itself; a second folder at the same time folds
        nothing and waits for nobody.
        """
        store = Store(get_settings())
        try:
            while True:
                with store.transaction() as session:
                    moved = stats.fold_rollup(session)
                if not every:
                    typer.echo(f"folded {moved:,} rollup deltas")
                    return
                time.sleep(every)
        except KeyboardInterrupt:
            pass
        finally:
            store.dispose()


def _register_reports(app: typer.Typer) -> None:
    report_app = typer.Typer(
        help="Weekly report and monthly ranking as HTML, CSV and XLSX files.", no_args_is_help=True
    )
    app.add_typer(report_app, name="report")

    def _run(kind: str, when: date, output: Path) -> None:
        store = Store(get_settings())
        try:
            with store.sessions() as session:
                if kind == "weekly":
                    report = stats.weekly_report(session, when)
                    stem = f"weekly-{report.period.start}"
                else:
                    report = stats.monthly_ranking(session, when)
                    community_figures.add_to_report(report, session, when)  # 社区治理 (issue 16)
                    stem = f"monthly-{report.period.start:%Y-%m}"
        finally:
            store.dispose()
        for path in write_report(report, output, stem):
            typer.echo(str(path))

    @report_app.command("weekly")
    def report_weekly(
        week: Annotated[
            str | None, typer.Option(help="any day of the week, YYYY-MM-DD (default: today)")
        ] = None,
        output: Annotated[Path, typer.Option("-o", "--output", help="folder to write to")] = Path("."),
    ) -> None:
        """Write the weekly report (周报) of a Monday-to-Sunday week."""
        day = _parse_date(week, "--week") if week else datetime.now(stats.CHINA).date()
        _run("weekly", day, output)

    @report_app.command("monthly")
    def report_monthly(
        month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month)")] = None,
        output: Annotated[Path, typer.Option("-o", "--output", help="folder to write to")] = Path("."),
    ) -> None:
        """Write the monthly ranking (月度排名) of units by disposal rate."""
        if month:
            first = _parse_date(month + "-01", "--month")
        else:
            first = datetime.now(stats.CHINA).date().replace(day=1)
        _run("monthly", first, output)
