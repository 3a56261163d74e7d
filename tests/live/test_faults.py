"""Issue 5: sources that fail, stall or raise, and actions that hang."""

from __future__ import annotations

import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_frames

from livecam.cli import main
from livecam.door.actions import Action, ActionRunner
from livecam.door.events import Event
from livecam.live.capture import LatestFrameReader


class FlakyCapture:
    """A camera that cannot exist here: gives `good` frames, then misbehaves as told."""

    def __init__(self, good, mode):
        self.good, self.mode, self.n, self.released = good, mode, 0, False

    def isOpened(self):
        return True

    def read(self):
        self.n += 1
        time.sleep(0.002)
        if self.n <= self.good:
            return True, np.full((48, 64, 3), self.n % 255, np.uint8)
        if self.mode == "empty":
            return True, np.zeros((0, 0, 3), np.uint8)
        if self.mode == "raise":
            raise cv2.error("device gone")
        return False, None

    def release(self):
        self.released = True


@pytest.mark.parametrize("mode", ["end", "empty", "raise"])
def test_reader_survives_a_failing_camera_and_reconnects(mode, monkeypatch):
    import livecam.live.capture as capture

    monkeypatch.setattr(capture, "BACKOFF_START_S", 0.01)
    caps = []

    def opener():
        caps.append(FlakyCapture(5, mode))
        return caps[-1]

    reader = LatestFrameReader(opener, "flaky", first=opener())
    got = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(caps) < 4:
        f = reader.read(timeout=0.05)
        if f is not None:
            got.append(f.index)
    reader.close()
    assert len(caps) >= 4 and all(c.released for c in caps)  # reopened again and again, each one released
    assert reader.reconnects >= 3 and got == sorted(got) and len(got) >= 4


def test_stream_on_a_closed_port_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "known_faces").mkdir()  # an empty gallery (a missing one is refused)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    start = time.monotonic()
    code = main(["run", "--camera", f"http://127.0.0.1:{port}/video.mjpg", "--no-window"])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - start < 15
    assert err.count("\n") == 1 and f"127.0.0.1:{port}" in err


class Hang(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        time.sleep(3)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_hanging_webhook_never_blocks_the_caller():
    server = HTTPServer(("127.0.0.1", 0), Hang)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    runner = ActionRunner({"recognized": Action((), url)}, timeout=0.5, retries=0, capacity=2)
    event = Event("recognized", "t", "cam", 1, "Ada", 0.3, 0.2)
    start = time.monotonic()
    for _ in range(50):
        runner.submit(event)
    spent = time.monotonic() - start
    runner.close(grace=0.1)
    server.shutdown()
    assert spent < 0.5  # 50 submissions against a webhook that takes 3 s each
    assert runner.dropped >= 47  # the queue holds 2, one is in flight: the rest are dropped and counted


def test_a_refusing_webhook_is_retried_logged_and_the_runner_goes_on(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the block ends
    url = f"http://127.0.0.1:{port}/hook"
    runner = ActionRunner({"recognized": Action((), url)}, timeout=0.5, retries=1, capacity=4)
    start = time.monotonic()
    runner.submit(Event("recognized", "t", "cam", 1, "Ada", 0.3, 0.2))
    runner.submit(Event("recognized", "t", "cam", 2, "Grace", 0.3, 0.2))
    spent = time.monotonic() - start
    with caplog.at_level("WARNING", logger="livecam.door.actions"):
        runner.close(grace=10)
    assert spent < 0.1
    assert runner.done == 2 and runner.dropped == 0  # both tried; a refusal does not stop the runner
    failures = [r.getMessage() for r in caplog.records if "failed after 2 attempts" in r.getMessage()]
    assert len(failures) == 2 and all(f"127.0.0.1:{port}/***" in m for m in failures), caplog.text


@pytest.mark.parametrize(("signame", "expected"), [("SIGINT", 130), ("SIGTERM", 0)])
def test_ctrl_c_and_sigterm_stop_a_live_run_in_order(tmp_path, data, signame, expected):
    import signal
    import subprocess
    import sys

    (tmp_path / "kf").mkdir()  # an empty gallery (a missing one is refused)

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livecam",
            "run",
            "--camera",
            str(data / "videos" / "short_hamilton_clip.mp4"),
            "--realtime",
            "--loop",
            "--no-window",
            "--known-faces",
            str(tmp_path / "kf"),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(6)  # models loaded, the encoder process running, frames flowing
    assert proc.poll() is None
    proc.send_signal(getattr(signal, signame))
    try:
        code = proc.wait(timeout=20)
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert code == expected, err[-2000:]
    assert "Traceback" not in err and "leaked" not in err and "Warning" not in err, err[-2000:]
    # stopped in order: the run's summary is still reported
    assert "stopping" in err and " fps" in err.split("stopping", 1)[1], err[-2000:]


class UnpluggableCamera:
    """A camera that cannot exist here: plays real frames at 30 fps until `unplugged` is set, then fails."""

    def __init__(self, frames, unplugged: threading.Event | None = None):
        self.frames, self.unplugged, self.n = frames, unplugged, 0

    def isOpened(self):
        return True

    def read(self):
        time.sleep(1 / 30)
        if self.unplugged is not None and self.unplugged.is_set():
            return False, None
        self.n += 1
        return True, self.frames[self.n % len(self.frames)].copy()

    def set(self, *args):
        return True

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        pass


class Unplugged(UnpluggableCamera):
    def isOpened(self):
        return False


def test_an_unplugged_camera_shows_reconnecting_and_the_run_goes_on(tmp_path, data, monkeypatch, capsys):
    import livecam.cli.run as cli
    import livecam.live.capture as capture
    import livecam.live.loop as live
    from livecam.live import overlay

    frames = read_frames(data / "videos" / "short_hamilton_clip.mp4", 30)
    unplugged = threading.Event()
    state = {"unplugged_at": None, "opens": 0}

    def fake_open(src, width, height, fps):
        state["opens"] += 1
        if state["opens"] == 1:
            return UnpluggableCamera(frames, unplugged)
        if time.monotonic() - state["unplugged_at"] < 1.5:  # still unplugged
            return Unplugged(frames)
        return UnpluggableCamera(frames)  # plugged back in

    shown = []

    def imshow(name, image):
        shown.append(image.copy())
        if len(shown) == 10 and not unplugged.is_set():
            state["unplugged_at"] = time.monotonic()
            unplugged.set()

    monkeypatch.setattr(capture, "_open_capture", fake_open)
    monkeypatch.setattr(capture, "BACKOFF_START_S", 0.1)
    monkeypatch.setattr(cli, "display_available", lambda: (True, ""))
    monkeypatch.setattr(live.cv2, "imshow", imshow)
    monkeypatch.setattr(live.cv2, "waitKey", lambda ms: -1)
    for name in ("namedWindow", "destroyWindow", "setWindowProperty"):
        monkeypatch.setattr(live.cv2, name, lambda *a: None)

    (tmp_path / "kf").mkdir()  # an empty gallery (a missing one is refused)
    code = main(["run", "--camera", "0", "--frames", "40", "--known-faces", str(tmp_path / "kf")])
    err = capsys.readouterr().err
    assert code == 0
    # while no frame comes, the loop re-shows the last drawn frame with the banner
    last_drawn, banners = None, []
    for i, image in enumerate(shown):
        if last_drawn is not None and np.array_equal(image, overlay.draw_status(last_drawn.copy(), "reconnecting...")):
            banners.append(i)
        else:
            last_drawn = image
    assert banners, "no frame showed the reconnecting banner"
    assert banners[0] >= 10
    assert len(shown) - banners[-1] >= 20  # frames flowed again after it: 40 frames were processed in all
    assert "stream lost; reconnecting" in err and "unavailable; retrying" in err and "reconnected" in err
    assert state["opens"] >= 3


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def test_kill_9_of_the_encoder_during_a_live_run_recognition_comes_back(tmp_path, data):
    """The worker process killed mid-run: an error is logged, a new worker starts, faces are named again."""
    import re
    import shutil
    import signal
    import subprocess
    import sys

    kf = tmp_path / "kf" / "Lin_Manuel_Miranda"
    kf.mkdir(parents=True)
    for p in (data / "identities_extra" / "Lin_Manuel_Miranda").iterdir():
        shutil.copy(p, kf / p.name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecam", "-v", "run", "--camera", str(data / "videos" / "short_hamilton_clip.mp4")]
        + ["--realtime", "--loop", "--no-window", "--known-faces", str(tmp_path / "kf")],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    named = re.compile(r"track \d+: Lin_Manuel_Miranda at")
    try:
        deadline = time.monotonic() + 60
        while not any(named.search(x) for x in lines):  # named once by the first worker
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)[-2000:]
            time.sleep(0.1)
        workers = [p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not any("starting encoder process again" in x for x in lines) or not any(
            named.search(x) for x in lines[next(i for i, x in enumerate(lines) if "starting encoder" in x) :]
        ):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)[-3000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        reader.join(timeout=5)
    err = "".join(lines)
    assert "encoder process died (exit code -9)" in err and "Traceback" not in err, err[-2000:]


# -- issue 18: one run per camera name; kill -9 on either side of an encoder pipe ---------------------------


def _livecam(*argv: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "livecam", *argv]


def _stderr_until_closed(proc, timeout: float) -> str:
    """Everything written to the pipe until every process holding it (the killed parent's children
    included) has exited; AssertionError if one is still alive after `timeout` seconds."""
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), "a child of the killed process is still running"
    return "".join(chunks)


def test_a_second_run_under_a_camera_name_in_use_is_refused_and_a_killed_run_never_blocks(tmp_path, data):
    """Issue 18: vid/door.mp4 and vid2/door.mp4 both became camera `door`, shared one MQTT client id (the
    broker kicked each off ~10 times in 17 s) and one outbox. The second run is now refused with one line,
    exit 2, before any model loads; the lock is the kernel's, so after kill -9 of the first the next run starts."""
    import shutil
    import signal
    import subprocess

    clip = data / "videos" / "short_hamilton_clip.mp4"
    for folder in ("vid", "vid2"):
        (tmp_path / folder).mkdir()
        shutil.copy(clip, tmp_path / folder / "door.mp4")
    (tmp_path / "kf").mkdir()
    first = subprocess.Popen(
        _livecam("run", "--camera", "vid/door.mp4", "--realtime", "--loop", "--no-window", "--known-faces", "kf"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(first.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any("gallery kf" in line for line in lines):  # the models are loading: the lock is held
            assert time.monotonic() < deadline and first.poll() is None, "".join(lines)
            time.sleep(0.05)
        second = subprocess.run(
            _livecam("run", "--camera", "vid2/door.mp4", "--no-window", "--known-faces", "kf"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        assert second.stderr == (
            f"livecam: error: camera name 'door' is in use by another livecam run (pid {first.pid}):"
            " give this one another name with --name or camera.name\n"
        )
        from livecam.state import CameraInUse, lock_camera, state_dir

        with pytest.raises(CameraInUse):  # in this process too: the lock is the kernel's, per open file
            lock_camera("door")
        lock_file = state_dir() / "camera-door.lock"
        assert lock_file.stat().st_mode & 0o777 == 0o600
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=20)
    finally:
        first.kill()
        first.wait()
    third = subprocess.run(
        _livecam("run", "--camera", "vid2/door.mp4", "--no-window", "--known-faces", "kf", "--frames", "5"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert third.returncode == 0, third.stderr
    from livecam.state import lock_camera

    with lock_camera("door"):  # released at the end of that run
        pass


def test_kill_9_of_encode_leaves_its_workers_to_end_quietly(tmp_path, data):
    """Issue 18: `encode` killed with -9 while its pool worked: each worker printed BrokenPipeError
    tracebacks and the resource tracker warned of 6 leaked semaphores. The workers now notice the closed
    pipe and exit without a word; there are no semaphores (plain pipes, not multiprocessing queues)."""
    import signal
    import subprocess

    photos = str(data / "identities")
    proc = subprocess.Popen(
        _livecam("encode", photos, photos, "--workers", "2"),  # 130 photos, streamed to stdout in input order
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith('{"path"')  # the workers are encoding
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        err = _stderr_until_closed(proc, timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert err == "", err[-3000:]


def test_kill_9_of_an_encode_worker_ends_the_run_with_one_line(tmp_path, data):
    """The other side: a worker killed mid-run. multiprocessing.Pool replaced it and waited for ever for the
    batch it had taken; now the run ends with one line and exit 1, its other worker stopped."""
    import signal
    import subprocess

    photos = str(data / "identities")
    proc = subprocess.Popen(
        _livecam("encode", photos, photos, "--workers", "2"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith('{"path"')
        workers = [p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        code = proc.wait(timeout=120)
        proc.stdout.read()
        err = _stderr_until_closed(proc, timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert code == 1 and err == "livecam: error: an encoding worker process died (exit code -9)\n", err[-3000:]


def test_kill_9_of_a_live_run_leaves_its_encoder_process_to_end_quietly(tmp_path, data):
    """The live encoder process, its parent killed while it loaded its models: its "ready" hit a closed pipe
    and printed a BrokenPipeError traceback. It now ends quietly."""
    import signal
    import subprocess

    (tmp_path / "kf").mkdir()
    proc = subprocess.Popen(
        _livecam("run", "--camera", str(data / "videos" / "short_hamilton_clip.mp4"))
        + ["--realtime", "--loop", "--no-window", "--known-faces", "kf"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def loading() -> bool:
        """The encoder process is running livecam's code (dlib imported), not yet ready. Before that it is
        still in multiprocessing's own start-up, which prints a traceback of its own if its parent dies."""
        for pid in _children(proc.pid):
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return "_dlib_pybind11" in Path(f"/proc/{pid}/maps").read_text()
            except OSError:
                pass
        return False

    try:
        deadline = time.monotonic() + 60
        while not loading():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # the encoder process is loading its models
        proc.wait(timeout=20)
        err = _stderr_until_closed(proc, timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert "Traceback" not in err and "Error" not in err and "leaked" not in err, err[-3000:]


def test_a_model_the_encode_pool_cannot_load_is_one_line_exit_2(tmp_path, data, capsys):
    """With the pool, each worker printed the ModelLoadError traceback and multiprocessing.Pool started
    new workers for ever; the parent now says it once, as `encode --workers 1` does."""
    from livecam.engine.faces import MODEL_FILES

    models = tmp_path / "models"
    models.mkdir()
    for name in MODEL_FILES.values():  # models that exist but are junk
        (models / name).write_bytes(b"not a model")
    (tmp_path / "config.yaml").write_text(f"models_dir: {models}\n")
    photos = str(data / "identities")
    assert main(["--config", str(tmp_path / "config.yaml"), "encode", photos, "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("livecam: error: ") and "cannot load" in err and err.count("\n") == 1, err
