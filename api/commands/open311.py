"""Open311 API keys from the console: `gridcase open311 key create NAME | list | revoke NAME`.

A key is printed once, when it is made, and kept only as its SHA-256 (geo/open311.py); every
change goes to the admin log as made by `cli:<the system user>`, as the admin desk's do."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geo import admin, open311
from geo.settings import get_settings
from geo.store import Store

console = Console(soft_wrap=True)
app = typer.Typer(
    help="Open311 GeoReport v2 (/open311/v2): API keys for other systems.", no_args_is_help=True
)
key_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(key_app, name="key")


def _store() -> Store:
    store = Store(get_settings())
    store.migrate()
    return store


def _by() -> admin.Admin:
    return admin.Admin(f"cli:{getpass.getuser()}", "cli")


@key_app.command("create")
def key_create(name: Annotated[str, typer.Argument(help="who uses the key, e.g. fixmystreet")]) -> None:
    """Make a key for a system and print it once (only its hash is kept)."""
    store = _store()
    try:
        with store.transaction() as session:
            key, secret = open311.create_key(session, _by(), name)
            shown = (key.name, key.prefix)
    finally:
        store.dispose()
    console.print(f"key for {shown[0]} (begins {shown[1]}); it is shown only now:")
    print(secret)


@key_app.command("list")
def key_list() -> None:
    """Every key: name, how it begins, who made it and when, revoked or live."""
    store = _store()
    try:
        with store.transaction() as session:
            rows = [
                [
                    k.name,
                    k.prefix + "…",
                    k.created_by,
                    open311.w3c(k.created_at) or "",
                    f"revoked {open311.w3c(k.revoked_at)}" if k.revoked_at else "live",
                ]
                for k in open311.list_keys(session)
            ]
    finally:
        store.dispose()
    table = Table(title="Open311 API keys")
    for column in ("name", "begins", "created by", "created", "state"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@key_app.command("revoke")
def key_revoke(name: Annotated[str, typer.Argument(help="the key's name (or how it begins)")]) -> None:
    """Stop a key at once (the requests it filed stay)."""
    store = _store()
    try:
        with store.transaction() as session:
            key = open311.revoke_key(session, _by(), name)
            revoked = key.name
    finally:
        store.dispose()
    console.print(f"revoked the key of {revoked}")
