"""livecam as a service: the unit file systemd reads (checked, rated, and its sandbox rebuilt around a real door), and
the notify protocol against a socket the test listens on."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sandbox
from broker import Broker, Subscriber

from livecam.cli import main
from livecam.connect.systemd import Notifier

REPO = Path(__file__).resolve().parents[2]
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
    import livecam.live.detection

    listener = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 0.05 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    real_call = livecam.live.detection.Detector.__call__
    calls = {"n": 0}

    def sometimes_stuck(self, gray):
        calls["n"] += 1
        if calls["n"] == 15:
            time.sleep(4.0)
        return real_call(self, gray)

    monkeypatch.setattr(livecam.live.detection.Detector, "__call__", sometimes_stuck)
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


def _readme_door() -> str:
    return (REPO / "README.md").read_text().split("## A door, start to finish")[1].split("\n## ")[0]


def _made_folders(section: str) -> dict[Path, int]:
    """The folders the section's `sudo install -d` lines make, in order, with their modes."""
    import shlex

    made: dict[Path, int] = {}
    for line in section.splitlines():
        if not line.strip().startswith("sudo install -d "):
            continue
        argv = shlex.split(line.split("#")[0])
        mode, rest = 0o755, argv[3:]
        while rest and rest[0].startswith("-"):
            option, value, rest = rest[0], rest[1], rest[2:]
            mode = int(value, 8) if option == "-m" else mode
        made.update({Path(p): mode for p in rest})
    return made


def _door_path(tmp_path: Path, data: Path, drop: tuple[str, ...] = ()):
    """The README's door, here: its config (MQTT and the camera left out, paths moved under tmp_path), the
    service as the unit starts it, and the operator's `sudo -u livecam ...` commands as the README writes them."""
    import os
    import shlex
    import sys

    import yaml

    var, etc, admin = tmp_path / "var-lib-livecam", tmp_path / "etc-livecam", tmp_path / "admin"
    section = _readme_door()
    moved = section.replace("/var/lib/livecam", str(var)).replace("/etc/livecam", str(etc))
    made = _made_folders(moved)  # README steps 1 and 2, as written (owners aside: no users here)
    assert {var, var / "known_faces", etc, var / "front-door"} <= set(made), made
    for folder, mode in made.items():
        folder.mkdir(mode=mode)
    admin.mkdir()
    config = yaml.safe_load(moved.split("```yaml\n")[1].split("```")[0])
    for key in ("mqtt", "camera", *drop):
        config.pop(key, None)
    (etc / "front-door.yaml").write_text(yaml.safe_dump(config))
    for n in (1, 2):  # Ada's photos, in the operator's folder
        shutil.copy(data / "identities" / "Tony_Blair" / f"{n}.jpg", admin / f"ada{n}.jpg")
    # -P: not the working folder first on sys.path (the door's holds a folder named livecam, its state_dir); the
    # unit's /opt/livecam/.venv/bin/livecam, a script, never looks there
    livecam = [sys.executable, "-P", "-m", "livecam"]
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
    cwd = next(x for x in unit.splitlines() if x.startswith("WorkingDirectory=")).removeprefix("WorkingDirectory=")
    clip = data / "videos" / "short_hamilton_clip.mp4"

    def service(sandbox=None, frames: int | None = 30, **env: str) -> str:
        """A short run as the unit starts it: HOME is the livecam user's home (useradd --home /var/lib/livecam).
        `sandbox`: a function that wraps the command line (the unit's sandbox, tests/sandbox.py)."""
        argv = livecam + start[1:] + ["--camera", str(clip)] + (["--frames", str(frames)] if frames else [])
        unit_env = {k: v.replace("/var/lib/livecam", str(var)) for k, v in environment.items()}
        proc = subprocess.run(
            sandbox(argv) if sandbox else argv,
            cwd=cwd.replace("/var/lib/livecam", str(var)),
            env={**base, "HOME": str(var), **unit_env, **env},
            capture_output=True,
            text=True,
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
    assert (var / "front-door" / "livecam" / "cache-key").is_file()  # the key, where the config says
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


# -- least privilege (issue 18) ------------------------------------------------------------------------------


def _unit_values(text: str, key: str) -> list[str]:
    """Every word assigned to `key` in the unit, in order."""
    return [w for k, v in sandbox.unit_lines(text) if k == key for w in v.split()]


def test_systemd_rates_the_units_exposure_ok(tmp_path):
    """systemd's own rating of the unit's sandbox: 7.6 "EXPOSED" before issue 18 (all of /var/lib/livecam writable
    by every door, every capability in the bounding set, no system call filter, any socket family...)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze not found (scripts/setup.sh installs systemd)")
    unit = tmp_path / "livecam@front-door.service"  # rated as an instance, as it runs
    unit.write_text(UNIT.read_text())
    proc = subprocess.run([analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if "Overall exposure level" in x), "")
    rating = re.search(r"livecam@front-door\.service: (\d+\.\d) (\w+)", line)
    assert rating, proc.stdout + proc.stderr
    assert float(rating[1]) <= 3.0 and rating[2] == "OK", line
    # what the README and the unit's header say it is
    assert f'rates it {rating[1]}, "OK"' in _readme_door() and f"({rating[1]} OK;" in UNIT.read_text(), line


def test_the_service_reads_the_gallery_writes_only_its_own_door_and_has_a_group_of_its_own():
    """Before issue 18 every door could write all of /var/lib/livecam (ReadWritePaths=, StateDirectory=livecam) as
    one user and group: a door fed a hostile stream could plant photos in the gallery every door reads, and read
    every door's cache-key. Checked against the README's own config for the front door."""
    import yaml

    text, door, section = UNIT.read_text(), "front-door", _readme_door()
    config = yaml.safe_load(section.split("```yaml\n")[1].split("```")[0])
    own = Path("/var/lib/livecam") / door
    # written: the door's own folder, nothing else (ProtectSystem=strict: the rest is read-only)
    assert _unit_values(text, "ProtectSystem") == ["strict"]
    assert not _unit_values(text, "ReadWritePaths") and not _unit_values(text, "BindPaths")
    assert _unit_values(text, "StateDirectory") == ["livecam/%i"]  # /var/lib/livecam/%i: `own`
    for path in (config["cache_dir"], config["state_dir"], config["door"]["events_log"], config["door"]["unknown_dir"]):
        assert own in Path(path).parents, path
    # seen: over the doors' folders and /etc/livecam a read-only tmpfs, holding only the gallery and this door's files
    assert {"/var/lib/livecam:ro", "/etc/livecam:ro"} <= set(_unit_values(text, "TemporaryFileSystem"))
    bound = {w.lstrip("-").replace("%i", door) for w in _unit_values(text, "BindReadOnlyPaths")}
    mqtt = config["mqtt"]
    read = {config["known_faces"], mqtt["password_file"], mqtt["tls"]["ca"], f"/etc/livecam/{door}.yaml"}
    assert read <= bound and own not in Path(config["known_faces"]).parents, (read, bound)
    assert "--config /etc/livecam/%i.yaml" in text
    # a group per door: the kernel lets a process into another's /proc/PID (memory, root folder, ptrace) only when
    # user and group both match, and ProtectProc=invisible hides it otherwise; the README makes the group
    assert _unit_values(text, "User") == ["livecam"] and _unit_values(text, "Group") == ["livecam-%i"]
    assert _unit_values(text, "ProtectProc") == ["invisible"] and _unit_values(text, "CapabilityBoundingSet") == []
    assert f"sudo groupadd --system livecam-{door}\n" in section
    assert f"sudo install -d -o livecam -g livecam-{door} -m 0700 {own}\n" in section


PROBE = r"""
import errno, json, mmap, os, socket, sys

var, etc = sys.argv[1:3]


def attempt(what):
    try:
        what()
        return "done"
    except OSError as exc:
        return errno.errorcode[exc.errno]


print(json.dumps({
    "plant a photo": attempt(lambda: open(os.path.join(var, "known_faces", "planted.jpg"), "wb").close()),
    "write the door's folder": attempt(lambda: open(os.path.join(var, "front-door", "probe"), "wb").close()),
    "doors": sorted(os.listdir(var)),
    "configs": sorted(os.listdir(etc)),
    "W+X memory": attempt(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)),
    "packet socket": attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)),
    "nice": attempt(lambda: os.nice(1)),
    "/proc/cpuinfo": os.path.exists("/proc/cpuinfo"),
}))
"""


def test_a_door_runs_in_the_units_sandbox(tmp_path, data):
    """The README's door, run inside the unit's sandbox as tests/sandbox.py builds it (its mounts, /proc, NoNewPrivs
    and seccomp filters as systemd 252 makes them; the paths moved under tmp_path): it loads the operator's cache
    (nothing encoded again), reaches the broker by name, and exits cleanly. MemoryDenyWriteExecute=,
    SystemCallFilter=, RestrictAddressFamilies= and ProcSubset=pid break nothing a door does."""
    import yaml

    why = sandbox.available()
    if why:
        pytest.skip(f"the sandbox {why}")
    commands, operator, service, var = _door_path(tmp_path, data)
    etc = tmp_path / "etc-livecam"
    for line in commands:
        operator(line)
    # another door's folder and config, which this one must not see
    (var / "back-door").mkdir(mode=0o700)
    (var / "back-door" / "cache-key").write_bytes(b"k" * 32)
    (etc / "back-door.yaml").write_text("camera:\n  source: rtsp://user:secret@10.0.0.2/stream1\n")
    (tmp_path / "broker").mkdir()
    broker = Broker(tmp_path / "broker").start()
    config = yaml.safe_load((etc / "front-door.yaml").read_text())
    config["mqtt"] = {"host": "localhost", "port": broker.port}  # a name: getaddrinfo without netlink
    (etc / "front-door.yaml").write_text(yaml.safe_dump(config))
    spec = sandbox.spec_from_unit(
        UNIT.read_text(), "front-door", {"/var/lib/livecam": str(var), "/etc/livecam": str(etc)}
    )
    assert spec["allow"] and spec["deny"] and spec["families"] and spec["mdwe"] and spec["subset"] == "pid"

    def wrap(argv: list[str]) -> list[str]:
        return sandbox.command(spec, argv, tmp_path)

    try:
        stderr = service(sandbox=wrap, frames=None)  # the whole clip: faces, and the encoder process
        subscriber = Subscriber(broker.port, topics=["livecam/front-door/#"])
        available = subscriber.last("livecam/front-door/available")
        subscriber.close()
    finally:
        broker.stop()
    assert "1 people, 2 photos" in stderr and "new or changed" not in stderr and "not sealed" not in stderr, stderr
    encodings = re.search(r"; (\d+) encodings;", stderr)
    assert encodings and int(encodings[1]) > 0, stderr
    assert available == b"offline", stderr  # it connected, and said goodbye at its clean exit
    # the sandbox is a real one: what the unit denies is denied in it
    probe = subprocess.run(wrap([sys.executable, "-c", PROBE, str(var), str(etc)]), capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {
        "plant a photo": "EROFS",
        "write the door's folder": "done",
        "doors": ["front-door", "known_faces"],
        "configs": ["front-door.yaml"],
        "W+X memory": "EPERM",
        "packet socket": "EAFNOSUPPORT",
        "nice": "EPERM",
        "/proc/cpuinfo": False,
    }
