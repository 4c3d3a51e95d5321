"""The managed local PostgreSQL + PostGIS cluster that gridcase runs when no DATABASE_URL is set.

The cluster lives in `<state_dir>/pg`: data directory, socket directory, log and a small
`cluster.json` with its port and password. PostgreSQL refuses to run as root, so when we are
root the cluster is owned and run by an unprivileged account (`GRIDCASE_DB_OS_USER`, default
`postgres`, created as a system user if missing).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from geo.errors import DatabaseUnavailable

SUPERUSER = "gridcase"


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl, newest PostgreSQL first."""
    if env := os.environ.get("GRIDCASE_PG_BINDIR"):
        return Path(env)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    if candidates:
        return candidates[0].parent
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    raise DatabaseUnavailable(
        "PostgreSQL server binaries not found; install postgresql-15 and postgresql-15-postgis-3 "
        "or set DATABASE_URL"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class ClusterStatus:
    """What `gridcase db status` reports about the managed cluster."""

    initialised: bool
    running: bool
    port: int | None
    data_dir: Path
    os_user: str


class LocalCluster:
    """A private PostgreSQL cluster in the state folder, started on demand."""

    #: Extra server options at start (a standby adds its own).
    start_options = ""

    def __init__(self, state_dir: Path, os_user: str = "postgres"):
        self.root = Path(state_dir).expanduser().resolve() / "pg"
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_file = self.root / "postgres.log"
        self.info_file = self.root / "cluster.json"
        self.as_root = os.geteuid() == 0
        self.os_user = os_user if self.as_root else pwd.getpwuid(os.geteuid()).pw_name
        self.bindir = find_bindir()

    # -- running commands as the cluster's owner -------------------------------------------
    def _account(self) -> pwd.struct_passwd:
        """The unprivileged account that owns the cluster, created when missing."""
        try:
            return pwd.getpwnam(self.os_user)
        except KeyError:
            if not self.as_root:
                raise
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", self.os_user],
                check=True,
            )
            return pwd.getpwnam(self.os_user)

    def _run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the cluster owner (with extra environment variables)."""
        kwargs: dict = {}
        if self.as_root:
            account = self._account()
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        cmd = [str(self.bindir / args[0]), *args[1:]]
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd="/",
            env={**os.environ, "LC_ALL": "C.UTF-8", **(env or {})},
            **kwargs,
        )
        if check and result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
            raise DatabaseUnavailable(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                + (f"\n--- {self.log_file} ---\n{tail}" if tail else "")
            )
        return result

    def _own(self, path: Path, mode: int) -> None:
        """Give a path to the cluster owner with the given mode."""
        path.chmod(mode)
        if self.as_root:
            account = self._account()
            os.chown(path, account.pw_uid, account.pw_gid)

    def _make_traversable(self) -> None:
        """Let the cluster owner reach the state folder (a 0700 temp dir above it would block it)."""
        if not self.as_root:
            return
        for parent in [self.root, *self.root.parents]:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                # Traverse only (o+x), never listing: enough for the owner to reach its own folder.
                parent.chmod(mode | stat.S_IXOTH)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise init/start/stop between processes (parallel test workers, two CLIs)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root.parent / "pg.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- state --------------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        """Whether initdb has run here."""
        return (self.data_dir / "PG_VERSION").exists()

    def _info(self) -> dict:
        return json.loads(self.info_file.read_text())

    def _write_info(self, info: dict) -> None:
        self.info_file.write_text(json.dumps(info, indent=2))
        self.info_file.chmod(0o600)

    def is_running(self) -> bool:
        """Whether the postmaster of this data directory is alive."""
        if not self.initialised:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def status(self) -> ClusterStatus:
        """Initialised, running, port, where."""
        port = self._info()["port"] if self.info_file.exists() else None
        return ClusterStatus(self.initialised, self.is_running(), port, self.data_dir, self.os_user)

    # -- lifecycle ----------------------------------------------------------------------------
    def init(self) -> None:
        """Run initdb once, with a random superuser password and scram authentication."""
        if self.initialised:
            return
        self._make_traversable()
        for folder in (self.root, self.data_dir, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._own(self.root, 0o700)
        self._own(self.data_dir, 0o700)
        self._own(self.socket_dir, 0o700)
        password = secrets.token_hex(16)
        pwfile = self.root / "initdb.pw"
        pwfile.write_text(password + "\n")
        self._own(pwfile, 0o600)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_info({"port": free_port(), "password": password, "user": SUPERUSER})

    def start(self) -> None:
        """Start the cluster on its port (a new free one if another process took it)."""
        with self._lock():
            self.init()
            if self.is_running():
                return
            self._make_traversable()
            info = self._info()
            if port_in_use(info["port"]):
                info["port"] = free_port()
                self._write_info(info)
            self.log_file.touch()
            self._own(self.log_file, 0o600)
            options = (
                f"-p {info['port']} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.socket_dir}{self.start_options}"
            )
            start = ("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60")
            started = self._run(*start, "-o", options, check=False)
            if started.returncode != 0 and not self.is_running():
                self._run(*start, "-o", options)  # again, to raise with pg_ctl's words and the log

    def stop(self) -> None:
        """Stop the cluster if it runs (fast shutdown: open sessions are rolled back)."""
        with self._lock():
            if not self.initialised:
                return
            # Ask pg_ctl to stop whatever it finds rather than trusting a status read first: under
            # load a status read can race the postmaster rewriting its pid file and say "not
            # running", which left a running server behind and made the next start fail.
            result = self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", check=False)
            if result.returncode != 0 and self.is_running():
                raise DatabaseUnavailable(
                    f"pg_ctl stop failed: {result.stderr.strip() or result.stdout.strip()}"
                )

    def url(self, database: str) -> str:
        """SQLAlchemy URL for a database in this cluster."""
        info = self._info()
        return f"postgresql+psycopg://{info['user']}:{info['password']}@127.0.0.1:{info['port']}/{database}"
