"""Frame sources refuse frames no camera livecam supports would give (issue 10); damaged and paced files (issue 18)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from livecam.cli import main


def test_an_oversized_image_or_video_as_camera_is_one_line_exit_2(tmp_path, capsys):
    still = tmp_path / "huge.png"
    cv2.imwrite(str(still), np.zeros((3000, 12000, 3), np.uint8))  # 36 MP: decodable, but no camera
    video = tmp_path / "huge.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (8200, 4400))
    for _ in range(2):
        writer.write(np.zeros((4400, 8200, 3), np.uint8))
    writer.release()
    (tmp_path / "kf").mkdir()  # an empty gallery (a missing one is refused)
    for path, size in ((still, "12000x3000"), (video, "8200x4400")):
        code = main(["run", "--camera", str(path), "--no-window", "--known-faces", str(tmp_path / "kf")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and f"frames are {size}, more than 8K" in err, err


def test_live_detection_looks_at_a_bounded_copy_of_a_big_frame(engine, monkeypatch, data):
    from livecam.engine.faces import FaceEngine
    from livecam.engine.images import load_image
    from livecam.live.detection import MAX_DETECT_PIXELS, Detector

    seen: list[int] = []
    real = FaceEngine.detect

    def spy(self, image, upsample=0, detector=None):
        seen.append(image.shape[0] * image.shape[1])
        return real(self, image, upsample, detector)

    monkeypatch.setattr(FaceEngine, "detect", spy)
    face = cv2.cvtColor(load_image(data / "identities" / "Tony_Blair" / "1.jpg"), cv2.COLOR_RGB2GRAY)
    frame = np.full((2160, 3840), 100, np.uint8)  # a 4K camera
    frame[900:1400, 1700:2200] = cv2.resize(face, (500, 500))
    boxes = Detector(engine, min_face_px=100)(frame)
    assert len(seen) == 1 and seen[0] <= MAX_DETECT_PIXELS
    assert len(boxes) == 1 and 1700 <= boxes[0].center[0] <= 2200  # found, in full-frame coordinates


def damaged_copy(clip, target, at: float = 0.5, length: int = 20_000):
    """A real clip with a stretch of its bytes in the middle overwritten with zeros (a bad sector, a cut
    download patched up): OpenCV fails a few reads there, then decodes frames again."""
    data = bytearray(clip.read_bytes())
    start = int(len(data) * at)
    data[start : start + length] = bytes(length)
    target.write_bytes(bytes(data))
    return target


def decodable_frames(path) -> int:
    """How many frames OpenCV decodes from `path`, going on after failed reads (as far as it can)."""
    cap = cv2.VideoCapture(str(path))
    good = failed = 0
    while failed < 1000:
        ok, image = cap.read()
        if ok and image is not None:
            good, failed = good + 1, 0
        else:
            failed += 1
    cap.release()
    return good


@pytest.mark.parametrize("realtime", [False, True])
def test_a_damaged_stretch_of_a_file_is_skipped_counted_and_said_once(tmp_path, data, realtime):
    """Issue 18: the run ended at the first failed read (136 of 275 frames, exit 0, nothing said) while
    OpenCV decodes 124 more after it. Now the damaged frames are skipped, keep their place in time, are
    counted in the summary and named in one warning; libav's own lines (30 for this stretch) are not shown."""
    clip = data / "videos" / "short_hamilton_clip.mp4"
    damaged = damaged_copy(clip, tmp_path / "door.mp4")
    total = int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT))
    decodable = decodable_frames(damaged)
    assert 200 < decodable < total  # the damage costs frames, and there are frames after it
    (tmp_path / "kf").mkdir()
    log = tmp_path / "log.jsonl"
    argv = ["run", "--camera", str(damaged), "--no-window", "--known-faces", "kf", "--log-json", str(log)]
    proc = subprocess.run(
        [sys.executable, "-m", "livecam", *argv, *(["--realtime"] if realtime else [])],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    frames = [json.loads(line)["frame"] for line in log.read_text().splitlines()]
    lost = total - decodable
    if not realtime:  # every decodable frame once, in order; the lost ones leave a gap in the indices
        assert len(frames) == decodable and frames == sorted(set(frames)) and frames[-1] == total - 1
        gaps = [(a, b) for a, b in zip(frames, frames[1:], strict=False) if b != a + 1]
        assert len(gaps) == 1 and gaps[0][1] - gaps[0][0] - 1 == lost
    else:  # paced: frames flow on past the damage, to the end of the file
        assert frames[-1] >= total - 5 and max(b - a for a, b in zip(frames, frames[1:], strict=False)) > lost
    warnings = [line for line in proc.stderr.splitlines() if "damaged" in line and "skipped" in line]
    assert len(warnings) == 2, proc.stderr  # the warning, and the summary's count
    assert f"{lost} damaged frames skipped" in warnings[1]
    assert "[h264" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_realtime_file_s_clock_starts_at_the_first_read_not_at_open(data):
    """Issue 18: pacing began when the file was opened, before the models loaded (3-4 s on a small
    board): the loop's first frame was the ~100th and the clip's first person was never seen."""
    from livecam.live.capture import open_source

    source = open_source(str(data / "videos" / "short_hamilton_clip.mp4"), realtime=True)
    try:
        time.sleep(1.5)  # the models loading
        first = source.read(timeout=5)
    finally:
        source.close()
    assert first is not None and first.index <= 2 and first.t < 0.1, first and first.index


def test_a_looped_realtime_file_s_time_carries_on_like_its_frame_index(tmp_path, data):
    """With --realtime --loop, `t` went back to 0 at each play while the index carried on: the door's
    cooldowns and waits, which run on source time, then held every event after the first play (a 30-minute
    soak logged 21 events, all in the first 32 s)."""
    from livecam.live.capture import open_source

    clip = tmp_path / "short.mp4"
    photo = cv2.resize(cv2.imread(str(data / "identities" / "Tony_Blair" / "1.jpg")), (160, 160))
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (160, 160))
    for i in range(12):
        out.write(np.roll(photo, i, axis=1))
    out.release()
    source = open_source(str(clip), realtime=True, loop=True)
    frames = []
    try:
        while len(frames) < 30:  # 2.5 plays of 12 frames, about 1 s
            frame = source.read(timeout=5)
            assert frame is not None
            frames.append(frame)
    finally:
        source.close()
    assert max(f.index for f in frames) >= 24  # it played again
    for f in frames:
        assert f.t == pytest.approx(f.index / 30, abs=1e-6), (f.index, f.t)
    assert all(b.t > a.t for a, b in zip(frames, frames[1:], strict=False))


class EndsEarly:
    """A file that declares 100 frames but whose reads fail for good after 40 (its tail unreadable)."""

    def __init__(self):
        self.n = self.failed = 0

    def read(self):
        if self.n >= 40:
            self.failed += 1
            return False, None
        self.n += 1
        return True, np.zeros((8, 8, 3), np.uint8)

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: 100.0, cv2.CAP_PROP_POS_MSEC: (self.n - 1) * 40.0}.get(prop, 0.0)


def test_reads_past_damage_are_bounded_and_an_early_end_is_said(caplog):
    from livecam.live import capture

    cap = EndsEarly()
    frames = capture.FileFrames(cap, "tail.mp4", 25.0)
    with caplog.at_level("WARNING", logger="livecam.live.capture"):
        got = [index for index, _ in iter(frames.read, None)]
    assert got == list(range(40)) and cap.failed == capture.MAX_BAD_READS  # then it stops trying
    said = "tail.mp4: no frame could be decoded after frame 39 of the 100 it declares; it ends there"
    assert caplog.messages == [said]
