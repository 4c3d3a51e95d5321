"""Case photos: decode, read where and when from EXIF, orient, strip metadata, enforce limits.

An inspector's phone photo arrives as bytes. `ingest_photo` refuses what is not an accepted image or
is over a limit (`InvalidPhoto`, field "photos"), reads the GPS position and the time it was taken,
keeps the upload byte-identical as the private original (it still carries EXIF: position, device),
and stores a public copy with the EXIF orientation applied and every piece of metadata removed
(as FixMyStreet does), at most `PhotoLimits.public_max_edge` pixels on its long edge, re-encoded as
JPEG, or PNG when the picture has real transparency. A JPEG is decoded straight at the scale the
public copy needs (libjpeg's DCT scaling by 1/2, 1/4 or 1/8, Pillow's draft mode): a phone photo is
then never decoded at full size, which was most of a photo report's CPU.

Decoding is Pillow's; HEIC/HEIF (iPhones, many Android phones) through pillow-heif. EXIF GPS is
WGS-84 by the EXIF specification, so positions are returned as WGS-84 (lon, lat) degrees.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from io import BytesIO
from typing import Any

import pillow_heif
from PIL import ExifTags, Image, ImageCms, ImageOps

from geo.errors import InvalidPhoto
from geo.storage import BlobStore

pillow_heif.register_heif_opener()

# Pillow format name -> media type of the upload. Only these decoders are ever tried (formats= on
# open), so a hostile file cannot reach Pillow's rarer parsers. MPO is the multi-picture JPEG many
# phones write (a JPEG with a depth map or preview after it).
CONTENT_TYPES: dict[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "HEIF": "image/heic",
}
_OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "HEIF"]  # MPO is opened by the JPEG plugin

# Naive EXIF times are wall-clock times of the phone; gridcase serves Chinese cities, so they are
# read as China Standard Time. A fixed UTC+8 equals Asia/Shanghai for every date since 1991 (no DST)
# and needs no tz database on intranet servers.
ASSUMED_TZ: tzinfo = timezone(timedelta(hours=8), "Asia/Shanghai")

PUBLIC_JPEG_QUALITY = 85
_FIELD = "photos"
# Decoding is where a photo's memory goes (a 40 Mpx PNG is 160 MB of pixels, from a 150 KiB file):
# as many at once as there are cores, the rest wait their turn. CPU-bound work gains nothing from
# more, and the server's peak memory stays bounded however many uploads arrive together.
DECODERS = threading.BoundedSemaphore(max(1, len(os.sched_getaffinity(0))))


def _hand_large_buffers_back() -> None:
    """Ask glibc to mmap every allocation of 8 MiB or more, and to keep few arenas.

    Decoded pixels are freed as soon as the public copy exists, but by default glibc raises its
    mmap threshold after each large free and gives each worker thread an arena of its own: freed
    pixels then stay in the process (32 near-limit uploads left 5.8 GiB resident with only two
    decoding at a time). A fixed threshold returns them to the system on free; Pillow allocates
    pixels in 16 MiB blocks, so they are above it, and most numpy temporaries below it.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    m_mmap_threshold, m_arena_max = -3, -8
    libc.mallopt(m_mmap_threshold, 8 << 20)
    libc.mallopt(m_arena_max, 2)


_hand_large_buffers_back()
_ACCEPTED = "JPEG, PNG, WebP, HEIC"
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class PhotoLimits:
    """What one report may carry: bytes per photo, decoded pixels per photo, photos per submission;
    and the long edge of the public copy in pixels (the private original keeps every pixel)."""

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_photos: int = 6
    # Enough to see a garbage pile or a broken cover on a phone or the big screen; exactly half of
    # a 2000-pixel photo, so its JPEG decodes at 1/2 scale.
    public_max_edge: int = 1000


@dataclass(frozen=True)
class Photo:
    """A stored photo: private original, metadata-free public copy, and what its EXIF said."""

    original_key: str  # sha256 of the bytes as uploaded; private, still carries EXIF
    public_key: str  # sha256 of the public copy: oriented, no metadata at all, re-encoded
    content_type: str  # of the original
    public_content_type: str  # image/jpeg, or image/png when the picture has transparency
    width: int  # after orientation
    height: int
    lon: float | None  # WGS-84 degrees, from EXIF GPS
    lat: float | None
    taken_at: datetime | None  # always timezone-aware when known


def check_count(n: int, limits: PhotoLimits = PhotoLimits()) -> None:
    """Refuse a submission carrying more photos than allowed."""
    if n > limits.max_photos:
        raise InvalidPhoto(f"{n} photos sent; at most {limits.max_photos} per submission", field=_FIELD)


def ingest_photo(data: bytes, store: BlobStore, limits: PhotoLimits = PhotoLimits()) -> Photo:
    """Check, read and store one uploaded photo: the original privately, a stripped public copy."""
    if not data:
        raise InvalidPhoto("photo is empty", field=_FIELD)
    if len(data) > limits.max_bytes:
        raise InvalidPhoto(
            f"photo is {len(data):,} bytes, over the limit of {limits.max_bytes:,} bytes", field=_FIELD
        )
    with DECODERS:
        image = _decode(data, limits)
        exif = image.getexif()
        position = read_gps(exif)
        public = _public_pixels(image, limits.public_max_edge)
        public_bytes, public_type = _encode_public(public)
        content_type = CONTENT_TYPES[image.format or ""]
        del image  # the full-size pixels go before the next decode may start
    return Photo(
        original_key=store.put(data),
        public_key=store.put(public_bytes),
        content_type=content_type,
        public_content_type=public_type,
        width=public.width,
        height=public.height,
        lon=position[0] if position else None,
        lat=position[1] if position else None,
        taken_at=read_taken_at(exif),
    )


def photo_position(data: bytes, limits: PhotoLimits = PhotoLimits()) -> tuple[float, float] | None:
    """Where a photo was taken (WGS-84 lon, lat from its EXIF GPS), read from the header alone:
    no pixel is decoded, nothing is stored (a report page places its pin with it)."""
    if not data:
        raise InvalidPhoto("photo is empty", field=_FIELD)
    if len(data) > limits.max_bytes:
        raise InvalidPhoto(
            f"photo is {len(data):,} bytes, over the limit of {limits.max_bytes:,} bytes", field=_FIELD
        )
    try:
        with Image.open(BytesIO(data), formats=_OPEN_FORMATS) as probe:
            _check_pixels(probe.size, limits)
            return read_gps(probe.getexif())
    except InvalidPhoto:
        raise
    except Image.DecompressionBombError:
        raise InvalidPhoto(f"photo is over the limit of {limits.max_pixels:,} pixels", field=_FIELD) from None
    except Image.UnidentifiedImageError:
        raise InvalidPhoto(f"not an image of an accepted type ({_ACCEPTED})", field=_FIELD) from None
    except Exception as exc:  # a broken header
        raise InvalidPhoto(f"image cannot be read ({exc}); {_ACCEPTED} accepted", field=_FIELD) from None


def _decode(data: bytes, limits: PhotoLimits) -> Image.Image:
    """Open, verify and fully decode an accepted image, refusing bombs before any pixel is allocated."""
    formats = _OPEN_FORMATS
    try:
        with Image.open(BytesIO(data), formats=formats) as probe:
            _check_pixels(probe.size, limits)  # the header's size: nothing decoded yet
            probe.verify()
        # verify() leaves the image unusable; reopen to decode.
        image = Image.open(BytesIO(data), formats=formats)
        _check_pixels(image.size, limits)
        _draft(image, limits.public_max_edge)
        image.load()
    except InvalidPhoto:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (2 x Image.MAX_IMAGE_PIXELS) fires inside open(), also before decoding.
        message = f"photo is over the limit of {limits.max_pixels:,} pixels ({exc})"
        raise InvalidPhoto(message, field=_FIELD) from None
    except MemoryError:
        raise
    except Image.UnidentifiedImageError:
        raise InvalidPhoto(f"not an image of an accepted type ({_ACCEPTED})", field=_FIELD) from None
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError...; all mean a broken file
        raise InvalidPhoto(f"image cannot be decoded ({exc}); {_ACCEPTED} accepted", field=_FIELD) from None
    return image


def _draft(image: Image.Image, max_edge: int) -> None:
    """Have a JPEG decode at the smallest DCT scale (1/2, 1/4, 1/8) still at least the public size.

    The requested size keeps the aspect ratio: libjpeg picks the largest reduction that stays at or
    above it in both directions (a square box would never allow one for a landscape photo). Other
    formats decode at full size; the public copy is reduced after orientation either way.
    """
    if image.format not in ("JPEG", "MPO"):
        return
    width, height = image.size
    scale = max_edge / max(width, height)
    if scale < 1:
        image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))


def _check_pixels(size: tuple[int, int], limits: PhotoLimits) -> None:
    """Refuse an image whose declared size is over the pixel limit."""
    width, height = size
    if width * height > limits.max_pixels:
        raise InvalidPhoto(
            f"photo is {width}x{height} = {width * height:,} pixels, over the limit of {limits.max_pixels:,}",
            field=_FIELD,
        )


def read_gps(exif: Image.Exif) -> tuple[float, float] | None:
    """Return the EXIF GPS position as WGS-84 (lon, lat) degrees, or None when absent or nonsense."""
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if not gps or _ascii(gps.get(ExifTags.GPS.GPSStatus)) == "V":  # V: fix void (measurement interrupted)
        return None
    lat = _dms(gps.get(ExifTags.GPS.GPSLatitude))
    lon = _dms(gps.get(ExifTags.GPS.GPSLongitude))
    lat_ref = _ascii(gps.get(ExifTags.GPS.GPSLatitudeRef))
    lon_ref = _ascii(gps.get(ExifTags.GPS.GPSLongitudeRef))
    # A missing ref is refused, not guessed: a west longitude read as east lands on the wrong continent,
    # and asking the reporter for a location is better than routing to the wrong place.
    if lat is None or lon is None or lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        return None
    if lat > 90 or lon > 180 or (lat == 0 and lon == 0):  # 0,0: phones without a fix write it
        return None
    return (-lon if lon_ref == "W" else lon, -lat if lat_ref == "S" else lat)


def read_taken_at(exif: Image.Exif) -> datetime | None:
    """Return when the photo was taken, timezone-aware, from EXIF; None when it does not say."""
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    local = _exif_datetime(exif_ifd.get(ExifTags.Base.DateTimeOriginal))
    if local is not None:
        subsec = _ascii(exif_ifd.get(ExifTags.Base.SubsecTimeOriginal))
        if subsec.isdigit():
            local = local.replace(microsecond=int(subsec[:6].ljust(6, "0")))
        offset = _utc_offset(exif_ifd.get(ExifTags.Base.OffsetTimeOriginal))
        if offset is not None:
            return local.replace(tzinfo=offset)
    # No offset: the GPS date and time stamps are UTC by the EXIF specification.
    gps_time = _gps_datetime(exif.get_ifd(ExifTags.IFD.GPSInfo))
    if gps_time is not None:
        return gps_time
    if local is not None:
        return local.replace(tzinfo=ASSUMED_TZ)
    return None


def _ascii(value: Any) -> str:
    """Return an EXIF ASCII value as a clean str (phones write str or bytes, often NUL-padded)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="ignore")
    return value.strip("\x00 ").upper() if isinstance(value, str) else ""


def _dms(value: Any) -> float | None:
    """Return degrees from EXIF (degrees, minutes, seconds) rationals, or None when nonsense."""
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if value is None or not 1 <= len(parts) <= 3:
        return None
    try:
        numbers = [float(p) for p in parts]  # a zero denominator reads as nan
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if any(not math.isfinite(n) or n < 0 for n in numbers) or any(n >= 60 for n in numbers[1:]):
        return None
    return sum(n / 60**i for i, n in enumerate(numbers))


_EXIF_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


def _exif_datetime(value: Any) -> datetime | None:
    """Return a naive datetime from an EXIF 'YYYY:MM:DD HH:MM:SS', or None (blank or invalid)."""
    match = _EXIF_DATETIME.fullmatch(_ascii(value))
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:  # 0000:00:00 00:00:00 and other impossible dates
        return None


def _utc_offset(value: Any) -> timezone | None:
    """Return the timezone of an EXIF offset such as '+08:00', or None."""
    match = _EXIF_OFFSET.fullmatch(_ascii(value))
    if not match or int(match[2]) > 14 or int(match[3]) >= 60:
        return None
    delta = timedelta(hours=int(match[2]), minutes=int(match[3]))
    return timezone(-delta if match[1] == "-" else delta)


def _gps_datetime(gps: dict[int, Any]) -> datetime | None:
    """Return the UTC instant of the GPS date and time stamps, or None."""
    date = re.fullmatch(r"(\d{4}):(\d{2}):(\d{2})", _ascii(gps.get(ExifTags.GPS.GPSDateStamp)))
    stamp = gps.get(ExifTags.GPS.GPSTimeStamp)
    if not date or not isinstance(stamp, (tuple, list)) or len(stamp) != 3:
        return None
    try:
        hours, minutes, seconds = (float(p) for p in stamp)
        day = datetime(int(date[1]), int(date[2]), int(date[3]), tzinfo=UTC)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 61):  # nan fails too
        return None
    return day + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _public_pixels(image: Image.Image, max_edge: int) -> Image.Image:
    """Return the pixels as shown (EXIF orientation applied) in sRGB, at most `max_edge` pixels on the
    long edge, in a fresh image with no metadata."""
    icc = image.info.get("icc_profile")
    alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    image = ImageOps.exif_transpose(image)
    if image.mode == "L" and not alpha:
        target = "L"  # a grey picture stays grey; a grey ICC profile is simply dropped
    else:
        target = "RGBA" if alpha else "RGB"
        if image.mode not in ("RGB", "RGBA", "CMYK"):
            image = image.convert(target)
        image = _to_srgb(image, icc, target)
        if target == "RGBA" and image.getchannel("A").getextrema()[0] == 255:
            image = image.convert("RGB")  # alpha present but fully opaque: JPEG serves it smaller
    if max(image.size) > max_edge:
        image = image.copy()  # thumbnail works in place: never on the decoded upload itself
        image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    # Copy raw pixels into a new image: nothing from `info` (EXIF, XMP, ICC, PNG text) can follow.
    return Image.frombytes(image.mode, image.size, image.tobytes())


def _to_srgb(image: Image.Image, icc: bytes | None, mode: str) -> Image.Image:
    """Convert via the embedded ICC profile to sRGB, so dropping the profile shifts no colour."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(BytesIO(icc))
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=mode)
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or mismatched profile: fall back to plain conversion
    return image.convert(mode)


def _encode_public(image: Image.Image) -> tuple[bytes, str]:
    """Encode the public copy: JPEG, or PNG when it has transparency; return bytes and media type."""
    buffer = BytesIO()
    if image.mode == "RGBA":
        image.save(buffer, "PNG", optimize=True)
        return buffer.getvalue(), "image/png"
    image.save(buffer, "JPEG", quality=PUBLIC_JPEG_QUALITY, optimize=True)
    return buffer.getvalue(), "image/jpeg"
