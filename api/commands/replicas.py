"""`gridcase db replica add|list|remove|start|stop`: streaming replicas of the managed cluster."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from geo.settings import Settings, get_settings
from geo.store.db import local_cluster
from geo.store.standby import LocalReplica, replicas_of

console = Console(soft_wrap=True)


def _managed() -> Settings:
    settings = get_settings()
    if settings.database_url:
        console.print(
            "DATABASE_URL is set: make replicas on that server's side and list them in "
            "GRIDCASE_READ_DATABASE_URL (comma-separated)"
        )
        raise typer.Exit(2)
    return settings


def start_managed_replicas(settings: Settings) -> list[LocalReplica]:
    """Start the managed replicas that exist (serve and `db up` do); nothing with DATABASE_URL."""
    if settings.database_url or settings.read_database_url:
        return []
    found = replicas_of(settings.state_path, settings.db_os_user)
    for replica in found:
        replica.start()
    return found


def stop_managed_replicas(settings: Settings) -> None:
    """Stop the managed replicas (`db down`)."""
    for replica in replicas_of(settings.state_path, settings.db_os_user):
        replica.stop()


def register(db: typer.Typer) -> None:
    """Add `replica` to the `db` group."""
    replica = typer.Typer(
        help="Streaming replicas of the managed cluster (pg_basebackup -R): reads go to them.",
        no_args_is_help=True,
    )
    db.add_typer(replica, name="replica")

    @replica.command("add")
    def add(name: Annotated[str, typer.Argument(help="a name: letters, digits, _")] = "") -> None:
        """Copy the running primary into the state folder as a hot standby on its own port, start it."""
        settings = _managed()
        taken = {r.name for r in replicas_of(settings.state_path, settings.db_os_user)}
        name = name or next(f"r{i}" for i in range(1, 100) if f"r{i}" not in taken)
        standby = LocalReplica(settings.state_path, name, settings.db_os_user)
        standby.create(local_cluster(settings))
        console.print(
            f"replica {name} streaming from the primary on 127.0.0.1:{standby.status().port} "
            f"({standby.data_dir}); the server reads from it from its next start"
        )

    @replica.command("list")
    def list_() -> None:
        """The managed replicas: name, running or not, port."""
        settings = _managed()
        found = replicas_of(settings.state_path, settings.db_os_user)
        if not found:
            console.print("no replicas (gridcase db replica add)")
        for r in found:
            status = r.status()
            console.print(f"{r.name}\t{'running' if status.running else 'stopped'}\t127.0.0.1:{status.port}")

    @replica.command("remove")
    def remove(name: Annotated[str, typer.Argument(help="the replica's name")]) -> None:
        """Stop a replica, delete its folder and the primary's replication slot for it."""
        settings = _managed()
        standby = LocalReplica(settings.state_path, name, settings.db_os_user)
        if not standby.initialised:
            console.print(f"error: no replica named {name!r} (gridcase db replica list)")
            raise typer.Exit(1)
        standby.remove(local_cluster(settings))
        console.print(f"replica {name} removed")

    @replica.command("start")
    def start() -> None:
        """Start every managed replica."""
        for r in start_managed_replicas(_managed()):
            console.print(f"replica {r.name} running on 127.0.0.1:{r.status().port}")

    @replica.command("stop")
    def stop() -> None:
        """Stop every managed replica (reads go to the primary)."""
        stop_managed_replicas(_managed())
        console.print("replicas stopped")
