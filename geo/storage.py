"""Content-addressed blob storage: a file's key is the sha256 of its bytes.

`BlobStore` is the small interface the rest of gridcase uses (case photos today). `LocalBlobStore`
keeps blobs as files under the state folder; `geo.objectstore.S3BlobStore` keeps them in any
S3-compatible object store (`GRIDCASE_BLOB_URL=s3://bucket/prefix`), the key as the object name.
`blob_store(settings)` picks the one the settings name; nothing above this module knows which.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import urlsplit

from geo.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from geo.settings import Settings

_KEY = re.compile(r"[0-9a-f]{64}")
#: How much of a blob is read or sent at a time: a served photo is never held whole in memory.
CHUNK = 256 * 1024


@dataclass
class Blob:
    """A stored blob opened for reading: its size and its bytes in chunks (read as they are sent)."""

    size: int
    chunks: Iterator[bytes]

    def read(self) -> bytes:
        """All the bytes at once (for callers that need them whole, e.g. to decode a photo)."""
        return b"".join(self.chunks)


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

    def open(self, key: str) -> Blob:
        """Open the bytes under `key` for streaming; raise `NotFound` if there are none."""
        ...

    def put_file(self, key: str, file: BinaryIO) -> None:
        """Store a file's bytes under `key`, read in chunks (the caller has checked the hash)."""
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

    def open(self, key: str) -> Blob:
        """Open the file under `key`; its chunks are read from disk as they are consumed."""
        path = self._path(key)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"no blob with key {key}", field="key") from None
        return Blob(size=os.fstat(f.fileno()).st_size, chunks=_read_chunks(f))

    def put_file(self, key: str, file: BinaryIO) -> None:
        """Store a file's bytes under `key`, copied in chunks through a temp file and a rename."""
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{key[:8]}")
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := file.read(CHUNK):
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def blobs(self) -> Iterator[tuple[str, Path]]:
        """Every stored key with its file, in key order (temp files and strays are not blobs)."""
        for first in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for second in sorted(first.glob("[0-9a-f][0-9a-f]")):
                for path in sorted(second.iterdir()):
                    if is_blob_key(path.name) and path.name[:4] == first.name + second.name:
                        yield path.name, path


def _read_chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk


def hash_file(file: BinaryIO) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    while chunk := file.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def local_store(settings: Settings) -> LocalBlobStore:
    """The local store of the state folder (`<state_dir>/files`), where photos live by default."""
    return LocalBlobStore(settings.state_path / "files")


def blob_store(settings: Settings) -> BlobStore:
    """The store `GRIDCASE_BLOB_URL` names: unset, the state folder's files; `file:///path`, a
    folder; `s3://bucket/prefix`, an S3-compatible object store (geo/objectstore.py)."""
    url = settings.blob_url
    if not url:
        return local_store(settings)
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path:
        return LocalBlobStore(Path(parts.path))
    if parts.scheme == "s3" and parts.netloc:
        from geo.objectstore import S3BlobStore  # boto3 loads only where an object store is used

        return S3BlobStore.from_settings(settings)
    raise InvalidInput(
        f"GRIDCASE_BLOB_URL {url!r} is neither s3://bucket[/prefix] nor file:///folder", field="blob_url"
    )
