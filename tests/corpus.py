"""A corpus of bad and odd inputs, generated: the files livecam must survive."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _exif(jpeg: bytes, orientation: int) -> bytes:
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _cmyk_jpeg(bgr: np.ndarray) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).convert("CMYK").save(out, "JPEG", quality=92)
    return out.getvalue()


def make_corpus(folder: Path, face_photo: Path) -> dict[str, bool]:
    """Write the corpus; returns {file name: is a usable image with a face}."""
    folder.mkdir(parents=True, exist_ok=True)
    bgr = cv2.imread(str(face_photo))
    jpeg = cv2.imencode(".jpg", bgr)[1].tobytes()
    png = cv2.imencode(".png", bgr)[1].tobytes()
    out: dict[str, bool] = {}

    def put(name: str, data: bytes, good: bool) -> None:
        (folder / name).write_bytes(data)
        out[name] = good

    put("zero.jpg", b"", False)
    put("truncated.jpg", jpeg[: len(jpeg) // 3], False)
    put("truncated.png", png[: len(png) // 3], False)
    put("random.jpg", os.urandom(5000), False)
    put("text.png", b"this is not an image\n" * 20, False)
    put("one_pixel.png", cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), False)
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
    bomb += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 60001 * 4)) + _png_chunk(b"IEND", b"")
    put("bomb.png", bomb, False)
    put("sixteen_bit.png", cv2.imencode(".png", bgr.astype(np.uint16) * 257)[1].tobytes(), True)
    put("rgba.png", cv2.imencode(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))[1].tobytes(), True)
    put("cmyk.jpg", _cmyk_jpeg(bgr), True)
    put("gray.jpg", cv2.imencode(".jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))[1].tobytes(), True)
    sideways = cv2.imencode(".jpg", cv2.rotate(bgr, cv2.ROTATE_90_COUNTERCLOCKWISE))[1].tobytes()
    put("exif_rotated.jpg", _exif(sideways, 6), True)
    put("name with spaces.jpg", jpeg, True)
    put("ünïcødé 😀.jpg", jpeg, True)
    (folder / "x.jpg").mkdir(exist_ok=True)  # a directory named like an image
    return out
