from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
from conftest import photo

from livecam.engine.images import ImageError, decode_image, iter_image_files, load_image


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
        (b"hello, this is text", "not a JPEG, PNG, WebP or BMP image"),
        (bytes(range(256)) * 8, "not a JPEG, PNG, WebP or BMP image"),
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


def _bmp_rle_bomb(w: int, h: int) -> bytes:
    """An RLE8 BMP of a few hundred bytes declaring w x h pixels (1,080 bytes for 15000x15000)."""
    palette, pixels = b"\0\0\0\0" * 256, b"\x00\x01"  # end of bitmap at once
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return header + info + palette + pixels


def _jpeg_declaring(w: int, h: int) -> bytes:
    small = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    i = small.index(b"\xff\xc0")
    return small[: i + 5] + struct.pack(">HH", h, w) + small[i + 9 :]


def _webp_declaring(w: int, h: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: _bmp_rle_bomb(15000, 15000), "declares 15000x15000"),
        (lambda: _bmp_rle_bomb(15000, -15000), "declares 15000x15000"),  # top-down rows
        (lambda: _jpeg_declaring(65000, 65000), "declares 65000x65000"),
        (lambda: _webp_declaring(16000, 16000), "declares 16000x16000"),
        (lambda: b"II*\x00" + b"\x00" * 200, "not a JPEG, PNG, WebP or BMP image"),  # TIFF: never handed to OpenCV
        (lambda: b"\x76\x2f\x31\x01" + b"\x00" * 200, "not a JPEG, PNG, WebP or BMP image"),  # OpenEXR
    ],
    ids=["bmp-rle", "bmp-top-down", "jpeg", "webp", "tiff", "exr"],
)
def test_a_decompression_bomb_in_any_format_is_refused_before_decoding(tmp_path, make, words):
    import resource
    import time

    path = tmp_path / "bomb.jpg"
    path.write_bytes(make())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert words in str(err.value) and str(path) in str(err.value)
    assert time.monotonic() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB: nothing was decoded


def test_opencv_itself_refuses_oversized_images(tmp_path):
    """The second line of defence: importing livecam sets OpenCV's own pixel cap before OpenCV decodes anything."""
    import subprocess
    import sys

    bomb = tmp_path / "bomb.bmp"
    bomb.write_bytes(_bmp_rle_bomb(15000, 15000))
    code = (
        "import livecam, cv2, numpy as np, sys\n"
        "try:\n"
        f"    image = cv2.imdecode(np.fromfile({str(bomb)!r}, np.uint8), cv2.IMREAD_COLOR)\n"
        "except cv2.error:\n"
        "    image = None\n"
        "sys.exit(0 if image is None else 1)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_detection_on_a_huge_blank_photo_is_bounded_and_explicit_flags_mean_no_fallback(tmp_path, monkeypatch):
    """A blank 2000x2000 photo cost 27 s and 4.4 GB (upsample 1, then 2, then the CNN on all of it);
    `--detector hog --upsample 0` still ran the CNN."""
    from livecam.cli import main
    from livecam.engine.faces import CNN_MAX_PIXELS, STILL_DETECT_PIXELS, FaceEngine

    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((2000, 2000, 3), 128, np.uint8))
    seen: list[tuple[str, int, int]] = []
    real = FaceEngine.detect

    def spy(self, rgb, upsample=0, detector=None):
        seen.append((detector or self.detector, upsample, rgb.shape[0] * rgb.shape[1] * 4**upsample))
        return real(self, rgb, upsample, detector)

    monkeypatch.setattr(FaceEngine, "detect", spy)
    assert main(["encode", str(blank)]) == 0
    assert seen and all(px <= (CNN_MAX_PIXELS if d == "cnn" else STILL_DETECT_PIXELS) for d, _, px in seen), seen
    assert [d for d, _, _ in seen].count("cnn") == 1
    seen.clear()
    assert main(["encode", str(blank), "--detector", "hog", "--upsample", "0"]) == 0
    assert seen == [("hog", 0, 2000 * 2000)]
