"""Reading photos safely: EXIF orientation, odd formats, and one-line errors."""

from __future__ import annotations

import os
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


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG/JPEG header without decoding pixels, if recognisable."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height = int.from_bytes(data[i + 5 : i + 7], "big")
                width = int.from_bytes(data[i + 7 : i + 9], "big")
                return width, height
            i += 2 + length
    return None


def read_bytes(path: Path) -> bytes:
    path = Path(path)
    try:
        if path.is_dir():
            raise ImageError(f"{path}: is a directory, not an image")
        size = path.stat().st_size
        if size == 0:
            raise ImageError(f"{path}: empty file")
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{path}: file too large ({size} bytes)")
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None


def decode_image(data: bytes, name: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Decode image bytes to an RGB uint8 array, EXIF orientation applied."""
    declared = _declared_size(data)
    if declared and declared[0] * declared[1] > MAX_PIXELS:
        raise ImageError(f"{name}: image declares {declared[0]}x{declared[1]} pixels, more than {MAX_PIXELS}")
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
