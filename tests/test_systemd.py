"""livecam as a service: the unit file systemd reads, and the notify protocol against a socket the test listens on."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from livecam.cli import main
from livecam.systemd import Notifier

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "livecam@.service"


class NotifySocket:
    """What systemd listens on: a datagram socket; records (time, message) as they come."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()

    def times(self, assignment: str) -> list[float]:
        return [t for t, m in self.messages if assignment in m.splitlines()]


def test_unit_file_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze not found (scripts/setup.sh installs systemd)")
    # as installed: the unit's /opt/livecam is where the README's set-up put livecam (here: this checkout)
    text = UNIT.read_text().replace("/opt/livecam", str(REPO))
    (tmp_path / "livecam@front-door.service").write_text(text)
    proc = subprocess.run(
        [analyze, "verify", str(tmp_path / "livecam@front-door.service")], capture_output=True, text=True
    )
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    for needed in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "--name %i", "/etc/livecam/%i.yaml"):
        assert needed in text
    # the check is a real one: a typo in the unit fails it
    (tmp_path / "livecam@bad.service").write_text(text.replace("Type=notify", "Type=notfy"))
    bad = subprocess.run([analyze, "verify", str(tmp_path / "livecam@bad.service")], capture_output=True, text=True)
    assert bad.returncode != 0 or "notfy" in bad.stderr


def test_notifier_speaks_the_protocol_and_is_silent_outside_systemd(tmp_path):
    listener = NotifySocket(tmp_path / "notify")
    try:
        n = Notifier({"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "200000"})
        assert n.interval == pytest.approx(0.1)
        n.ready("camera door: 2 people enrolled")
        for _ in range(30):
            n.alive()  # rate-limited to half the watchdog interval
            time.sleep(0.01)
        n.stopping()
        time.sleep(0.3)
    finally:
        listener.close()
    messages = [m for _, m in listener.messages]
    assert messages[0] == "READY=1\nSTATUS=camera door: 2 people enrolled"
    assert 2 <= messages.count("WATCHDOG=1") <= 4 and messages[-1] == "STOPPING=1"
    # another process's watchdog, or no socket: nothing is sent, nothing fails
    assert Notifier({"NOTIFY_SOCKET": "x", "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}).interval is None
    quiet = Notifier({})
    quiet.ready("x")
    quiet.alive()
    assert not quiet.active


def test_a_run_says_ready_then_pings_from_the_frame_loop_and_a_stalled_loop_stops_pinging(
    tmp_path, data, make_gallery, monkeypatch
):
    """A stuck detection round (4 s here) must show as a gap in the pings: they come from the loop,
    not from a timer thread that would keep a dead door 'alive'."""
    import livecam.detection

    listener = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 0.05 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    real_call = livecam.detection.Detector.__call__
    calls = {"n": 0}

    def sometimes_stuck(self, gray):
        calls["n"] += 1
        if calls["n"] == 15:
            time.sleep(4.0)
        return real_call(self, gray)

    monkeypatch.setattr(livecam.detection.Detector, "__call__", sometimes_stuck)
    root = make_gallery({"Tony_Blair": [1, 2]})
    clip = data / "videos" / "short_hamilton_clip.mp4"
    code = main(["run", "--camera", str(clip), "--no-window", "--known-faces", str(root)])
    time.sleep(0.3)
    listener.close()
    assert code == 0
    ready, pings, stopping = listener.times("READY=1"), listener.times("WATCHDOG=1"), listener.times("STOPPING=1")
    assert len(ready) == 1 and len(stopping) == 1
    assert pings and ready[0] <= pings[0] and pings[-1] <= stopping[0]
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert max(gaps) >= 3.5  # the stall: no ping while the loop waited
    assert len(gaps) >= 5 and sorted(gaps)[len(gaps) // 2] < 0.2  # otherwise every ~0.05 s
