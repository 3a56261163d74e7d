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


# -- one cache per door: the operator's commands and the service share its key (issue 17) ----------------------


def _door_path(tmp_path: Path, data: Path, drop: tuple[str, ...] = ()):
    """The README's door, here: its config (MQTT and the camera left out, paths moved under tmp_path), the
    service as the unit starts it, and the operator's `sudo -u livecam ...` commands as the README writes them."""
    import os
    import shlex
    import sys

    import yaml

    var, etc, admin = tmp_path / "var-lib-livecam", tmp_path / "etc-livecam", tmp_path / "admin"
    for folder in (var, var / "front-door", etc, admin):  # README step 1, and the unit's StateDirectory=
        folder.mkdir(mode=0o700)
    section = (REPO / "README.md").read_text().split("## A door, start to finish")[1].split("\n## ")[0]
    moved = section.replace("/var/lib/livecam", str(var)).replace("/etc/livecam", str(etc))
    config = yaml.safe_load(moved.split("```yaml\n")[1].split("```")[0])
    for key in ("mqtt", "camera", *drop):
        config.pop(key, None)
    (etc / "front-door.yaml").write_text(yaml.safe_dump(config))
    for n in (1, 2):  # Ada's photos, in the operator's folder
        shutil.copy(data / "identities" / "Tony_Blair" / f"{n}.jpg", admin / f"ada{n}.jpg")
    livecam = [sys.executable, "-m", "livecam"]
    base = {k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"}

    def operator(line: str, **env: str) -> subprocess.CompletedProcess:
        argv = shlex.split(line.replace("/etc/livecam", str(etc)))
        assert argv[:3] == ["sudo", "-u", "livecam"] and argv[3].endswith("/bin/livecam"), line
        argv = livecam + [str(p) for a in argv[4:] for p in (sorted(admin.glob(a)) if "*" in a else [a])]
        # sudo may keep the admin's HOME, or not: the commands must not depend on it
        proc = subprocess.run(argv, cwd=admin, env={**base, "HOME": str(admin), **env}, capture_output=True, text=True)
        assert proc.returncode == 0, (line, proc.stderr)
        return proc

    unit = UNIT.read_text().replace("%i", "front-door").replace("/etc/livecam", str(etc))
    start = shlex.split(next(x for x in unit.splitlines() if x.startswith("ExecStart=")).removeprefix("ExecStart="))
    environment = dict(
        x.removeprefix("Environment=").split("=", 1) for x in unit.splitlines() if x.startswith("Environment=")
    )
    clip = data / "videos" / "short_hamilton_clip.mp4"

    def service(**env: str) -> str:
        """A short run as the unit starts it: HOME is the livecam user's home (useradd --home /var/lib/livecam)."""
        argv = livecam + start[1:] + ["--camera", str(clip), "--frames", "30"]
        unit_env = {k: v.replace("/var/lib/livecam", str(var)) for k, v in environment.items()}
        proc = subprocess.run(
            argv, cwd=var, env={**base, "HOME": str(var), **unit_env, **env}, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    commands = [x.strip() for x in section.splitlines() if x.strip().startswith("sudo -u livecam ")]
    return commands, operator, service, var


def test_the_readmes_door_commands_share_the_services_key_and_cache(tmp_path, data):
    """The README enrolled with `sudo -u livecam livecam --config ...` (state in ~livecam/.local/state) while the
    unit set XDG_STATE_HOME=/var/lib/livecam/%i: each enrollment sealed the cache with another key, and the
    service re-encoded its whole gallery. With state_dir in the config they share, nothing is encoded twice."""
    commands, operator, service, var = _door_path(tmp_path, data)
    enroll = next(c for c in commands if " enroll " in c)
    assert [c for c in commands if " gallery list" in c]
    for line in commands:  # README step 2: enroll Ada, list the gallery
        proc = operator(line)
        assert "not sealed" not in proc.stderr, proc.stderr
    first = service()  # step 3: the service starts
    assert "new or changed" not in first and "not sealed" not in first and "1 people, 2 photos" in first, first
    colin = [data / "identities" / "Colin_Powell" / f"{n}.jpg" for n in (1, 2)]
    proc = operator(enroll.replace('"Ada_Lovelace" ada*.jpg', "Colin_Powell " + " ".join(map(str, colin))))
    assert "encoding 2 new or changed" in proc.stderr and "not sealed" not in proc.stderr, proc.stderr
    again = service()
    assert "new or changed" not in again and "not sealed" not in again and "2 people, 4 photos" in again, again
    assert [p.name for p in (var / "front-door" / "livecam").iterdir()] == ["cache-key"]
    assert not (var / ".local").exists() and not (tmp_path / "admin" / ".local").exists()  # no other state


def test_without_state_dir_each_rebuild_for_a_foreign_key_is_announced_once_naming_the_cache(tmp_path, data):
    """The door as it was (no state_dir, the unit's XDG_STATE_HOME): the operator's first command rebuilt the
    service's cache without a word, the service's rebuild said only "not sealed by this livecam"."""
    commands, operator, service, var = _door_path(tmp_path, data, drop=("state_dir",))
    enroll = next(c for c in commands if " enroll " in c)
    old_unit = {"XDG_STATE_HOME": str(var / "front-door")}
    operator(enroll)
    service(**old_unit)  # the service's own key: Ada's photos encoded again
    colin = [data / "identities" / "Colin_Powell" / f"{n}.jpg" for n in (1, 2)]
    proc = operator(enroll.replace('"Ada_Lovelace" ada*.jpg', "Colin_Powell " + " ".join(map(str, colin))))
    caches = list((var / "front-door" / "cache").glob(".livecam-cache-*.npz"))
    assert len(caches) == 1
    for stderr, encoded in (
        (proc.stderr, "encoding 2 new or changed"),
        (service(**old_unit), "encoding 4 new or changed"),
    ):
        lines = [x for x in stderr.splitlines() if "not sealed" in x]
        assert len(lines) == 1 and f"{caches[0]}: gallery cache not sealed" in lines[0], stderr
        assert encoded in stderr, stderr
