"""Photos in a real S3 server (SeaweedFS on loopback): through the API, migrated, and with the store down."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.schemas import CaseOut
from geo.blob_migration import migrate_blobs
from geo.objectstore import S3BlobStore
from geo.settings import Settings
from geo.storage import LocalBlobStore, blob_store
from tests.conftest import FIXTURES, REPO, auth
from tests.s3 import S3Server, s3_server  # noqa: F401

PHOTOS = FIXTURES / "photos"


@pytest.fixture(scope="module")
def s3_settings(settings: Settings, s3_server: S3Server, tmp_path_factory) -> Settings:  # noqa: F811
    """The test settings with photos in the S3 server (prefix `api`) and an empty state folder."""
    state = tmp_path_factory.mktemp("state-s3")
    return settings.model_copy(update={"state_dir": state, **s3_server.settings_update("api")})


@pytest.fixture(scope="module")
def s3_client(s3_settings: Settings, cases_store):
    with TestClient(create_app(s3_settings, store=cases_store)) as client:
        yield client


def file_with_photo(client: TestClient, name: str = "canal_report.jpg") -> tuple[CaseOut, bytes]:
    photo = (PHOTOS / name).read_bytes()
    response = client.post(
        "/api/v1/cases",
        data={"category": "E0102", "description": "北渠边有少量垃圾", "channel": "inspector"},
        files=[("photos", (name, photo, "image/jpeg"))],
        headers=auth(client, "inspector"),
    )
    assert response.status_code == 201, response.text
    return CaseOut.model_validate(response.json()), photo


def objects(server: S3Server, prefix: str) -> dict[str, bytes]:
    """Every object under `prefix/` in the server's bucket, by name, with its bytes."""
    client = server.client()
    listing = client.list_objects_v2(Bucket=server.bucket, Prefix=f"{prefix}/")
    names = [o["Key"] for o in listing.get("Contents", [])]
    return {n: client.get_object(Bucket=server.bucket, Key=n)["Body"].read() for n in names}


def test_a_photo_report_round_trips_through_s3(s3_client, s3_server, s3_settings):  # noqa: F811
    case, photo = file_with_photo(s3_client)
    assert case.routing["located_by"] == "photo EXIF GPS"  # the EXIF was read before storing
    # The original, byte-identical, back through the API (operators only) ...
    original_url = f"/api/v1/cases/{case.id}/photos/{case.photos[0].id}/original"
    original = s3_client.get(original_url, headers=auth(s3_client, "operator"))
    assert original.status_code == 200, original.text
    assert original.content == photo and original.headers["content-type"] == "image/jpeg"
    assert int(original.headers["content-length"]) == len(photo)
    # ... and the public copy, without EXIF.
    public = s3_client.get(case.photos[0].url)
    assert public.status_code == 200 and "immutable" in public.headers["cache-control"]
    assert not Image.open(io.BytesIO(public.content)).getexif()
    # Both live in the bucket under their sha256, and nowhere on the local disk.
    stored = objects(s3_server, "api")
    original_key = hashlib.sha256(photo).hexdigest()
    public_key = hashlib.sha256(public.content).hexdigest()
    assert stored[f"api/{original_key}"] == photo and stored[f"api/{public_key}"] == public.content
    assert not (s3_settings.state_path / "files").exists()


def test_the_same_photo_is_one_object(s3_client, s3_server):  # noqa: F811
    file_with_photo(s3_client)
    before = objects(s3_server, "api")
    file_with_photo(s3_client)  # the same photo in another report: its original and public copy exist
    assert objects(s3_server, "api") == before


def test_migrate_copies_verifies_and_resumes(s3_server, tmp_path):  # noqa: F811
    local = LocalBlobStore(tmp_path / "files")
    keys = [
        local.put((PHOTOS / n).read_bytes()) for n in ("canal_report.jpg", "canal_after.jpg", "scene.webp")
    ]
    corrupt = local.put(b"a photo that will rot on disk")
    path = local.root / corrupt[:2] / corrupt[2:4] / corrupt
    path.write_bytes(b"a photo that rotted on disk!!")  # same name, other bytes
    target = S3BlobStore.from_settings(Settings(**s3_server.settings_update("migrated")))

    first = migrate_blobs(local, target)
    assert (first.copied, first.present, first.corrupt, first.failed) == (3, 0, [corrupt], [])
    for key in keys:
        assert hashlib.sha256(target.get(key)).hexdigest() == key
    assert not target.exists(corrupt)  # reported, never copied
    assert path.read_bytes() == b"a photo that rotted on disk!!"  # and left for a person to look at

    # Interrupted after one blob: the next run sends only what is missing, verifying the rest.
    s3_server.client().delete_object(Bucket=s3_server.bucket, Key=f"migrated/{keys[1]}")
    second = migrate_blobs(local, target)
    assert (second.copied, second.present, len(second.corrupt)) == (1, 2, 1)
    assert "3 blobs verified in the target (1 copied now, 2 already there), 1 corrupt" in second.summary()


def test_migrate_command_reports_counts_and_fails_on_a_corrupt_file(s3_server, tmp_path):  # noqa: F811
    local = LocalBlobStore(tmp_path / "state" / "files")
    key = local.put((PHOTOS / "canal_report.jpg").read_bytes())
    env = {
        **os.environ,
        **s3_server.env("cli"),
        "GRIDCASE_STATE_DIR": str(tmp_path / "state"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    run = subprocess.run(
        ["gridcase", "blobs", "migrate"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 blobs verified in the target (1 copied now, 0 already there), 0 corrupt" in run.stdout
    assert s3_server.client().get_object(Bucket=s3_server.bucket, Key=f"cli/{key}")["Body"].read()

    bad = local.put(b"soon corrupt")
    (local.root / bad[:2] / bad[2:4] / bad).write_bytes(b"corrupted")
    run = subprocess.run(
        ["gridcase", "blobs", "migrate", "--delete-local"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"corrupt: {local.root / bad[:2] / bad[2:4] / bad} does not hash to its name" in run.stdout
    assert "(0 copied now, 1 already there), 1 corrupt local files not copied" in run.stdout
    assert "1 local files removed" in run.stdout
    assert not local.exists(key) and (local.root / bad[:2] / bad[2:4] / bad).exists()


def test_a_store_that_is_down_is_a_503(settings, cases_store, tmp_path):
    """A store of its own, killed: reading and filing photos are 503s naming the store, not 500s."""
    down = S3Server(root=tmp_path / "seaweedfs")
    down.start()
    update = {"state_dir": tmp_path / "state", "s3_timeout_seconds": 1.0, **down.settings_update("down")}
    app = create_app(settings.model_copy(update=update), store=cases_store)
    with TestClient(app, raise_server_exceptions=False) as client:
        case, _ = file_with_photo(client)
        down.stop()
        public = client.get(case.photos[0].url)
        assert public.status_code == 503, public.text
        assert public.headers["retry-after"]
        detail = public.json()["detail"][0]
        assert detail["field"] == "photo_store" and "not reachable" in detail["message"]
        original_url = f"/api/v1/cases/{case.id}/photos/{case.photos[0].id}/original"
        assert client.get(original_url, headers=auth(client, "operator")).status_code == 503
        photo = (PHOTOS / "canal_after.jpg").read_bytes()
        filed = client.post(
            "/api/v1/cases",
            data={"category": "E0102", "description": "渠边垃圾"},
            files=[("photos", ("a.jpg", photo, "image/jpeg"))],
            headers=auth(client, "inspector"),
        )
        assert filed.status_code == 503, filed.text
        assert filed.json()["detail"][0]["field"] == "photo_store"
        # A report without photos does not need the store.
        plain = client.post(
            "/api/v1/cases",
            json={"category": "E0102", "description": "渠边垃圾", "lon": case.lon, "lat": case.lat},
            headers=auth(client, "inspector"),
        )
        assert plain.status_code == 201, plain.text


def test_blob_url_picks_the_store(settings, tmp_path):
    assert isinstance(blob_store(settings), LocalBlobStore)
    folder = blob_store(settings.model_copy(update={"blob_url": f"file://{tmp_path}/blobs"}))
    assert isinstance(folder, LocalBlobStore) and folder.root == tmp_path / "blobs"
    s3 = blob_store(settings.model_copy(update={"blob_url": "s3://photos/chibi/", "s3_region": "us-east-1"}))
    assert isinstance(s3, S3BlobStore) and (s3.bucket, s3.prefix) == ("photos", "chibi")
    with pytest.raises(Exception, match="neither s3://bucket"):
        blob_store(settings.model_copy(update={"blob_url": "ftp://photos"}))
