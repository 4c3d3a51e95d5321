"""Streaming replicas of the managed cluster: `gridcase db replica add|list|remove`.

A replica is a real PostgreSQL hot standby made by `pg_basebackup -R` (which writes
`standby.signal` and the `primary_conninfo` to reach the primary) into
`<state_dir>/replicas/<name>/data`, with a physical replication slot on the primary (`-C -S`, so
the primary keeps the WAL a stopped replica still needs), its own port on 127.0.0.1 and, when we
are root, the same unprivileged owner as the primary. In managed mode (no DATABASE_URL and no
GRIDCASE_READ_DATABASE_URL) the server reads from the running ones.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from sqlalchemy import create_engine, text

from geo.errors import DatabaseUnavailable, InvalidInput
from geo.store.cluster import LocalCluster, free_port

NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class LocalReplica(LocalCluster):
    """One hot standby of the managed cluster, in its own folder of the state folder."""

    # Long dashboard queries are not cancelled by vacuum on the primary (it waits for them).
    start_options = " -c hot_standby=on -c hot_standby_feedback=on"

    def __init__(self, state_dir: Path, name: str, os_user: str = "postgres"):
        if not NAME.match(name):
            raise InvalidInput(
                f"replica name {name!r}: use lower-case letters, digits and _ (a letter first)", field="name"
            )
        super().__init__(state_dir, os_user)
        self.name = name
        self.root = Path(state_dir).expanduser().resolve() / "replicas" / name
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_file = self.root / "postgres.log"
        self.info_file = self.root / "cluster.json"

    @property
    def slot(self) -> str:
        """The primary's replication slot for this replica."""
        return f"gridcase_{self.name}"

    def init(self) -> None:
        """A standby is made by `create`, never by initdb."""
        if not self.initialised:
            raise DatabaseUnavailable(f"replica {self.name} was never created (gridcase db replica add)")

    def create(self, primary: LocalCluster) -> None:
        """Copy the running primary with `pg_basebackup -R` and start the standby on a port of its own."""
        if self.initialised:
            raise InvalidInput(f"replica {self.name} exists already", field="name")
        primary.start()
        info = primary._info()
        for folder in (self.root, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            self._own(folder, 0o700)
        self._make_traversable()
        # pg_basebackup makes the data folder itself (mode 0700, owned by whoever runs it).
        self._run(
            "pg_basebackup",
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(info["port"]),
            "-U",
            info["user"],
            "-R",  # standby.signal and primary_conninfo (with the password) in postgresql.auto.conf
            "-X",
            "stream",
            "-C",
            "-S",
            self.slot,
            "-c",
            "fast",
            "--no-password",
            env={"PGPASSWORD": info["password"]},
        )
        self._write_info({**info, "port": free_port(), "primary_port": info["port"]})
        self.start()

    def remove(self, primary: LocalCluster) -> None:
        """Stop the standby, drop its folder and the primary's slot for it."""
        if self.initialised:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if primary.is_running():
            engine = create_engine(primary.url("postgres"), isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.execute(
                        text(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                            "WHERE slot_name = :slot"
                        ),
                        {"slot": self.slot},
                    )
            finally:
                engine.dispose()


def replicas_of(state_dir: Path, os_user: str = "postgres") -> list[LocalReplica]:
    """The managed replicas of a state folder, by name."""
    root = Path(state_dir).expanduser().resolve() / "replicas"
    if not root.is_dir():
        return []
    return [
        LocalReplica(state_dir, folder.name, os_user)
        for folder in sorted(root.iterdir())
        if NAME.match(folder.name) and (folder / "cluster.json").exists()
    ]
