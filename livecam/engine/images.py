"""Reading photos safely: EXIF orientation, odd formats, and one-line errors."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# A photo larger than this is refused before it is decoded: a small file can
# declare a huge image (a decompression bomb) and exhaust memory.
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 100 * 1024 * 1024


class ImageError(ValueError):
    """An input image could not be used; str() is one line naming the problem."""


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30:
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    if int.from_bytes(data[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
    return abs(int.from_bytes(data[18:22], "little", signed=True)), abs(
        int.from_bytes(data[22:26], "little", signed=True)
    )


# The formats livecam reads, by their first bytes, with a reader of the size each declares.
# OpenCV decodes many more (TIFF, EXR, JPEG 2000, PNM, HDR...); each is more code an
# attacker can reach with a file named .jpg, so anything else is refused unread.
_FORMATS = (
    ("JPEG", lambda d: d[:3] == b"\xff\xd8\xff", _jpeg_size),
    (
        "PNG",
        lambda d: d[:8] == b"\x89PNG\r\n\x1a\n",
        lambda d: (int.from_bytes(d[16:20], "big"), int.from_bytes(d[20:24], "big")) if len(d) >= 24 else None,
    ),
    ("WebP", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp_size),
    ("BMP", lambda d: d[:2] == b"BM", _bmp_size),
)


def declared_size(data: bytes, name: str | os.PathLike = "<bytes>") -> tuple[int, int]:
    """(width, height) an image's header declares, read without decoding any pixel.

    Raises ImageError for a format livecam does not read, a header it cannot
    size, and a size over MAX_PIXELS (a small file can declare a huge image: a
    decompression bomb).
    """
    for fmt, matches, size_of in _FORMATS:
        if matches(data):
            size = size_of(data)
            if size is None or size[0] <= 0 or size[1] <= 0:
                raise ImageError(f"{name}: a {fmt} file whose image size cannot be read (corrupt or truncated)")
            if size[0] * size[1] > MAX_PIXELS:
                raise ImageError(f"{name}: image declares {size[0]}x{size[1]} pixels, more than {MAX_PIXELS}")
            return size
    raise ImageError(f"{name}: not a JPEG, PNG, WebP or BMP image")


def read_bytes(path: Path, follow_symlinks: bool = True) -> bytes:
    """A photo's bytes: a regular file (a FIFO or a device is never waited on) of at most MAX_FILE_BYTES."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError(f"{path}: is a symbolic link (not followed here)") from None
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ImageError(
            f"{path}: {'is a directory, not an image' if stat.S_ISDIR(st.st_mode) else 'not a regular file'}"
        )
    with os.fdopen(fd, "rb") as f:
        if st.st_size == 0:
            raise ImageError(f"{path}: empty file")
        if st.st_size > MAX_FILE_BYTES:
            raise ImageError(f"{path}: file too large ({st.st_size} bytes)")
        try:
            return f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None


def decode_image(data: bytes, name: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Decode image bytes to an RGB uint8 array, EXIF orientation applied."""
    declared_size(data, name)
    buffer = np.frombuffer(data, np.uint8)
    # IMREAD_COLOR applies EXIF orientation, drops alpha, expands grayscale and
    # converts 16-bit and CMYK to 8-bit BGR.
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageError(f"{name}: not a readable image (corrupt, truncated or unsupported format)")
    if bgr.shape[0] < 2 or bgr.shape[1] < 2:
        raise ImageError(f"{name}: image too small ({bgr.shape[1]}x{bgr.shape[0]})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as RGB uint8 (H, W, 3); raises ImageError with one line."""
    return decode_image(read_bytes(Path(path)), path)


def iter_image_files(paths: list[Path]) -> list[Path]:
    """Files named on the command line, with directories walked in sorted order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir() and not is_image_path(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    p = Path(root) / f
                    if is_image_path(p) and not f.startswith("."):
                        out.append(p)
        else:
            out.append(path)
    return out
