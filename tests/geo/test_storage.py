"""Content-addressed blob storage: keys, idempotence, atomic writes, keys that cannot escape the root."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from geo.errors import NotFound
from geo.storage import BlobStore, LocalBlobStore, blob_key, is_blob_key

DATA = b"a photo of garbage by the North Canal"
KEY = hashlib.sha256(DATA).hexdigest()


def files_under(root: Path) -> list[Path]:
    """Every file under `root`, hidden ones included."""
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_local_store_implements_the_interface(store: LocalBlobStore) -> None:
    as_protocol: BlobStore = store  # checked by mypy; the call below checks it at run time
    assert as_protocol.put(DATA) == KEY


def test_put_returns_sha256_and_lays_files_out_by_prefix(store: LocalBlobStore) -> None:
    key = store.put(DATA)
    assert key == KEY == blob_key(DATA)
    assert files_under(store.root) == [store.root / KEY[:2] / KEY[2:4] / KEY]


def test_put_is_idempotent_same_bytes_stored_once(store: LocalBlobStore) -> None:
    assert store.put(DATA) == store.put(bytes(DATA)) == KEY
    assert len(files_under(store.root)) == 1


def test_get_returns_the_exact_bytes(store: LocalBlobStore) -> None:
    other = bytes(range(256)) * 10
    store.put(DATA)
    key = store.put(other)
    assert store.get(KEY) == DATA
    assert store.get(key) == other
    assert store.exists(KEY) and store.exists(key)


def test_missing_key_is_not_found(store: LocalBlobStore) -> None:
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(NotFound) as err:
        store.get(missing)
    assert err.value.field == "key"


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "/etc/passwd", KEY.upper(), KEY[:-1], KEY + "0", f"{KEY[:62]}/.", "", "g" * 64],
)
def test_malformed_keys_never_reach_the_filesystem(store: LocalBlobStore, key: str) -> None:
    store.put(DATA)
    assert not is_blob_key(key)
    assert not store.exists(key)
    with pytest.raises(NotFound):
        store.get(key)


def test_failed_write_leaves_neither_blob_nor_temp_file(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put(DATA)
    assert not store.exists(KEY)
    assert files_under(store.root) == []

    monkeypatch.undo()  # the disk recovers: the same put now succeeds
    assert store.put(DATA) == KEY and store.get(KEY) == DATA


def test_empty_bytes_are_a_valid_blob(store: LocalBlobStore) -> None:
    key = store.put(b"")
    assert key == hashlib.sha256(b"").hexdigest()
    assert store.get(key) == b""
