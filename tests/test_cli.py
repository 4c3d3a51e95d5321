"""The `gridcase` console command, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from geo.coords import wgs84_to_gcj02
from geo.store import migrate
from geo.store.cluster import free_port
from tests.conftest import FIXTURES, REPO

GRIDCASE = str(Path(sys.executable).parent / "gridcase")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    """Run gridcase with the test environment; return the completed process."""
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [GRIDCASE, *args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO
    )


def test_db_url_and_status_use_the_managed_cluster(settings, store):
    env = {"GRIDCASE_STATE_DIR": str(settings.state_path)}
    up = run("db", "up", env=env)
    assert up.returncode == 0, up.stderr
    assert "database ready" in up.stdout and "***" in up.stdout
    url = run("db", "url", env=env)
    assert url.returncode == 0, url.stderr
    assert url.stdout.startswith("postgresql+psycopg://gridcase:") and "127.0.0.1" in url.stdout
    status = run("db", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "running on 127.0.0.1:" in status.stdout and "PostGIS 3." in status.stdout
    assert f"schema {migrate.head_revision(store.engine)}" in status.stdout


def test_database_url_is_used_instead_of_the_cluster(store, tmp_path):
    env = {"DATABASE_URL": store.url, "GRIDCASE_STATE_DIR": str(tmp_path / "never")}
    status = run("db", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "using DATABASE_URL" in status.stdout and "***" in status.stdout
    down = run("db", "down", env=env)
    assert "not ours to stop" in down.stdout
    assert not (tmp_path / "never").exists()


def test_import_with_errors_exits_nonzero_with_a_report(store):
    result = run(
        "import", "grids", str(FIXTURES / "import" / "overlap.geojson"), env={"DATABASE_URL": store.url}
    )
    assert result.returncode == 1
    assert "overlap" in result.stderr and "nothing was written" in result.stderr


def test_import_of_a_missing_file_says_so(store):
    result = run("import", "units", "/no/such.csv", env={"DATABASE_URL": store.url})
    assert result.returncode == 2 and "no such file" in result.stderr


def test_demo_no_serve_is_idempotent(demo_store):
    result = run("demo", "--no-serve", env={"DATABASE_URL": demo_store.url})
    assert result.returncode == 0, result.stderr
    assert "demo quarter already loaded" in result.stdout
    assert "grid 263" in result.stdout


def test_serve_answers_healthz(store):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = store.url
    server = subprocess.Popen(
        [GRIDCASE, "serve", "--workers", "1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert response.status_code == 200
        assert response.json()["postgis"].startswith("3.")
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_route_prints_the_decision(demo_store):
    import geopandas as gpd

    layers = gpd.read_file(REPO / "data" / "chibi" / "layers.geojson")
    point = layers.loc[layers.name == "北渠", "geometry"].iloc[0].interpolate(0.5, normalized=True)
    lon, lat = wgs84_to_gcj02(point.x, point.y)
    result = run(
        "route",
        f"{lon:.7f}",
        f"{lat:.7f}",
        "--category",
        "E0102",
        "--crs",
        "gcj02",
        env={"DATABASE_URL": demo_store.url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("routed: WATER 水利和湖泊局")
    assert "layer_override" in result.stdout and "北渠" in result.stdout
    bad = run("route", "29.7", "113.9", env={"DATABASE_URL": demo_store.url})
    assert bad.returncode == 1 and "swapped" in bad.stderr


def test_user_add_reads_the_password_from_stdin(store):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = store.url
    ok = subprocess.run(
        [
            GRIDCASE,
            "user",
            "add",
            "wang_inspector",
            "--role",
            "inspector",
            "--grid",
            "421281001001001",
            "--grid",
            "421281001001002",
        ],
        input="a-long-secret\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "wang_inspector (inspector) created" in ok.stdout
    from geo.accounts import get_account, issue_token

    with store.transaction() as session:
        account = get_account(session, "wang_inspector")
        assert account.grid_codes == ["421281001001001", "421281001001002"]
        assert account.password_hash.startswith("$argon2")
        assert issue_token(session, "wang_inspector", "a-long-secret")
    again = subprocess.run(
        [GRIDCASE, "user", "add", "wang_inspector", "--role", "inspector"],
        input="a-long-secret\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert again.returncode == 1 and "taken" in again.stderr
    no_unit = subprocess.run(
        [GRIDCASE, "user", "add", "li", "--role", "unit_handler"],
        input="a-long-secret\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert no_unit.returncode == 1 and "needs --unit" in no_unit.stderr
