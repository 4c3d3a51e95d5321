"""`gridcase blobs migrate`: move the photos from the local store to the store GRIDCASE_BLOB_URL names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.blob_migration import migrate_blobs
from geo.settings import get_settings
from geo.storage import LocalBlobStore, blob_store, local_store


def register(app: typer.Typer) -> None:
    """Add `blobs migrate` to the CLI."""
    blobs = typer.Typer(
        help="The photo store: local files or an S3-compatible object store.", no_args_is_help=True
    )
    app.add_typer(blobs, name="blobs")

    @blobs.command("migrate")
    def migrate_command(
        source: Annotated[
            Path | None, typer.Option("--from", help="the local folder to move (default: <state_dir>/files)")
        ] = None,
        delete_local: Annotated[
            bool, typer.Option(help="remove each local file once its copy in the target is verified")
        ] = False,
    ) -> None:
        """Copy every local photo into GRIDCASE_BLOB_URL's store and check each copy's sha256.

        A local file whose bytes no longer match its name is reported and not copied; one already in
        the target is verified, not sent again, so the command can be run again after an interruption.
        Exits 1 when anything was corrupt or failed.
        """
        settings = get_settings()
        if not settings.blob_url:
            typer.echo(
                "error: blob_url: set GRIDCASE_BLOB_URL (e.g. s3://bucket/photos) to the target store",
                err=True,
            )
            raise typer.Exit(2)
        local = LocalBlobStore(source) if source else local_store(settings)
        if not local.root.is_dir():
            typer.echo(f"error: --from: {local.root} is not a folder", err=True)
            raise typer.Exit(2)
        target = blob_store(settings)
        typer.echo(f"moving {local.root} → {settings.blob_url}")
        report = migrate_blobs(local, target, delete_local=delete_local, log=typer.echo)
        typer.echo(report.summary())
        if report.corrupt or report.failed or report.stopped:
            raise typer.Exit(1)
