"""Case photos: real fixture files (tests/fixtures/photos/make_photos.py) through `ingest_photo`."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageFile
from PIL.TiffImagePlugin import IFDRational

from geo.errors import InvalidPhoto
from geo.photos import Photo, PhotoLimits, check_count, ingest_photo, read_gps
from geo.storage import LocalBlobStore
from tests.conftest import FIXTURES

PHOTOS = FIXTURES / "photos"
CHINA = timezone(timedelta(hours=8))
RED = (255, 0, 0)
DEFAULTS = PhotoLimits()

# fixture -> (content type of the original, of the public copy)
ACCEPTED = {
    "canal_report.jpg": ("image/jpeg", "image/jpeg"),
    "canal_after.jpg": ("image/jpeg", "image/jpeg"),
    "buenos_aires.jpg": ("image/jpeg", "image/jpeg"),
    "no_gps.jpg": ("image/jpeg", "image/jpeg"),
    "scene_alpha.png": ("image/png", "image/png"),
    "scene.webp": ("image/webp", "image/jpeg"),
    "canal_report.heic": ("image/heic", "image/jpeg"),
}


def read(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def is_red(image: Image.Image) -> bool:
    """Whether the top-left corner shows the red marker (lossy-encoded: strongly red, little else)."""
    red, green, blue = pixel(image.convert("RGB"), (5, 5))
    return red > 200 and green < 60 and blue < 60


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def ingest(name: str, store: LocalBlobStore, limits: PhotoLimits = DEFAULTS) -> Photo:
    return ingest_photo(read(name), store, limits)


def public_image(photo: Photo, store: LocalBlobStore) -> Image.Image:
    return Image.open(io.BytesIO(store.get(photo.public_key)))


def test_fixtures_are_small_and_present() -> None:
    names = {p.name for p in PHOTOS.iterdir()}
    assert set(ACCEPTED) | {"bomb_400mp.png", "bomb_64mp.png", "not_an_image.jpg"} <= names
    assert all(p.stat().st_size < 100_000 for p in PHOTOS.iterdir())


# --- where: EXIF GPS ---------------------------------------------------------------------------


def test_canal_report_position_from_exif_gps(store: LocalBlobStore) -> None:
    photo = ingest("canal_report.jpg", store)
    assert photo.lon == pytest.approx(113.9000, abs=1e-6)  # 113° 54' 1.8" E
    assert photo.lat == pytest.approx(29.7249, abs=1e-6)  # 29° 44' 0.6" N


def test_south_and_west_refs_give_negative_degrees(store: LocalBlobStore) -> None:
    photo = ingest("buenos_aires.jpg", store)
    assert photo.lon == pytest.approx(-58.3816, abs=1e-6)
    assert photo.lat == pytest.approx(-34.6037, abs=1e-6)


@pytest.mark.parametrize("name", ["canal_after.jpg", "scene_alpha.png", "scene.webp", "canal_report.heic"])
def test_gps_is_read_from_every_format(store: LocalBlobStore, name: str) -> None:
    photo = ingest(name, store)
    assert (photo.lon, photo.lat) == (pytest.approx(113.9000, abs=1e-6), pytest.approx(29.7249, abs=1e-6))


def test_photo_without_gps_has_no_position(store: LocalBlobStore) -> None:
    photo = ingest("no_gps.jpg", store)
    assert photo.lon is None and photo.lat is None


def gps_jpeg(gps: dict[int, object]) -> bytes:
    """A tiny real JPEG whose GPS IFD holds exactly `gps`."""
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 60)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def r(n: int, d: int = 1) -> IFDRational:
    return IFDRational(n, d)


G = ExifTags.GPS
GOOD: dict[int, object] = {
    G.GPSLatitudeRef: "N",
    G.GPSLatitude: (r(29), r(44), r(6, 10)),
    G.GPSLongitudeRef: "E",
    G.GPSLongitude: (r(113), r(54), r(18, 10)),
}


@pytest.mark.parametrize(
    "change",
    [
        {G.GPSLatitude: (r(95), r(0), r(0))},  # latitude over 90
        {G.GPSLongitude: (r(181), r(0), r(0))},  # longitude over 180
        {G.GPSLatitude: (r(29), r(75), r(0))},  # 75 minutes
        {G.GPSLatitude: (r(29, 0), r(44), r(0))},  # zero denominator
        {G.GPSLatitude: (r(0), r(0), r(0)), G.GPSLongitude: (r(0), r(0), r(0))},  # 0,0: no fix
        {G.GPSLatitudeRef: "X"},  # not N or S
        {G.GPSStatus: "V"},  # the receiver says the fix is void
    ],
    ids=["lat>90", "lon>180", "minutes>=60", "zero-denominator", "null-island", "bad-ref", "void-fix"],
)
def test_nonsense_gps_reads_as_no_gps(store: LocalBlobStore, change: dict[int, object]) -> None:
    photo = ingest_photo(gps_jpeg(GOOD | change), store)
    assert photo.lon is None and photo.lat is None


def test_missing_ref_is_not_guessed(store: LocalBlobStore) -> None:
    gps: dict[int, object] = {k: v for k, v in GOOD.items() if k != G.GPSLongitudeRef}
    assert ingest_photo(gps_jpeg(gps), store).lon is None
    assert ingest_photo(gps_jpeg(GOOD), store).lon == pytest.approx(113.9005, abs=1e-6)


# --- when: EXIF time ---------------------------------------------------------------------------


def test_taken_at_uses_offset_time_original(store: LocalBlobStore) -> None:
    taken = ingest("canal_report.jpg", store).taken_at
    assert taken == datetime(2026, 7, 15, 6, 37, 12, tzinfo=CHINA)
    assert taken is not None and taken.utcoffset() == timedelta(hours=8)


def test_taken_at_without_offset_uses_the_gps_utc_stamp(store: LocalBlobStore) -> None:
    # 15:20 local in Buenos Aires (UTC-3), no offset tag; the GPS stamp says 18:20 UTC.
    assert ingest("buenos_aires.jpg", store).taken_at == datetime(2026, 3, 2, 18, 20, tzinfo=UTC)


def test_naive_taken_at_is_read_as_china_time(store: LocalBlobStore) -> None:
    taken = ingest("no_gps.jpg", store).taken_at
    assert taken == datetime(2026, 7, 15, 9, 5, tzinfo=CHINA)
    assert taken is not None and taken.utcoffset() == timedelta(hours=8)


def test_no_time_in_exif_is_none(store: LocalBlobStore) -> None:
    assert ingest("scene.webp", store).taken_at is None


# --- orientation, privacy, storage -------------------------------------------------------------


def test_orientation_6_is_applied(store: LocalBlobStore) -> None:
    stored = Image.open(PHOTOS / "canal_report.jpg")
    assert stored.size == (480, 320)  # as the sensor wrote it
    assert not is_red(stored)

    photo = ingest("canal_report.jpg", store)
    assert (photo.width, photo.height) == (320, 480)  # width and height swapped
    public = public_image(photo, store)
    assert public.size == (320, 480)
    assert is_red(public)  # the marker is upright top-left again


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_public_copy_has_no_metadata_at_all(store: LocalBlobStore, name: str) -> None:
    photo = ingest(name, store)
    raw = store.get(photo.public_key)
    public = Image.open(io.BytesIO(raw))
    assert len(public.getexif()) == 0
    assert read_gps(public.getexif()) is None
    assert not {"exif", "xmp", "icc_profile", "XML:com.adobe.xmp"} & set(public.info)
    for marker in (b"Exif\x00\x00", b"HUAWEI", b"ALN-AL00", b"ns.adobe.com", b"29,44", b"eXIf"):
        assert marker not in raw, marker


def test_the_original_keeps_its_exif(store: LocalBlobStore) -> None:
    photo = ingest("canal_report.jpg", store)
    assert store.get(photo.original_key) == read("canal_report.jpg")  # byte-identical
    original = Image.open(io.BytesIO(store.get(photo.original_key)))
    assert read_gps(original.getexif()) == (
        pytest.approx(113.9000, abs=1e-6),
        pytest.approx(29.7249, abs=1e-6),
    )


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_content_types_and_both_copies_stored(store: LocalBlobStore, name: str) -> None:
    photo = ingest(name, store)
    assert (photo.content_type, photo.public_content_type) == ACCEPTED[name]
    assert store.get(photo.original_key) == read(name)
    assert Image.open(io.BytesIO(store.get(photo.public_key))).format == photo.public_content_type[6:].upper()


def test_transparency_is_kept_in_a_png_public_copy(store: LocalBlobStore) -> None:
    public = public_image(ingest("scene_alpha.png", store), store)
    assert public.mode == "RGBA"
    assert pixel(public, (150, 10))[3] == 0  # the transparent corner
    assert pixel(public, (10, 200))[3] == 255


def test_heic_is_accepted_oriented_and_stripped(store: LocalBlobStore) -> None:
    photo = ingest("canal_report.heic", store)
    assert photo.content_type == "image/heic"
    assert (photo.width, photo.height) == (320, 480)
    assert photo.taken_at == datetime(2026, 7, 15, 6, 37, 12, tzinfo=CHINA)
    assert is_red(public_image(photo, store))


def test_same_bytes_twice_same_keys_stored_once(store: LocalBlobStore) -> None:
    first = ingest("canal_report.jpg", store)
    second = ingest("canal_report.jpg", store)
    assert first == second
    assert len(files_under(store.root)) == 2  # one original, one public copy


def test_same_picture_with_different_exif_shares_one_public_copy(store: LocalBlobStore) -> None:
    # The same upright scene with Buenos Aires GPS and with no GPS: once stripped, the bytes agree.
    a, b = ingest("buenos_aires.jpg", store), ingest("no_gps.jpg", store)
    assert a.original_key != b.original_key
    assert a.public_key == b.public_key


# --- limits and refusals -----------------------------------------------------------------------


def refused(data: bytes, store: LocalBlobStore, limits: PhotoLimits = DEFAULTS) -> InvalidPhoto:
    with pytest.raises(InvalidPhoto) as err:
        ingest_photo(data, store, limits)
    assert err.value.field == "photos"
    assert files_under(store.root) == []  # nothing stored for a refused photo
    return err.value


def test_too_many_bytes_refused_before_decoding(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("decoded an oversized upload"))
    data = read("canal_report.jpg")
    error = refused(data, store, PhotoLimits(max_bytes=len(data) - 1))
    assert f"{len(data):,} bytes" in error.message and f"{len(data) - 1:,} bytes" in error.message


def test_default_byte_limit_is_15_mib(store: LocalBlobStore) -> None:
    error = refused(b"\xff\xd8" + b"\x00" * (15 * 1024 * 1024 - 1), store)
    assert "15,728,641 bytes" in error.message and "15,728,640" in error.message


def test_too_many_pixels_refused(store: LocalBlobStore) -> None:
    error = refused(read("canal_report.jpg"), store, PhotoLimits(max_pixels=100_000))
    assert "480x320 = 153,600 pixels" in error.message and "100,000" in error.message


@pytest.mark.parametrize(
    ("name", "numbers"),
    [("bomb_64mp.png", "8000x8000 = 64,000,000 pixels"), ("bomb_400mp.png", "400000000 pixels")],
)
def test_decompression_bombs_refused_quickly_without_decoding(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch, name: str, numbers: str
) -> None:
    # Any pixel decoding would go through ImageFile.load: make it fatal, so refusal must come first.
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("bomb was decoded"))
    start = time.perf_counter()
    error = refused(read(name), store)
    assert time.perf_counter() - start < 1.0
    assert numbers in error.message and "40,000,000" in error.message


def test_count_over_the_limit_refused() -> None:
    check_count(6, PhotoLimits())
    check_count(0, PhotoLimits())
    with pytest.raises(InvalidPhoto) as err:
        check_count(7, PhotoLimits())
    assert err.value.field == "photos"
    assert "7 photos" in err.value.message and "at most 6" in err.value.message
    with pytest.raises(InvalidPhoto, match="at most 2"):
        check_count(3, PhotoLimits(max_photos=2))


def test_text_file_named_jpg_refused(store: LocalBlobStore) -> None:
    assert "not an image" in refused(read("not_an_image.jpg"), store).message


def test_empty_upload_refused(store: LocalBlobStore) -> None:
    assert "empty" in refused(b"", store).message


@pytest.mark.parametrize("cut", [50, 300, 5_000])
def test_truncated_upload_refused(store: LocalBlobStore, cut: int) -> None:
    # Weak phone networks cut uploads short; a partial JPEG is refused, not stored half-grey.
    refused(read("canal_report.jpg")[:cut], store)


def test_real_image_of_an_unaccepted_type_refused(store: LocalBlobStore) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), RED).save(buffer, "GIF")
    refused(buffer.getvalue(), store)


# --- public size: JPEG draft decoding ------------------------------------------------------------


def _big_jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    """A phone-sized JPEG showing `size` with GPS in its EXIF and the red marker top-left as shown
    (orientation 6: stored turned 90° counter-clockwise, a phone held upright)."""
    image = Image.new("RGB", size, (40, 120, 200))
    image.paste(RED, (0, 0, 200, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (IFDRational(29), IFDRational(43), IFDRational(30)),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (IFDRational(113), IFDRational(54), IFDRational(0)),
        }
    )
    if orientation == 6:  # stored rotated: the sensor's pixels, shown after a 90° turn
        image = image.transpose(Image.Transpose.ROTATE_90)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("size", "orientation", "public"),
    [
        ((2000, 1500), 1, (1000, 750)),
        ((1500, 2000), 6, (750, 1000)),
        ((4000, 3000), 1, (1000, 750)),
        ((1200, 900), 1, (1000, 750)),
        ((800, 600), 1, (800, 600)),
    ],
)
def test_the_public_copy_is_at_most_the_public_size_and_decoded_at_that_scale(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch, size, orientation, public
) -> None:
    data = _big_jpeg(size, orientation)
    decoded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def spy(self: Image.Image):  # noqa: ANN202
        result = load(self)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    photo = ingest_photo(data, store)
    assert (photo.width, photo.height) == public
    shown = public_image(photo, store)
    assert shown.size == public and is_red(shown)
    assert photo.lon == pytest.approx(113.9) and photo.lat == pytest.approx(29.725)
    assert store.get(photo.original_key) == data  # the original keeps every pixel
    stored = Image.open(io.BytesIO(data)).size
    # The upload is decoded once, at the largest DCT reduction that still covers the public size.
    scale = max(f for f in (1, 2, 4, 8) if max(stored) / f >= max(public))
    assert decoded[0] == (stored[0] // scale, stored[1] // scale)
