from __future__ import annotations

import json
import re
import shutil
import threading
import time

import cv2
import numpy as np
import pytest

from livecam.cli import main
from livecam.engine.faces import Box
from livecam.identity import UNDECIDED, Identity
from livecam.live import overlay
from livecam.live.capture import FileSource, LatestFrameReader, SourceError, open_source
from livecam.live.detection import Detector
from livecam.live.loop import StageTimes, file_schedule
from livecam.live.naming import Reason
from livecam.live.recognizer import TrackedFace


@pytest.fixture
def lin_gallery(tmp_path, data):
    root = tmp_path / "known_faces"
    (root / "Lin_Manuel_Miranda").mkdir(parents=True)
    for p in (data / "identities_extra" / "Lin_Manuel_Miranda").iterdir():
        shutil.copy(p, root / "Lin_Manuel_Miranda" / p.name)
    for n in (1, 2, 3):  # someone else too, so a name has to be earned against a rival
        (root / "Tony_Blair").mkdir(exist_ok=True)
        shutil.copy(data / "identities" / "Tony_Blair" / f"{n}.jpg", root / "Tony_Blair" / f"{n}.jpg")
    return root


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_on_a_file_logs_every_frame_once_and_names_the_enrolled_person(tmp_path, data, lin_gallery, capsys):
    clip = data / "videos" / "short_hamilton_clip.mp4"
    log = tmp_path / "log.jsonl"
    code = main(
        [
            "run",
            "--camera",
            str(clip),
            "--known-faces",
            str(lin_gallery),
            "--no-window",
            "--log-json",
            str(log),
        ]
    )
    assert code == 0
    records = read_log(log)
    total = int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert [r["frame"] for r in records] == list(range(total))
    assert all(set(r) == {"frame", "t", "faces"} for r in records)
    assert records[30]["t"] == pytest.approx(30 / 29.97, abs=0.01)
    names = {f["name"] for r in records for f in r["faces"]}
    assert "Lin_Manuel_Miranda" in names
    assert names <= {"Lin_Manuel_Miranda", "unknown", None}
    for r in records:
        for f in r["faces"]:
            assert len(f["box"]) == 4 and isinstance(f["track"], int)
            assert (f["distance"] is None) == (f["name"] is None)
    assert "frames in" in capsys.readouterr().err
    # a scene cut at frame 211 puts Barack Obama where Lin was: his name must go with the cut
    assert not [r["frame"] for r in records[211:] if any(f["name"] == "Lin_Manuel_Miranda" for f in r["faces"])]
    # one visit, one correct line: Lin, seen badly at first, is not also reported as a stranger
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["kind"], e["name"]) for e in events] == [("recognized", "Lin_Manuel_Miranda")]


def test_a_stranger_is_never_named(tmp_path, make_gallery, big_data):
    gallery = make_gallery({"Tony_Blair": [1, 2, 3], "Colin_Powell": [1, 2, 3], "Laura_Bush": [1, 2, 3]})
    log = tmp_path / "log.jsonl"
    clip = big_data / "videos" / "hdtf_WDA_KatieHill_000.mp4"
    assert (
        main(
            [
                "run",
                "--camera",
                str(clip),
                "--known-faces",
                str(gallery),
                "--no-window",
                "--log-json",
                str(log),
            ]
        )
        == 0
    )
    records = read_log(log)
    names = [f["name"] for r in records for f in r["faces"]]
    assert names.count("unknown") > 100  # seen and decided in most frames
    assert set(names) <= {"unknown", None}


def test_file_schedule_is_every_frame_in_order_with_detection_every_n(engine, big_data):
    source = FileSource(str(big_data / "videos" / "hdtf_RD_Radio2_000.mp4"))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        items = list(file_schedule(source, Detector(engine, 100), 4, pool, StageTimes()))
    source.close()
    assert [f.index for f, _, _, _ in items] == list(range(200))
    assert [f.index for f, _, d, _ in items if d is not None] == list(range(0, 200, 4))
    assert all(len(d) == 1 for _, _, d, _ in items if d is not None)
    assert all(found_on == f.index for f, _, _, found_on in items)  # files: found on the frame itself


class FakeCapture:
    """A camera that cannot exist here: numbered frames, fails after `fail_after` reads."""

    def __init__(self, fail_after=None, delay=0.0):
        self.n = 0
        self.fail_after = fail_after
        self.delay = delay
        self.released = False

    def isOpened(self):
        return True

    def read(self):
        time.sleep(self.delay)
        if self.fail_after is not None and self.n >= self.fail_after:
            return False, None
        self.n += 1
        return True, np.full((48, 64, 3), self.n % 256, np.uint8)

    def release(self):
        self.released = True


def test_latest_frame_reader_keeps_only_the_newest_frame():
    cap = FakeCapture(delay=0.002)
    reader = LatestFrameReader(lambda: cap, "fake", first=cap)
    first = reader.read(timeout=2)
    time.sleep(0.1)  # the consumer is slow: frames pile up at the source
    second = reader.read(timeout=2)
    reader.close()
    assert second.index > first.index + 5  # skipped straight to the newest
    assert reader.dropped > 0
    assert cap.released


def test_live_source_that_drops_reconnects_with_backoff(monkeypatch):
    import livecam.live.capture as capture

    monkeypatch.setattr(capture, "BACKOFF_START_S", 0.01)
    opened = []
    attempts = {"n": 0}

    def opener():
        attempts["n"] += 1
        if attempts["n"] < 3:  # the camera is unplugged for two attempts
            return None
        cap = FakeCapture()
        opened.append(cap)
        return cap

    first = FakeCapture(fail_after=5)
    reader = LatestFrameReader(opener, "fake", first=first)
    seen_reconnecting = False
    frames = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(frames) < 20:
        f = reader.read(timeout=0.05)
        seen_reconnecting |= reader.status == "reconnecting"
        if f is not None:
            frames.append(f.index)
    reader.close()
    assert first.released and opened and opened[0].released
    assert attempts["n"] >= 3 and reader.reconnects == 1
    assert frames == sorted(frames) and len(frames) >= 20  # frames flow again after the outage
    assert seen_reconnecting or attempts["n"] >= 3


def test_camera_that_cannot_be_opened_exits_2_fast(tmp_path, capsys):
    (tmp_path / "known_faces").mkdir()  # an empty gallery (a missing one is refused)
    start = time.monotonic()
    code = main(["run", "--camera", "7", "--no-window"])
    _, err = capsys.readouterr()
    assert code == 2 and time.monotonic() - start < 10
    assert err.startswith("livecam: error: camera 7") and err.count("\n") == 1


def test_missing_video_file_is_one_line(tmp_path, capsys):
    (tmp_path / "known_faces").mkdir()  # an empty gallery (a missing one is refused)
    assert main(["run", "--camera", "nope.mp4", "--no-window"]) == 2
    assert "nope.mp4" in capsys.readouterr().err
    with pytest.raises(SourceError):
        open_source("nope.mp4")


def test_realtime_file_is_paced_and_ends(big_data):
    source = open_source(str(big_data / "videos" / "hdtf_RD_Radio2_000.mp4"), realtime=True)
    start = time.monotonic()
    n = 0
    while source.read(timeout=2) is not None:
        n += 1
        if n == 25:
            break
    elapsed = time.monotonic() - start
    source.close()
    assert 0.8 < elapsed < 2.0  # 25 frames of a 25 fps file take about a second


def test_a_looped_realtime_file_plays_again_without_counting_reconnections(tmp_path, data, caplog):
    from conftest import read_frames

    clip = tmp_path / "ten.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
    for frame in read_frames(data / "videos" / "short_hamilton_clip.mp4", 10):
        writer.write(cv2.resize(frame, (640, 360)))
    writer.release()
    with caplog.at_level("DEBUG", logger="livecam.live.capture"):
        source = open_source(str(clip), realtime=True, loop=True)
        indices = []
        deadline = time.monotonic() + 5
        while len(indices) < 25 and time.monotonic() < deadline:
            frame = source.read(timeout=1)
            if frame is not None:
                indices.append(frame.index)
        source.close()
    assert len(indices) == 25 and indices == sorted(set(indices)) and indices[-1] >= 24  # past two replays
    assert source.reconnects == 0 and "reconnected" not in caplog.text
    assert caplog.text.count("playing again") >= 2


def test_overlay_draws_unicode_names_and_nothing_while_undecided():
    image = np.full((200, 300, 3), 80, np.uint8)
    faces = [
        TrackedFace(Box(20, 120, 120, 20), 1, Identity.of("张伟"), 0.41),
        TrackedFace(Box(20, 280, 120, 180), 2, UNDECIDED, None),
    ]
    out = overlay.render(image, faces)
    assert np.array_equal(image, np.full((200, 300, 3), 80, np.uint8))  # input untouched
    label = out[120:146, 20:120]
    assert (np.abs(label.astype(int) - overlay.KNOWN_COLOUR).sum(axis=2) < 30).mean() > 0.3
    white = (label > 200).all(axis=2).sum()
    assert white > 30  # the glyphs were drawn (Hershey fonts would draw '?' or nothing)
    assert not (out[120:146, 180:280] > 200).all(axis=2).any()  # undecided: no label


def test_debug_overlay_says_why_a_face_is_not_named():
    image = np.full((200, 300, 3), 80, np.uint8)
    waiting = TrackedFace(Box(20, 120, 100, 20), 3, UNDECIDED, None, None, "Ada", 0.47, Reason.TOO_FAR)
    assert overlay.why_line(waiting) == "too far: Ada 0.47"
    assert overlay.why_line(TrackedFace(Box(20, 120, 100, 20), 1, Identity.of("Ada"), 0.3)) is None
    plain = overlay.render(image, [waiting])
    debug = overlay.render(image, [waiting], debug=True)
    assert not (plain[100:130] > 200).all(axis=2).any()  # undecided: nothing under the box
    assert (debug[100:130, 20:200] > 200).all(axis=2).sum() > 30  # the reason is written there


@pytest.fixture
def virtual_display(monkeypatch):
    """A real X server (Xvfb) for the real OpenCV window: this machine has no screen."""
    import os
    import subprocess

    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (make setup installs it)")
    number = 90 + os.getpid() % 100
    proc = subprocess.Popen(
        [xvfb, f":{number}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not os.path.exists(f"/tmp/.X11-unix/X{number}") and time.monotonic() < deadline:
        time.sleep(0.05)
    monkeypatch.setenv("DISPLAY", f":{number}")
    yield
    proc.terminate()
    proc.wait(timeout=10)


def test_window_shows_the_name(tmp_path, data, lin_gallery, monkeypatch, virtual_display):
    """Opens the real OpenCV window on a virtual screen and reads back the frames it was given."""
    shown, when = [], []
    real_imshow = cv2.imshow

    def imshow(name, image):
        shown.append(image.copy())
        when.append(time.monotonic())
        real_imshow(name, image)

    monkeypatch.setattr(cv2, "imshow", imshow)
    code = main(
        [
            "run",
            "--camera",
            str(data / "videos" / "short_hamilton_clip.mp4"),
            "--known-faces",
            str(lin_gallery),
            "--frames",
            "200",
        ]
    )
    assert code == 0 and len(shown) == 200
    # a file in a window plays at its own speed (29.97 fps: 199 frames in 6.6 s), not flat out
    assert when[-1] - when[0] >= 0.95 * 199 / 29.97
    # the label as the overlay draws it (name, then the distance, which is left out of the template)
    height = int(overlay.LABEL_PX * 1.4)
    expected = np.full((height, 300, 3), overlay.KNOWN_COLOUR, np.uint8)
    overlay.draw_text(expected, "Lin_Manuel_Miranda", 0, 0, background=overlay.KNOWN_COLOUR)
    template = expected[:, : overlay.text_width("Lin_Manuel_Miranda") + 4]
    best = max(cv2.minMaxLoc(cv2.matchTemplate(f, template, cv2.TM_CCOEFF_NORMED))[1] for f in shown[100:200:10])
    assert best > 0.9


def test_bench_prints_cpu_costs_and_the_plan_for_a_quarter_core(data, lin_gallery, capsys):
    code = main(
        [
            "bench",
            str(data / "videos" / "short_hamilton_clip.mp4"),
            "--known-faces",
            str(lin_gallery),
            "--frames",
            "120",
            "--target-fps",
            "30",
            "--cpu-quota",
            "25",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "120 frames in" in out and "fps" in out
    # CPU time per frame, round and encoding, and what `run` would choose on a quarter of one core
    costs = re.search(
        r"CPU measured: ([\d.]+) ms a frame, ([\d.]+) ms a detection round .*, ([\d.]+) ms an encoding", out
    )
    assert costs and all(float(v) > 0 for v in costs.groups()), out
    plan = re.search(r"plan for 0.25 of a core: (\d+) fps, detection every (\d+) frames \(min face (\d+) px\)", out)
    assert plan, out
    assert int(plan.group(2)) >= 4 and int(plan.group(3)) >= 100  # never more often or finer than the config


def test_bench_refuses_a_quota_that_is_not_a_share(data, capsys):
    code = main(["bench", str(data / "videos" / "short_hamilton_clip.mp4"), "--cpu-quota", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--cpu-quota" in err and "Traceback" not in err


def test_stage_times_average():
    t = StageTimes()
    for ms in (10, 20, 30):
        t.add("detect", ms)
    assert t.mean("detect") == 20 and t.counts["detect"] == 3


def test_reader_thread_is_not_leaked(big_data):
    before = threading.active_count()
    source = open_source(str(big_data / "videos" / "hdtf_RD_Radio2_000.mp4"), realtime=True)
    source.read(timeout=2)
    source.close()
    assert threading.active_count() == before


def test_encoder_process_gives_the_same_encodings(data, engine):
    from livecam.engine.batch import EngineSettings
    from livecam.engine.images import load_image
    from livecam.live.encoder import EncoderProcess

    rgb = load_image(data / "identities" / "Tony_Blair" / "1.jpg")
    chips = engine.chips(rgb, engine.detect(rgb, 1))
    worker = EncoderProcess(EngineSettings(flip_average=engine.flip_average))
    try:
        assert worker.submit([7], chips)
        deadline = time.monotonic() + 30
        got = []
        while not got and time.monotonic() < deadline:
            got = worker.results()
            time.sleep(0.05)
    finally:
        worker.close()
    assert got and got[0][0] == [7]
    assert np.allclose(got[0][1], engine.encode_chips(chips), atol=1e-5)


def test_an_encoder_that_cannot_start_is_one_clear_error(tmp_path):
    """The loop starts only once the encoder has loaded its models; if it cannot, livecam says so."""
    from livecam.engine.batch import EngineSettings
    from livecam.engine.faces import MODEL_FILES
    from livecam.live.encoder import EncoderError, EncoderProcess

    for name in MODEL_FILES.values():  # models that exist but are junk
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(EncoderError, match="exited during start-up"):
        EncoderProcess(EngineSettings(models_dir=tmp_path), ready_timeout=60)


def test_realtime_run_names_with_the_encoder_process(tmp_path, data, lin_gallery):
    log = tmp_path / "rt.jsonl"
    code = main(
        [
            "run",
            "--camera",
            str(data / "videos" / "short_hamilton_clip.mp4"),
            "--known-faces",
            str(lin_gallery),
            "--no-window",
            "--realtime",
            "--log-json",
            str(log),
        ]
    )
    assert code == 0
    records = read_log(log)
    frames = [r["frame"] for r in records]
    assert frames == sorted(set(frames)) and frames[-1] >= 250  # paced, newest frames only, to the end
    # the clock starts at the loop's first read, once the models and the encoder process are ready (issue 18:
    # it started at open, and the first 95-122 frames went by while the models loaded)
    assert frames[0] <= 2, frames[:5]
    names = {f["name"] for r in records for f in r["faces"]}
    assert "Lin_Manuel_Miranda" in names and names <= {"Lin_Manuel_Miranda", "unknown", None}


def test_hot_reload_reaches_a_running_loop(tmp_path, data, make_gallery):
    root = make_gallery({"Tony_Blair": [1, 2]})
    log = tmp_path / "reload.jsonl"
    lin = data / "identities_extra" / "Lin_Manuel_Miranda"
    added_at = {}

    def add_lin_later():
        time.sleep(1.5)
        (root / "Lin_Manuel_Miranda").mkdir()
        for p in lin.iterdir():
            shutil.copy(p, root / "Lin_Manuel_Miranda" / p.name)
        added_at["t"] = time.monotonic()

    start = time.monotonic()
    helper = threading.Thread(target=add_lin_later)
    helper.start()
    code = main(
        [
            "run",
            "--camera",
            str(data / "videos" / "short_hamilton_clip.mp4"),
            "--known-faces",
            str(root),
            "--no-window",
            "--realtime",
            "--loop",  # two plays: on a loaded machine the first may end before the reload has named him
            "--frames",
            "540",
            "--log-json",
            str(log),
        ]
    )
    helper.join()
    assert code == 0
    records = read_log(log)
    # frame indices carry on over plays, paced at the file's 29.97 fps: index / fps ~ wall time since start
    named = [r["frame"] / 29.97 for r in records if any(f["name"] == "Lin_Manuel_Miranda" for f in r["faces"])]
    assert named, "the photo added while running was never used"
    assert named[0] >= added_at["t"] - start - 0.5  # not before it was added


def test_peak_rss_is_the_run_s_own_not_its_parent_s():
    import subprocess
    import sys

    ballast = np.ones(300 * 2**20, np.uint8)  # this process now peaks above 300 MB
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource; from livecam.live.loop import peak_rss_mb;"
            "print(peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    own, inherited = map(float, child.stdout.split())
    del ballast
    assert inherited > 300  # ru_maxrss carried the parent's peak over
    assert own < 200  # a Python with numpy and OpenCV imported


def _results_until(worker, predicate, timeout: float = 30.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += worker.results()
        if predicate(got):
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out; got {got}")


def test_a_killed_encoder_process_is_restarted_and_a_dying_one_given_up(data, engine, monkeypatch, caplog):
    """kill -9 of the worker: its requests are reported lost, a new worker encodes again;
    a worker that keeps dying ends the run (EncoderError: exit 1) instead of naming nobody for ever."""
    import os
    import signal

    import livecam.live.encoder as encoder
    from livecam.engine.batch import EngineSettings
    from livecam.engine.images import load_image
    from livecam.live.encoder import EncoderError, EncoderProcess

    monkeypatch.setattr(encoder, "ENCODER_BACKOFF", (0.05,))
    rgb = load_image(data / "identities" / "Tony_Blair" / "1.jpg")
    chips = engine.chips(rgb, engine.detect(rgb, 1))
    worker = EncoderProcess(EngineSettings(flip_average=engine.flip_average))
    try:
        with caplog.at_level("WARNING", logger="livecam.live.encoder"):
            assert worker.submit([7], chips)
            os.kill(worker._worker.process.pid, signal.SIGKILL)
            lost: list[int] = []
            _results_until(worker, lambda _: lost.extend(worker.take_lost()) or lost == [7])
            assert "encoder process died" in caplog.text and "1 encoding requests lost" in caplog.text
            assert not worker.submit([8], chips)  # no worker yet: dropped, not queued for ever
            deadline = time.monotonic() + 60
            while not worker.submit([9], chips):
                assert time.monotonic() < deadline
                worker.results()
                time.sleep(0.05)
            got = _results_until(worker, bool)
            assert got[0][0] == [9] and np.allclose(got[0][1], engine.encode_chips(chips), atol=1e-5)
            assert worker.restarts == 1
            with pytest.raises(EncoderError, match="died 5 times in a row"):
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    worker.results()
                    if worker._worker is not None and worker._worker.process.is_alive():
                        os.kill(worker._worker.process.pid, signal.SIGKILL)
                    time.sleep(0.02)
    finally:
        worker.close()


def test_a_crowd_is_capped_to_the_largest_faces_and_each_gets_its_turn(tmp_path, data, capsys):
    """78 tracks on a crowd frame, and new faces waited ~39 frames for a first encoding: at most
    live.max_faces (10) are tracked, the largest first, and every one of them is decided soon."""
    import cv2

    people = sorted(p for p in (data / "identities").iterdir() if p.is_dir())[:24]
    frame = np.full((720, 1280, 3), 90, np.uint8)
    for i, person in enumerate(people):
        row, col = divmod(i, 6)
        size = 190 if row == 0 else 150  # the first row is nearer the camera
        top, left = (0 if row == 0 else 200 + (row - 1) * 170), 10 + col * 210
        face = cv2.resize(cv2.imread(str(person / "1.jpg")), (size, size))
        frame[top : top + size, left : left + size] = face[: 720 - top]
    clip = tmp_path / "crowd.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1280, 720))
    for _ in range(40):
        writer.write(frame)
    writer.release()
    log = tmp_path / "crowd.jsonl"
    (tmp_path / "kf").mkdir()  # an empty gallery (a missing one is refused)
    code = main(
        ["run", "--camera", str(clip), "--no-window", "--log-json", str(log), "--known-faces", str(tmp_path / "kf")]
    )
    assert code == 0
    records = read_log(log)
    assert max(len(r["faces"]) for r in records) == 10
    first_row = {f["track"] for r in records for f in r["faces"] if f["box"][0] < 100}
    assert len(first_row) >= 5  # the nearest (largest) faces are among those tracked
    decided_by = [r["frame"] for r in records if r["faces"] and all(f["name"] is not None for f in r["faces"])]
    assert decided_by and decided_by[0] <= 16, decided_by[:3]


def test_debug_without_a_window_logs_why_each_face_is_not_named_once_per_track_and_reason(
    tmp_path, data, lin_gallery, capsys
):
    """Issue 18: headless, a face just over the threshold was a plain box and --debug said nothing. Now each
    unnamed face's `d`-key line (overlay.why_line) goes to the log once per track and reason, with the threshold."""
    import re

    clip = data / "videos" / "short_hamilton_clip.mp4"
    argv = ["run", "--camera", str(clip), "--known-faces", str(lin_gallery), "--no-window", "--model", "dlib"]
    assert main([*argv, "--debug"]) == 0
    err = capsys.readouterr().err
    why = re.compile(r"track (\d+) shows no name: ([a-z ]+): (\S+) (\d\.\d\d) \(threshold 0\.45\)$")
    said = [m.groups() for line in err.splitlines() if (m := why.search(line))]
    assert said, err
    # Lin seen just over the threshold, and said so
    assert any(r == "too far" and who == "Lin_Manuel_Miranda" and 0.45 < float(d) < 0.5 for _, r, who, d in said), said
    pairs = [(track, reason) for track, reason, _, _ in said]
    assert len(pairs) == len(set(pairs))  # at most once per track per reason
    assert main(argv) == 0
    assert "shows no name" not in capsys.readouterr().err  # only with --debug
