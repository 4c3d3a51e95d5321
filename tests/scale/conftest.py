"""A deployment on loopback: a primary, a streaming replica, PgBouncer, and `gridcase serve --workers 2`.

Everything is real and started here, once per test module: the primary is a managed cluster in a
temporary state folder with the Chibi reference data and the demo accounts; the replica is made by
`gridcase db replica add` (pg_basebackup -R); Debian's PgBouncer runs in transaction pooling mode
in front of the primary (as the cluster's unprivileged owner: PgBouncer refuses to run as root);
the app is two worker processes on a free port, writing and reading the primary through
PgBouncer, listening on a direct connection and reading dashboards from the replica.

`serve_app(deployment, extra_env)` starts another such app (e.g. with an object store's settings).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from geo.demo import DEMO_PASSWORD, load_demo
from geo.fanout import libpq_url
from geo.settings import Settings
from geo.store import Store
from geo.store.cluster import LocalCluster, free_port
from geo.store.db import create_database
from geo.store.standby import LocalReplica
from tests.conftest import REPO
from tests.test_cli import GRIDCASE

DATABASE = "gridcase"
SCREEN_KEY = "scale-test-screen-key"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass
class Server:
    """`gridcase serve --workers N` as a process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Deployment:
    """What the module's tests talk to."""

    state: Path
    primary: LocalCluster
    replica: LocalReplica
    primary_url: str  # direct
    replica_url: str
    bouncer_url: str  # the app's DATABASE_URL
    bouncer_admin: str  # PgBouncer's console (SHOW STATS)
    env: dict[str, str] = field(default_factory=dict)

    def connect(self, url: str) -> psycopg.Connection:
        """A direct autocommit connection (libpq URL) for the test's own looks."""
        return psycopg.connect(libpq_url(url), autocommit=True)


def _run_gridcase(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([GRIDCASE, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _start_pgbouncer(state: Path, primary: LocalCluster) -> tuple[subprocess.Popen[bytes], int]:
    """PgBouncer in transaction mode on a free loopback port, run by the cluster's owner."""
    info = primary._info()
    folder = state / "pgbouncer"
    folder.mkdir()
    port = free_port()
    (folder / "userlist.txt").write_text(f'"{info["user"]}" "{info["password"]}"\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{DATABASE} = host=127.0.0.1 port={info['port']} dbname={DATABASE}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {folder / 'userlist.txt'}\n"
        f"admin_users = {info['user']}\npool_mode = transaction\n"
        "default_pool_size = 20\nmax_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    kwargs: dict = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam(primary.os_user)
        for path in (folder, *folder.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    process = subprocess.Popen(
        [PGBOUNCER, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **kwargs,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, dbname=DATABASE, user=info["user"], password=info["password"]
            ):
                break
        except psycopg.OperationalError:
            assert process.poll() is None, (folder / "pgbouncer.log").read_text()
            assert time.monotonic() < deadline, "PgBouncer did not start within 20 s"
            time.sleep(0.1)
    return process, port


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """Primary with the reference data, a streaming replica, PgBouncer in front of the primary.

    The state folder is under the repository's `.gridcase/`, not pytest's temporary folder: other
    pytest runs reset that folder's root to mode 0700, and the clusters' owner could then no
    longer reach its own files.
    """
    state = REPO / ".gridcase" / "scale" / uuid.uuid4().hex[:12]
    state.mkdir(parents=True)
    primary = LocalCluster(state)
    replica = LocalReplica(state, "r1")
    bouncer: subprocess.Popen[bytes] | None = None
    try:
        primary.start()
        primary_url = primary.url(DATABASE)
        create_database(primary_url)
        store = Store(Settings(state_dir=state, database_url=primary_url), url=primary_url)
        store.migrate()
        load_demo(store, cases=False)
        store.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCASE_") and k != "DATABASE_URL"}
        env["GRIDCASE_STATE_DIR"] = str(state)
        env["GRIDCASE_DB_NAME"] = DATABASE
        _run_gridcase(env, "db", "replica", "add", "r1")  # the real command: pg_basebackup -R, own port
        bouncer, bouncer_port = _start_pgbouncer(state, primary)
        bouncer_url = str(make_url(primary_url).set(port=bouncer_port).render_as_string(hide_password=False))
        admin = libpq_url(
            str(make_url(bouncer_url).set(database="pgbouncer").render_as_string(hide_password=False))
        )
        yield Deployment(
            state=state,
            primary=primary,
            replica=replica,
            primary_url=primary_url,
            replica_url=replica.url(DATABASE),
            bouncer_url=bouncer_url,
            bouncer_admin=admin,
            env=env,
        )
    finally:
        if bouncer is not None:
            bouncer.terminate()
            bouncer.wait(timeout=10)
        if replica.initialised:
            replica.stop()
        primary.stop()
        shutil.rmtree(state, ignore_errors=True)


def serve_app(deployment: Deployment, extra_env: dict[str, str] | None = None, workers: int = 2) -> Server:
    """`gridcase serve --workers N` on a free port: writes through PgBouncer, LISTEN direct, reads
    on the replica; started when /healthz answers and every worker listens."""
    port = free_port()
    env = {
        **deployment.env,
        "DATABASE_URL": deployment.bouncer_url,
        "GRIDCASE_PGBOUNCER": "true",
        "GRIDCASE_LISTEN_DATABASE_URL": deployment.primary_url,
        "GRIDCASE_READ_DATABASE_URL": deployment.replica_url,
        "GRIDCASE_REPLICA_MAX_LAG_SECONDS": "5",
        "GRIDCASE_SCREEN_KEYS": SCREEN_KEY,
        **(extra_env or {}),
    }
    log = deployment.state / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [GRIDCASE, "serve", "--workers", str(workers), "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 300
    try:
        while len(listening_workers(deployment)) < workers or not _answers(server):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (
                "the server did not start within 300 s\n" + log.read_text()[:6000]
            )
            time.sleep(0.2)
    except BaseException:
        server.stop()
        raise
    return server


def _answers(server: Server) -> bool:
    try:
        return httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def listening_workers(deployment: Deployment) -> set[int]:
    """The pids of the worker processes whose LISTEN connection is open on the primary."""
    with deployment.connect(deployment.primary_url) as conn:
        names = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'gridcase-listen-%'"
        ).fetchall()
    return {int(name.rsplit("-", 1)[1]) for (name,) in names}


@pytest.fixture(scope="module")
def app_server(deployment: Deployment) -> Iterator[Server]:
    """The app with 2 workers in front of the deployment."""
    server = serve_app(deployment)
    yield server
    server.stop()


def token(server: Server, username: str) -> dict[str, str]:
    """A bearer token header for a demo account."""
    answer = httpx.post(
        f"{server.url}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}
