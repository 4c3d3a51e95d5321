"""Move the photos of a local store into another store (an object store), verifying every hash.

Each local file is hashed first (its name is the sha256 of its bytes: a file whose bytes no longer
match is corrupt, reported and never copied), then sent unless the target already holds it, then
read back from the target and hashed again: only a blob whose stored bytes hash to its key counts
as moved. Files are read and sent in chunks, never whole. Running it again copies nothing twice
(a blob already in the target is verified, not sent), so an interrupted run is resumed by running
it again. Local files stay unless `delete_local` (then each goes once its copy is verified).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from geo.errors import GridcaseError, StorageUnavailable
from geo.storage import BlobStore, LocalBlobStore, hash_file


@dataclass
class MigrationReport:
    """What a run did: blobs copied, found already there, corrupt locally, failed, removed."""

    copied: int = 0
    present: int = 0
    deleted: int = 0
    corrupt: list[str] = field(default_factory=list)  # local files whose bytes do not match the name
    failed: list[tuple[str, str]] = field(default_factory=list)  # key, why
    stopped: str | None = None  # why the run stopped early (the target store went away)

    @property
    def verified(self) -> int:
        """Blobs whose bytes in the target hash to their key (copied now or before)."""
        return self.copied + self.present

    def summary(self) -> str:
        """One line for the console."""
        stopped = f"; stopped early: {self.stopped}" if self.stopped else ""
        return (
            f"{self.verified:,} blobs verified in the target ({self.copied:,} copied now, "
            f"{self.present:,} already there), {len(self.corrupt):,} corrupt local files not copied, "
            f"{len(self.failed):,} failed, {self.deleted:,} local files removed{stopped}"
        )


def stored_hash(target: BlobStore, key: str) -> str:
    """The sha256 of the bytes the target holds under `key`, read back in chunks."""
    digest = hashlib.sha256()
    for chunk in target.open(key).chunks:
        digest.update(chunk)
    return digest.hexdigest()


def migrate_blobs(
    source: LocalBlobStore,
    target: BlobStore,
    *,
    delete_local: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> MigrationReport:
    """Copy every blob of `source` into `target` and verify it there; see the module's docstring."""
    report = MigrationReport()
    for key, path in source.blobs():
        with path.open("rb") as f:
            if hash_file(f) != key:
                report.corrupt.append(key)
                log(f"corrupt: {path} does not hash to its name; not copied")
                continue
            try:
                there = target.exists(key)
                if not there:
                    f.seek(0)
                    target.put_file(key, f)
                if stored_hash(target, key) != key:
                    report.failed.append((key, "the stored bytes do not hash to the key"))
                    log(f"failed: {key}: the copy in the target does not hash to its key")
                    continue
            except StorageUnavailable as exc:  # the rest would fail alike: run again later
                report.stopped = exc.message
                log(f"stopped: {exc.message}")
                return report
            except GridcaseError as exc:
                report.failed.append((key, exc.message))
                log(f"failed: {key}: {exc.message}")
                continue
        if there:
            report.present += 1
        else:
            report.copied += 1
        if delete_local:
            path.unlink()
            report.deleted += 1
    return report
