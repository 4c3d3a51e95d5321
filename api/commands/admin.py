"""Administration from the console: `gridcase users|units|categories list`, the account changes
under `gridcase user …`, and `gridcase calendar import|show`. Every change goes to the admin log
(geo/admin.py) as made by `cli:<the system user>`."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geo import admin
from geo.cases import work_calendar
from geo.errors import InvalidImport
from geo.settings import get_settings
from geo.store import Store

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _store() -> Store:
    store = Store(get_settings())
    store.migrate()
    return store


def _by() -> admin.Admin:
    return admin.Admin(f"cli:{getpass.getuser()}", "cli")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def register(app: typer.Typer, user: typer.Typer) -> None:
    """Add the list groups and `calendar` to the CLI, and the account changes to `user`."""
    _register_lists(app)
    _register_accounts(user)
    _register_calendar(app)


def _register_lists(app: typer.Typer) -> None:
    users = typer.Typer(
        help="Accounts (list them; change them with `gridcase user …`).", no_args_is_help=True
    )
    units = typer.Typer(help="Responsible units (责任单位) and their 包保 grids.", no_args_is_help=True)
    categories = typer.Typer(help="The category catalogue with time limits.", no_args_is_help=True)
    app.add_typer(users, name="users")
    app.add_typer(units, name="units")
    app.add_typer(categories, name="categories")

    @users.command("list")
    def users_list() -> None:
        """Every account: role, unit, grids, whether it may sign in."""
        store = _store()
        try:
            with store.transaction() as session:
                rows = [
                    [
                        a.username,
                        a.role,
                        a.unit_code or "",
                        ";".join(a.grid_codes or []),
                        "yes" if a.active else "disabled",
                        a.display_name or "",
                    ]
                    for a in admin.list_accounts(session)
                ]
        finally:
            store.dispose()
        _table("accounts", ["username", "role", "unit", "grids", "active", "name"], rows)

    @units.command("list")
    def units_list() -> None:
        """Every unit with its 包保 grids, and the current grids no unit is responsible for."""
        store = _store()
        try:
            with store.transaction() as session:
                rows = [
                    [u.code, u.name, u.kind, str(len(u.grids)), ";".join(u.grids)]
                    for u in admin.list_units(session)
                ]
                orphans = admin.grids_without_unit(session)
        finally:
            store.dispose()
        _table("units", ["code", "name", "kind", "grids", "grid codes"], rows)
        console.print(
            f"grids without a unit: {len(orphans)}" + (f" ({', '.join(orphans)})" if orphans else "")
        )

    @categories.command("list")
    def categories_list() -> None:
        """The catalogue: code, name, department and time limit."""
        store = _store()
        try:
            with store.transaction() as session:
                rows = [
                    [c.code, c.name, c.department_code or "", f"{float(c.time_limit):g}", c.time_limit_unit]
                    for c in admin.list_categories(session)
                ]
        finally:
            store.dispose()
        _table("categories", ["code", "name", "department", "limit", "unit"], rows)


def _register_accounts(user: typer.Typer) -> None:
    @user.command("disable")
    def user_disable(name: Annotated[str, typer.Argument(help="username")]) -> None:
        """Disable an account; its tokens and page sessions end at once."""
        store = _store()
        try:
            with store.transaction() as session:
                admin.disable_account(session, _by(), name)
        finally:
            store.dispose()
        console.print(f"account {name} disabled; its sign-ins ended", markup=False)

    @user.command("enable")
    def user_enable(name: Annotated[str, typer.Argument(help="username")]) -> None:
        """Let a disabled account sign in again."""
        store = _store()
        try:
            with store.transaction() as session:
                admin.enable_account(session, _by(), name)
        finally:
            store.dispose()
        console.print(f"account {name} enabled", markup=False)

    @user.command("change")
    def user_change(
        name: Annotated[str, typer.Argument(help="username")],
        role: Annotated[str | None, typer.Option(help="a new role")] = None,
        unit: Annotated[str | None, typer.Option(help="a new unit code ('' for none)")] = None,
        grid: Annotated[list[str] | None, typer.Option(help="the grids (replaces them); repeat")] = None,
    ) -> None:
        """Change an account's role, unit or grids."""
        store = _store()
        try:
            with store.transaction() as session:
                account = admin.change_account(
                    session,
                    _by(),
                    name,
                    role=role,
                    unit_code=admin.KEEP if unit is None else unit,
                    grid_codes=list(grid) if grid else None,
                )
                facts = admin.account_facts(account)
        finally:
            store.dispose()
        grids = ";".join(facts["grids"]) or "—"
        console.print(
            f"account {name}: {facts['role']}, unit {facts['unit'] or '—'}, grids {grids}", markup=False
        )

    @user.command("remove-demo")
    def user_remove_demo() -> None:
        """Remove the demo accounts that still have the demo password (disable those with cases)."""
        store = _store()
        try:
            with store.transaction() as session:
                removed, disabled = admin.remove_demo_accounts(session, _by())
        finally:
            store.dispose()
        console.print(f"removed: {', '.join(removed) or 'none'}", markup=False)
        if disabled:
            console.print(f"disabled (they reported or claimed cases): {', '.join(disabled)}", markup=False)


def _register_calendar(app: typer.Typer) -> None:
    calendar = typer.Typer(
        help="The work calendar: official holidays and make-up days.", no_args_is_help=True
    )
    app.add_typer(calendar, name="calendar")

    @calendar.command("import")
    def calendar_import(
        file: Path,
        source: Annotated[
            str | None,
            typer.Option(help="where the days come from, e.g. the notice's number (default: file name)"),
        ] = None,
    ) -> None:
        """Load the years of a date,kind,name CSV (each replaces that year) and recompute the
        provisional deadlines; a bad row is named by line and field and nothing is written."""
        if not file.is_file():
            err.print(f"no such file: {file}", markup=False)
            raise typer.Exit(2)
        store = _store()
        by = _by()
        try:
            with store.transaction() as session:
                result = work_calendar.import_calendar(session, file, source=source, loaded_by=by.name)
                admin.record(
                    session,
                    by,
                    admin.AdminAction.import_calendar,
                    "calendar",
                    ",".join(str(y) for y in sorted(result.years)),
                    {"ends": str(result.ends_before)},
                    {"ends": str(result.ends_after), "source": result.source, "report": result.lines()},
                )
        except InvalidImport as exc:
            err.print(exc.message, markup=False)
            raise typer.Exit(1) from exc
        finally:
            store.dispose()
        for line in result.lines():
            console.print(line, markup=False)

    @calendar.command("show")
    def calendar_show() -> None:
        """The loaded years, where the calendar ends, and whether the screens warn about it."""
        store = _store()
        try:
            with store.transaction() as session:
                years = work_calendar.loaded_years(session)
                status = work_calendar.calendar_status(
                    work_calendar.stored_calendar(session), datetime.now(UTC)
                )
        finally:
            store.dispose()
        console.print(f"loaded years: {', '.join(map(str, years)) or 'none'}", markup=False)
        console.print(f"ends: {status.ends or 'nothing loaded'} ({status.days_left} days left)", markup=False)
        if status.warning:
            console.print(
                f"warning: load the {status.next_year} holidays (gridcase calendar import FILE)", markup=False
            )
