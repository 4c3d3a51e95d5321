"""The managed cluster: init, start on a free port as an unprivileged user, url, stop."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

from geo.settings import Settings
from geo.store.cluster import LocalCluster
from geo.store.db import resolve_database_url


def _owner_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_fresh_cluster_lifecycle(tmp_path):
    cluster = LocalCluster(tmp_path / "state")
    assert not cluster.status().initialised
    cluster.start()
    try:
        status = cluster.status()
        assert status.initialised and status.running and status.port
        postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        assert _owner_uid(postmaster) != 0, "PostgreSQL must not run as root"
        cluster.start()  # idempotent: already running
        engine = create_engine(cluster.url("postgres"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            port = conn.execute(text("SHOW port")).scalar()
        engine.dispose()
        assert int(port) == status.port
    finally:
        cluster.stop()
    assert not cluster.status().running


def test_database_url_is_used_as_given_and_no_cluster_is_touched(tmp_path, store):
    state = tmp_path / "untouched"
    settings = Settings(state_dir=state, database_url=store.url.replace("+psycopg", ""))
    assert resolve_database_url(settings) == store.url
    assert not state.exists()


def test_state_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDCASE_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert Settings().state_path == (tmp_path / "s").resolve()
    assert os.environ["GRIDCASE_STATE_DIR"].endswith("/s")
