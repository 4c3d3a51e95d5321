"""Photos in an S3-compatible object store (AWS S3, SeaweedFS, MinIO, Ceph RGW, OSS, COS...).

`S3BlobStore` is the `BlobStore` of geo/storage.py over boto3, the maintained AWS SDK, which
speaks to any S3-compatible server. An object's name is `<prefix>/<sha256>` (the key of
geo/storage.py), so a blob is stored once whoever uploads it, and every worker on every host
reads the same objects. Reads stream: a served photo passes through in chunks, never whole.

A store that does not answer (down, a network partition, a timeout) or refuses (bad credentials,
no such bucket) raises `StorageUnavailable`, which the API answers with a 503 and `Retry-After`;
timeouts are short and retries few so that a request fails fast rather than waiting on a dead
store. Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a
shared credentials file, an instance role); gridcase never stores them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from geo.errors import NotFound, StorageUnavailable
from geo.storage import CHUNK, Blob, blob_key, is_blob_key

if TYPE_CHECKING:
    from geo.settings import Settings

# What S3 servers answer for "no such object" on GET (NoSuchKey) and on HEAD (a bare 404).
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3BlobStore:
    """Blobs as objects `<prefix>/<sha256>` in one bucket of an S3-compatible store."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        """The store `GRIDCASE_BLOB_URL=s3://bucket/prefix` names, at `GRIDCASE_S3_ENDPOINT_URL`."""
        parts = urlsplit(settings.blob_url or "")
        timeout = settings.s3_timeout_seconds
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": settings.s3_addressing_style},
            # Many requests at once from a worker's threads (one client is thread-safe).
            max_pool_connections=32,
            # botocore's default CRC trailers are not understood by every S3-compatible server;
            # content addressing (the sha256 is the name) is our integrity check.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = boto3.session.Session().client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region, config=config
        )
        return cls(client, parts.netloc, parts.path)

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix})"

    def _name(self, key: str) -> str:
        if not is_blob_key(key):
            raise NotFound(f"no blob with key {key!r}: a key is 64 lowercase hex characters", field="key")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _failed(self, exc: Exception, key: str) -> NoReturn:
        """Translate a boto3 error: a missing object is NotFound, anything else the store's fault."""
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise NotFound(f"no blob with key {key}", field="key") from None
            raise StorageUnavailable(
                f"the photo store s3://{self.bucket} refused the request ({code}); retry later"
            ) from exc
        raise StorageUnavailable(
            f"the photo store s3://{self.bucket} is not reachable just now ({type(exc).__name__}); "
            "retry later"
        ) from exc

    def put(self, data: bytes) -> str:
        """Store `data` once and return its sha256 hex key; storing the same bytes again is a no-op."""
        key = blob_key(data)
        if not self.exists(key):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)
            except (BotoCoreError, ClientError) as exc:
                self._failed(exc, key)
        return key

    def put_file(self, key: str, file: BinaryIO) -> None:
        """Store a file's bytes under `key`, sent from the file as it is read (the caller checked the
        hash; a retry seeks the file back, so it must be a real file)."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=file)
        except (BotoCoreError, ClientError) as exc:
            self._failed(exc, key)

    def exists(self, key: str) -> bool:
        """Tell whether the object `<prefix>/<key>` exists (a malformed key never does)."""
        if not is_blob_key(key):
            return False
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            try:
                self._failed(exc, key)
            except NotFound:
                return False
        return True

    def open(self, key: str) -> Blob:
        """Open the object for streaming: the request is made now (so a missing object or a dead
        store is known before an answer starts), the bytes are read as the chunks are consumed."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            self._failed(exc, key)
        return Blob(size=int(answer["ContentLength"]), chunks=self._chunks(answer["Body"], key))

    def _chunks(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        except (BotoCoreError, ClientError) as exc:
            self._failed(exc, key)
        finally:
            body.close()

    def get(self, key: str) -> bytes:
        """Return the bytes stored under `key`; raise `NotFound` if there are none."""
        return self.open(key).read()
