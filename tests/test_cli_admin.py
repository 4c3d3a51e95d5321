"""Administration from the console, run as a user would: lists, account changes, the calendar
import with its report, and a boundary import that would orphan a grid — each change in the log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from geo.accounts import add_account
from geo.demo import DEMO_PASSWORD, load_demo
from geo.store.models import Account, AdminLog
from tests.conftest import FIXTURES, fresh_store
from tests.geo.test_boundary_succession import G, _community_file, _split_008_adding_010
from tests.test_cli import run


@pytest.fixture(scope="module")
def cli_store(settings):
    """The Chibi reference data and demo accounts in a database the commands may change."""
    store = fresh_store(settings, "cli_admin")
    load_demo(store, cases=False)
    with store.transaction() as session:
        add_account(session, "night_clerk", DEMO_PASSWORD, "operator")
    yield store
    store.dispose()


def gridcase(store, *args: str):
    return run(*args, env={"DATABASE_URL": store.url, "COLUMNS": "250"})


def test_lists(cli_store):
    users = gridcase(cli_store, "users", "list")
    assert users.returncode == 0, users.stderr
    assert "night_clerk" in users.stdout and "unit_handler" in users.stdout and "WATER" in users.stdout
    units = gridcase(cli_store, "units", "list")
    assert units.returncode == 0 and "WATER" in units.stdout and "grids without a unit: 0" in units.stdout
    categories = gridcase(cli_store, "categories", "list")
    assert (
        categories.returncode == 0 and "E0102" in categories.stdout and "working_hours" in categories.stdout
    )


def test_account_changes_are_logged_as_the_console(cli_store):
    assert gridcase(cli_store, "user", "disable", "night_clerk").returncode == 0
    with cli_store.transaction() as session:
        assert session.scalar(select(Account.active).where(Account.username == "night_clerk")) is False
    assert gridcase(cli_store, "user", "enable", "night_clerk").returncode == 0
    changed = gridcase(cli_store, "user", "change", "night_clerk", "--role", "inspector", "--grid", G[1])
    assert changed.returncode == 0, changed.stderr
    assert f"inspector, unit —, grids {G[1]}" in changed.stdout
    refused = gridcase(cli_store, "user", "change", "night_clerk", "--grid", "nowhere")
    assert refused.returncode == 1 and "grid nowhere is not a current grid" in refused.stderr
    with cli_store.transaction() as session:
        log = session.scalars(select(AdminLog).where(AdminLog.subject == "night_clerk").order_by(AdminLog.id))
        entries = [(e.action, e.via, e.actor.startswith("cli:")) for e in log]
    assert entries == [
        ("disable_account", "cli", True),
        ("enable_account", "cli", True),
        ("change_account", "cli", True),
    ]


def test_calendar_import_names_bad_rows_then_loads_a_year_with_a_report(cli_store, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,kind,name\n2027-01-01,holiday,元旦\n2027-02-30,holiday,\n2027-01-06,workday,\n")
    refused = gridcase(cli_store, "calendar", "import", str(bad))
    assert refused.returncode == 1
    assert "line 3, date" in refused.stderr and "line 4, kind" in refused.stderr
    assert "nothing was written" in refused.stderr
    loaded = gridcase(cli_store, "calendar", "import", str(FIXTURES / "calendar" / "test-2027.csv"))
    assert loaded.returncode == 0, loaded.stderr
    assert "2027: 2 holidays, 1 make-up working days" in loaded.stdout
    assert "calendar ends 2026-12-31 → 2027-12-31" in loaded.stdout
    shown = gridcase(cli_store, "calendar", "show")
    assert "loaded years: 2025, 2026, 2027" in shown.stdout and "ends: 2027-12-31" in shown.stdout
    with cli_store.transaction() as session:
        (entry,) = session.scalars(select(AdminLog).where(AdminLog.action == "import_calendar"))
        assert entry.before == {"ends": "2026-12-31"} and entry.after["ends"] == "2027-12-31"


def test_a_boundary_import_that_orphans_a_grid_needs_allow_unassigned(cli_store, tmp_path):
    with cli_store.transaction() as session:
        path = _community_file(session, tmp_path, _split_008_adding_010)
    refused = gridcase(cli_store, "import", "grids", str(path))
    assert refused.returncode == 1 and G[10] in refused.stderr and "--allow-unassigned" in refused.stderr
    loaded = gridcase(cli_store, "import", "grids", str(path), "--allow-unassigned")
    assert loaded.returncode == 0, loaded.stderr
    assert f"grids without a unit (1): {G[10]}" in loaded.stdout
    units = gridcase(cli_store, "units", "list")
    assert f"grids without a unit: 1 ({G[10]})" in units.stdout
