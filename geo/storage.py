"""Content-addressed blob storage: a file's key is the sha256 of its bytes.

`BlobStore` is the small interface the rest of gridcase uses (case photos today). `LocalBlobStore`
keeps blobs as files under the state folder; an object store (S3, MinIO, OSS) can implement the same
three methods later, with the key as the object name, and nothing above this module changes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from geo.errors import NotFound

_KEY = re.compile(r"[0-9a-f]{64}")


def blob_key(data: bytes) -> str:
    """Return the content address of `data`: its sha256 as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def is_blob_key(key: str) -> bool:
    """Tell whether `key` is a well-formed content address (and so cannot name a path)."""
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


class BlobStore(Protocol):
    """Where gridcase keeps immutable files, addressed by the sha256 of their bytes."""

    def put(self, data: bytes) -> str:
        """Store `data` once and return its sha256 hex key; storing the same bytes again is a no-op."""
        ...

    def get(self, key: str) -> bytes:
        """Return the bytes stored under `key`; raise `NotFound` if there are none."""
        ...

    def exists(self, key: str) -> bool:
        """Tell whether bytes are stored under `key`."""
        ...


class LocalBlobStore:
    """Blobs as files under `<root>/<aa>/<bb>/<sha256>`, each written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        # Only 64 hex characters ever reach the filesystem, so a key cannot escape the root.
        if not is_blob_key(key):
            raise NotFound(f"no blob with key {key!r}: a key is 64 lowercase hex characters", field="key")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        """Store `data` once and return its sha256 hex key; storing the same bytes again is a no-op."""
        key = blob_key(data)
        path = self._path(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: readers never see a half-written blob, and two writers
        # of the same key both rename identical bytes into place.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{key[:8]}")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        """Return the bytes stored under `key`; raise `NotFound` if there are none."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no blob with key {key}", field="key") from None

    def exists(self, key: str) -> bool:
        """Tell whether bytes are stored under `key` (a malformed key is never stored)."""
        return is_blob_key(key) and self._path(key).is_file()
