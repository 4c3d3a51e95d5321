"""32 reporters upload a photo that decodes to 39.7 Mpx at once: the server's peak memory stays bounded.

Before: any reporter could send a 150 KiB PNG that decodes to 39.7 million pixels, and four at once
took the server from 850 MB to 2.75 GB. Decodes are now bounded (as many at once as cores) and JPEGs
are decoded at the public size. The server runs as a process; its peak resident memory is the
kernel's own high-water mark (VmHWM).
"""

from __future__ import annotations

import io
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

from geo.demo import DEMO_PASSWORD
from geo.store.cluster import free_port
from tests.conftest import REPO
from tests.test_cli import GRIDCASE

UPLOADS = 32
LIMIT_BYTES = 1.5 * 2**30


def near_limit_png() -> bytes:
    """A 7,000 × 5,670 (39.7 Mpx) PNG of a few colours: small to send, huge to decode."""
    image = Image.new("RGB", (7000, 5670), (120, 160, 90))
    image.paste((200, 40, 40), (1000, 1000, 3000, 3000))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def test_32_near_limit_uploads_keep_the_server_under_1_5_gb(cases_store, tmp_path):
    photo = near_limit_png()
    assert len(photo) < 400_000
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"DATABASE_URL": cases_store.url, "GRIDCASE_STATE_DIR": str(tmp_path)}
    server = subprocess.Popen(
        [GRIDCASE, "serve", "--workers", "1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        token = httpx.post(
            f"{url}/api/v1/auth/token", data={"username": "inspector", "password": DEMO_PASSWORD}
        ).json()["access_token"]
        before = peak_rss(server.pid)
        statuses: list[int] = []

        def upload(i: int) -> None:
            response = httpx.post(
                f"{url}/api/v1/cases",
                data={"category": "E0102", "lon": "113.8999", "lat": "29.7249"},
                files=[("photos", (f"big{i}.png", photo, "image/png"))],
                headers={"Authorization": f"Bearer {token}"},
                timeout=300,
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(UPLOADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        peak = peak_rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert statuses == [201] * UPLOADS, statuses  # each was accepted: under the pixel limit
    print(f"\nserver peak memory {before / 2**20:.0f} MiB before, {peak / 2**20:.0f} MiB after {UPLOADS}")
    assert peak < LIMIT_BYTES, f"peak {peak / 2**30:.2f} GiB"
