"""The `gridcase` console command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TypedDict, Unpack

import typer
from rich.console import Console
from rich.progress import Progress

from api.commands import admin as admin_commands
from api.commands import blobs as blob_commands
from api.commands import export as export_commands
from api.commands import maps as map_commands
from api.commands import open311 as open311_commands
from api.commands import replicas as replica_commands
from api.commands import stats as stats_commands
from geo.errors import GridcaseError, InvalidImport
from geo.settings import Settings, get_settings

app = typer.Typer(help="gridcase: grid mapping and case routing (网格化管理).", no_args_is_help=True)
db_app = typer.Typer(
    help="The database: a managed local PostGIS cluster, or DATABASE_URL.", no_args_is_help=True
)
import_app = typer.Typer(
    help="Load reference data from files (one transaction per file).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
user_app = typer.Typer(help="Accounts: inspectors, operators, unit handlers...", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(user_app, name="user")
app.add_typer(open311_commands.app, name="open311")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    return get_settings()


def _store():
    from geo.store import Store

    return Store(_settings())


# -- db -------------------------------------------------------------------------------------
@db_app.command("up")
def db_up() -> None:
    """Start the database (init the managed cluster on first use) and migrate it."""
    store = _store()
    store.migrate()
    replica_commands.start_managed_replicas(_settings())
    console.print(f"database ready: {_public_url(store.url)}")
    store.dispose()


@db_app.command("down")
def db_down() -> None:
    """Stop the managed cluster (does nothing when DATABASE_URL is set)."""
    settings = _settings()
    if settings.database_url:
        console.print("DATABASE_URL is set: the server is not ours to stop")
        return
    from geo.store.db import local_cluster

    replica_commands.stop_managed_replicas(settings)
    local_cluster(settings).stop()
    console.print("managed cluster stopped")


@db_app.command("status")
def db_status() -> None:
    """Where the database is, whether it runs, versions and schema revision."""
    settings = _settings()
    from geo.store import migrate
    from geo.store.db import local_cluster, make_engine, normalise_url, server_versions

    if settings.database_url:
        url = normalise_url(settings.database_url)
        console.print(f"using DATABASE_URL {_public_url(url)}")
    else:
        status = local_cluster(settings).status()
        console.print(
            f"managed cluster in {status.data_dir} (run as {status.os_user}): "
            f"{'running' if status.running else 'stopped'}"
            + (f" on 127.0.0.1:{status.port}" if status.port else "")
        )
        if not status.running:
            raise typer.Exit(3)
        url = local_cluster(settings).url(settings.db_name)
    engine = make_engine(url, 1)
    versions = server_versions(engine)
    console.print(
        f"PostgreSQL {versions['postgresql']}, PostGIS {versions['postgis']}, "
        f"schema {migrate.current_revision(engine) or 'not migrated'}"
    )
    engine.dispose()


@db_app.command("url")
def db_url() -> None:
    """Print the connection URL (starts the managed cluster if needed)."""
    from geo.store.db import resolve_database_url

    print(resolve_database_url(_settings()))


@db_app.command("migrate")
def db_migrate(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Upgrade the schema (default: to the newest revision)."""
    from geo.store import migrate

    store = _store()
    migrate.upgrade(store.engine, revision)
    console.print(f"schema at {migrate.current_revision(store.engine)}")
    store.dispose()


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target revision")]) -> None:
    """Downgrade the schema to a revision ('base' removes every table)."""
    from geo.store import migrate

    store = _store()
    migrate.downgrade(store.engine, revision)
    console.print(f"schema at {migrate.current_revision(store.engine) or 'base'}")
    store.dispose()


def _public_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- import ---------------------------------------------------------------------------------
class ImportOptions(TypedDict, total=False):
    """The importers' keyword options the `import` commands pass on (`import_areas` takes all)."""

    source_crs: str | None
    repair: bool
    tolerance_m2: float
    allow_unassigned: bool


def _run_import(kind: str, file: Path, **options: Unpack[ImportOptions]) -> None:
    from geo import importing

    if not file.exists():
        err.print(f"[red]no such file: {file}[/red]")
        raise typer.Exit(2)
    store = _store()
    store.migrate()
    try:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(f"importing {kind}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            with store.transaction() as session:
                if kind == "grids":
                    result = importing.import_areas(session, file, progress=progress, **options)
                else:
                    result = importing.IMPORTERS[kind](session, file, **options)
    except InvalidImport as exc:
        err.print(exc.message, markup=False)
        raise typer.Exit(1) from exc
    finally:
        store.dispose()
    for finding in result.findings:
        console.print(
            f"note: {finding.message}" + (f" — {finding.repair}" if finding.repair else ""), markup=False
        )
    console.print(result.summary())
    for line in result.succession_lines():
        console.print(line, markup=False)


SourceCrs = Annotated[
    str | None,
    typer.Option("--source-crs", help="declare the file's CRS (e.g. EPSG:4549) to transform it to WGS-84"),
]


@import_app.command("grids")
def import_grids(
    file: Path,
    source_crs: SourceCrs = None,
    repair: Annotated[bool, typer.Option(help="repair invalid polygons and show the repair")] = False,
    tolerance: Annotated[
        float | None, typer.Option(help="gap/overlap tolerance in m² (default GRIDCASE_IMPORT_TOLERANCE_M2)")
    ] = None,
    allow_unassigned: Annotated[
        bool, typer.Option(help="load a generation even if it leaves a grid without a responsible unit")
    ] = False,
) -> None:
    """Areas (district/street/community/grid/compound) as a new boundary generation; a retired grid's
    units and inspectors go to the grids that took over its area (listed in the report)."""
    _run_import(
        "grids",
        file,
        source_crs=source_crs,
        repair=repair,
        allow_unassigned=allow_unassigned,
        tolerance_m2=tolerance if tolerance is not None else _settings().import_tolerance_m2,
    )


@import_app.command("units")
def import_units(file: Path) -> None:
    """Responsible units and their 包保 grids (CSV: code,name,name_en,kind,grids)."""
    _run_import("units", file)


@import_app.command("categories")
def import_categories(file: Path) -> None:
    """The category catalogue (CSV)."""
    _run_import("categories", file)


@import_app.command("layers")
def import_layers(file: Path, source_crs: SourceCrs = None) -> None:
    """Responsibility layers (GeoJSON/GeoPackage/Shapefile)."""
    _run_import("layers", file, source_crs=source_crs)


# -- accounts -------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="username")],
    role: Annotated[
        str, typer.Option(help="inspector, resident, operator, dispatcher, unit_handler, admin or planner")
    ],
    unit: Annotated[str | None, typer.Option(help="unit code (unit handlers)")] = None,
    grid: Annotated[list[str] | None, typer.Option(help="grid code (inspectors); repeat")] = None,
) -> None:
    """Create an account; the password is read from standard input."""
    from geo.accounts import add_account

    password = sys.stdin.readline().rstrip("\n")
    if not password:
        err.print("error: give the password on standard input", markup=False)
        raise typer.Exit(2)
    store = _store()
    store.migrate()
    try:
        with store.transaction() as session:
            account = add_account(session, name, password, role, unit_code=unit, grid_codes=list(grid or []))
            console.print(f"account {account.username} ({account.role}) created", markup=False)
    finally:
        store.dispose()


@user_app.command("password")
def user_password(name: Annotated[str, typer.Argument(help="username")]) -> None:
    """Set a new password (read from standard input); the account's sign-ins end (logged)."""
    from geo import admin

    password = sys.stdin.readline().rstrip("\n")
    if not password:
        err.print("error: give the new password on standard input", markup=False)
        raise typer.Exit(2)
    store = _store()
    try:
        with store.transaction() as session:
            admin.reset_password(session, admin_commands._by(), name, password)
        console.print(f"password of {name} changed; its tokens are revoked", markup=False)
    finally:
        store.dispose()


# -- routing --------------------------------------------------------------------------------
@app.command()
def route(
    lon: Annotated[float, typer.Argument(help="longitude")],
    lat: Annotated[float, typer.Argument(help="latitude")],
    category: Annotated[str | None, typer.Option(help="category code, e.g. E0102")] = None,
    crs: Annotated[str, typer.Option(help="wgs84, cgcs2000, gcj02 or bd09")] = "wgs84",
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON")] = False,
) -> None:
    """Route a point and print the decision with its explanation."""
    from geo.routing import Router

    settings = _settings()
    store = _store()
    try:
        decision = Router(store.sessions, tolerance_m=settings.route_tolerance_m).route(
            lon, lat, category, crs
        )
    finally:
        store.dispose()
    if as_json:
        print(decision.model_dump_json(indent=2))
        return
    unit = decision.primary_unit
    console.print(
        f"{decision.status.value}: "
        + (f"{unit.code} {unit.name}" if unit else f"triage ({decision.reason})"),
        markup=False,
    )
    if decision.grid:
        where = [
            decision.grid.code,
            decision.community.name if decision.community else "",
            decision.street.name if decision.street else "",
            decision.district.name if decision.district else "",
        ]
        console.print("where: " + " / ".join(w for w in where if w), markup=False)
    if decision.cooperating_units:
        console.print(
            "cooperating: " + ", ".join(f"{u.code} {u.name}" for u in decision.cooperating_units),
            markup=False,
        )
    for step in decision.rules:
        console.print(f"  - [{step.rule}] {step.text}", markup=False)


# -- demo and serve -------------------------------------------------------------------------
@app.command()
def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="serve the API after loading")
    ] = True,
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Bring up the database, migrate, load the Chibi demo (idempotent), then serve."""
    from geo import demo as demo_data

    store = _store()
    store.migrate()
    try:
        report = demo_data.load_demo(store, log=lambda line: console.print(line, markup=False))
    finally:
        store.dispose()
    console.print(report.summary(), markup=False)
    if serve_after:
        serve(host=host, port=port, workers=None)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="server processes (default: the number of cores)")
    ] = None,
) -> None:
    """Serve the API and pages (default http://127.0.0.1:8000) from one or more processes."""
    import os

    import uvicorn

    from api.scaling import WORKER_HEALTHCHECK_S, WORKER_PARENT

    settings = _settings()
    store = _store()
    store.migrate()
    store.dispose()
    replica_commands.start_managed_replicas(settings)
    host = host or settings.host
    port = port or settings.port
    workers = workers or os.cpu_count() or 1
    # The workers end with this process, even when it is killed (api/scaling.py).
    os.environ[WORKER_PARENT] = str(os.getpid())
    console.print(f"gridcase serving on http://{host}:{port} with {workers} worker(s)  (API docs: /docs)")
    console.print(f"big screen (once, on the screen): {_screen_url(settings, host, port)}", markup=False)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level="info",
        workers=workers,
        access_log=settings.access_log,
        # Named, so a missing extension is an error rather than a silent fall back to the slower
        # pure-Python parser and loop (both are dependencies; bench/route_http.py measures them).
        http="httptools",
        loop="uvloop",
        # A worker answers the supervisor's health check only once its interpreter started: on a
        # busy machine that takes more than uvicorn's 5 s, and the worker was killed in a loop.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


def _screen_url(settings: Settings, host: str, port: int) -> str:
    from api.screen import screen_keys

    return f"http://{host}:{port}/command-center?key={screen_keys(settings)[0]}"


@app.command("screen-url")
def screen_url(
    host: Annotated[str | None, typer.Option(help="the address the screen reaches gridcase at")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Print the address that connects a big screen to the live feeds (open it once on the screen)."""
    settings = _settings()
    console.print(_screen_url(settings, host or settings.host, port or settings.port), markup=False)


# The commands of further areas, by name (nothing is added because a file sits in a folder).
for area in (map_commands, stats_commands, blob_commands, export_commands):
    area.register(app)
admin_commands.register(app, user=user_app)
replica_commands.register(db_app)


def main() -> None:
    """Console entry point: domain errors become a readable message and exit status 1."""
    try:
        app()
    except GridcaseError as exc:
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(1)
