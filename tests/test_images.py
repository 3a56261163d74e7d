from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
from conftest import photo

from livecam.images import ImageError, decode_image, iter_image_files, load_image


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert a minimal EXIF APP1 segment carrying only the Orientation tag."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


def test_exif_orientation_is_honoured(data, engine):
    upright = load_image(photo(data, "Tony_Blair", 1))
    h, w = 250, 180  # a non-square crop, so a rotation shows in the shape
    upright = np.ascontiguousarray(upright[:h, 35 : 35 + w])
    # stored sideways, as a phone does, with EXIF saying "rotate 90 degrees clockwise to view"
    stored = cv2.rotate(cv2.cvtColor(upright, cv2.COLOR_RGB2BGR), cv2.ROTATE_90_COUNTERCLOCKWISE)
    ok, jpeg = cv2.imencode(".jpg", stored, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    plain = decode_image(jpeg.tobytes())
    rotated = decode_image(with_exif_orientation(jpeg.tobytes(), 6))
    assert plain.shape[:2] == (w, h)
    assert rotated.shape[:2] == (h, w)
    assert np.abs(rotated.astype(int) - upright.astype(int)).mean() < 6
    assert engine.faces(rotated), "the upright image has a detectable face"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty file"),
        (b"hello, this is text", "not a readable image"),
        (bytes(range(256)) * 8, "not a readable image"),
    ],
)
def test_unreadable_files_are_one_line(tmp_path, content, words):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert words in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_truncated_jpeg_and_directory_named_like_an_image(tmp_path, data):
    raw = photo(data, "Tony_Blair", 1).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(raw[:200])
    with pytest.raises(ImageError):
        load_image(cut)
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    with pytest.raises(ImageError, match="directory"):
        load_image(folder)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    # a real PNG header declaring 100000 x 100000 pixels
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    with pytest.raises(ImageError, match="100000x100000"):
        decode_image(png, "bomb.png")


def test_grayscale_and_rgba_become_rgb(data):
    rgb = load_image(photo(data, "Tony_Blair", 1))
    gray = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))[1].tobytes()
    rgba = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA))[1].tobytes()
    assert decode_image(gray).shape == (250, 250, 3)
    assert decode_image(rgba).shape == (250, 250, 3)


def test_iter_image_files_walks_sorted_and_keeps_explicit_files(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/2.jpg", "a.png", "c.txt", ".hidden.jpg", "b/1.JPG"):
        (tmp_path / name).write_bytes(b"x")
    found = iter_image_files([tmp_path, tmp_path / "c.txt"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.png", "b/1.JPG", "b/2.jpg", "c.txt"]
