"""MQTT against a real broker (mosquitto on a free port): the topics Home Assistant reads, delivery in order
through outages, the last will, credentials and TLS."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from broker import Broker, Subscriber, free_port, publish_elsewhere

from livecam.connect.mqtt import MqttPublisher
from livecam.connect.outbox import Outbox
from livecam.connect.topics import MqttSettings, event_payload, person_slug
from livecam.door.events import Event

LIVECAM = [sys.executable, "-m", "livecam"]


def settings(port: int, camera: str = "door", **kw) -> MqttSettings:
    return MqttSettings(
        host="127.0.0.1",
        port=port,
        camera=camera,
        topic_prefix="livecam",
        discovery_prefix="homeassistant",
        client_id=f"livecam-{camera}",
        **kw,
    )


def event(
    n: int, kind: str = "recognized", name: str | None = "Ada", face: bool = False, snapshot: Path | None = None
) -> Event:
    crop = np.full((40, 30, 3), 90, np.uint8) if face else None
    return Event(kind, f"2026-11-28T10:00:{n:02d}", "cam", n, name if kind == "recognized" else None, 0.3, 0.1,
                 frame=n, camera="door", face=crop, snapshot=None if snapshot is None else str(snapshot))  # fmt: skip


def tracks(sub: Subscriber, topic: str = "livecam/door/event") -> list[int]:
    return [json.loads(m.payload)["track"] for m in sub.on(topic)]


def publisher(tmp_path: Path, port: int, people=("Ada",), **kw) -> MqttPublisher:
    return MqttPublisher(settings(port, **kw), Outbox(tmp_path / "outbox.sqlite", 1000), people)


# -- the contract Home Assistant reads ---------------------------------------------------------------


def test_discovery_availability_person_and_snapshot_as_home_assistant_reads_them(tmp_path, broker):
    sub = Subscriber(broker.port)
    pub = publisher(tmp_path, broker.port, people=("Ada", "José Martí"), snapshots=True)
    pub.enrolled(["Ada", "José Martí"])
    assert sub.wait_for(lambda: sub.last("livecam/door/available") == b"online")
    pub.handle(event(1, face=True))
    pub.presence(frozenset({"Ada"}))
    assert sub.wait_for(lambda: tracks(sub) == [1] and sub.last("livecam/door/present/Ada") == b"ON")
    pub.presence(frozenset())
    assert sub.wait_for(lambda: sub.last("livecam/door/present/Ada") == b"OFF")
    pub.close()
    sub.close()

    # a newcomer (Home Assistant starting later) sees the retained state
    late = Subscriber(broker.port, client_id="late")
    retained = {m.topic: m.payload for m in late.messages if m.retain}
    assert retained["livecam/door/available"] == b"offline"  # a clean exit says so
    assert retained["livecam/door/person"] == b"Ada"
    attrs = json.loads(retained["livecam/door/person/attributes"])
    assert attrs["distance"] == 0.3 and attrs["time"] == "2026-11-28T10:00:01" and attrs["camera"] == "door"
    assert retained["livecam/door/snapshot"][:2] == b"\xff\xd8"  # a JPEG
    assert "livecam/door/event" not in retained  # events are not retained: an old one must not replay
    configs = {t: json.loads(p) for t, p in retained.items() if t.startswith("homeassistant/") and p}
    jose = person_slug("José Martí")
    assert set(configs) == {
        "homeassistant/sensor/livecam_door/person/config",
        "homeassistant/event/livecam_door/door/config",
        "homeassistant/image/livecam_door/snapshot/config",
        "homeassistant/binary_sensor/livecam_door/Ada/config",
        f"homeassistant/binary_sensor/livecam_door/{jose}/config",
    }
    ids = [c["unique_id"] for c in configs.values()]
    assert len(set(ids)) == len(ids)
    for c in configs.values():
        assert c["availability_topic"] == "livecam/door/available"
        assert c["device"]["identifiers"] == ["livecam_door"]
    assert configs["homeassistant/event/livecam_door/door/config"]["event_types"] == ["recognized", "unknown"]
    assert configs["homeassistant/sensor/livecam_door/person/config"]["state_topic"] == "livecam/door/person"
    jose_cfg = configs[f"homeassistant/binary_sensor/livecam_door/{jose}/config"]
    assert jose_cfg["name"] == "José Martí" and retained[jose_cfg["state_topic"]] == b"OFF"
    assert all(c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" for c in jose)
    late.close()


def test_event_payload_carries_event_type_and_camera_and_person_resets_to_none(tmp_path, broker):
    sub = Subscriber(broker.port)
    pub = publisher(tmp_path, broker.port, person_reset_seconds=1.0)
    pub.handle(event(1))
    assert sub.wait_for(lambda: sub.last("livecam/door/person") == b"Ada")
    got = json.loads(sub.on("livecam/door/event")[0].payload)
    assert got["event_type"] == "recognized" and got["camera"] == "door" and got["name"] == "Ada"
    assert sub.wait_for(lambda: sub.last("livecam/door/person") == b"none", timeout=5)
    pub.close()
    sub.close()


def test_home_assistant_restart_gets_the_configs_again_and_removed_people_disappear(tmp_path, broker):
    pub = publisher(tmp_path, broker.port, people=("Ada", "Bob"))
    pub.enrolled(["Ada", "Bob"])
    sub = Subscriber(broker.port, topics=["homeassistant/#"])
    bob = "homeassistant/binary_sensor/livecam_door/Bob/config"
    assert sub.wait_for(lambda: sub.last(bob))
    before = len(sub.on(bob))
    sub.client.publish("homeassistant/status", "online")  # what Home Assistant says when it starts
    assert sub.wait_for(lambda: len(sub.on(bob)) > before)
    pub.enrolled(["Ada"])  # Bob removed from the gallery (hot reload)
    assert sub.wait_for(lambda: sub.last(bob) == b"")
    pub.close()

    # a person removed while livecam was not running: the next run empties the config it finds
    pub = publisher(tmp_path, broker.port, people=("Ada", "Bob"))
    pub.enrolled(["Ada", "Bob"])
    pub.close()
    pub = publisher(tmp_path, broker.port, people=("Ada",))
    pub.enrolled(["Ada"])
    assert sub.wait_for(lambda: sub.last(bob) == b"")
    pub.close()
    late = Subscriber(broker.port, client_id="late")
    retained = {m.topic for m in late.messages if m.retain}
    assert bob not in retained and "homeassistant/binary_sensor/livecam_door/Ada/config" in retained
    late.close()
    sub.close()


# -- nothing lost to a broker that is down --------------------------------------------------------------


def test_broker_down_at_start_events_wait_on_disk_and_arrive_in_order_when_it_comes_up(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    b = Broker(folder)  # not started
    pub = publisher(tmp_path, b.port)
    start = time.monotonic()
    for n in range(1, 6):
        pub.handle(event(n))
    assert time.monotonic() - start < 0.5  # the frame loop never waits for the network
    assert len(pub.outbox) == 5
    time.sleep(10)  # the broker comes up 10 s later
    b.start()
    try:
        sub = Subscriber(b.port)
        pub.handle(event(6))
        assert sub.wait_for(lambda: tracks(sub) == [1, 2, 3, 4, 5, 6], timeout=40), tracks(sub)
        assert sub.wait_for(lambda: len(pub.outbox) == 0)
        pub.close()
        sub.close()
    finally:
        b.stop()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_broker_killed_and_restarted_mid_run_every_event_arrives_once_in_order(tmp_path, broker, how):
    sub = Subscriber(broker.port, client_id="ha", clean=False)  # a persistent session, as Home Assistant's
    pub = publisher(tmp_path, broker.port)
    time.sleep(2.5)  # the broker has saved the subscriber's session (autosave every second)
    for n in range(1, 31):
        pub.handle(event(n))
        if n == 10:
            broker.stop(how)
        if n == 20:
            broker.start()
        time.sleep(0.1)
    assert sub.wait_for(lambda: len(tracks(sub)) >= 30, timeout=60), tracks(sub)
    time.sleep(0.5)
    assert tracks(sub) == list(range(1, 31))  # each once, in order
    pub.close()
    sub.close()


def test_outbox_survives_a_restart_of_livecam(tmp_path):
    port = free_port()  # nothing listens
    pub = publisher(tmp_path, port)
    for n in range(1, 4):
        pub.handle(event(n))
    pub.close()
    folder = tmp_path / "broker"
    folder.mkdir()
    b = Broker(folder, port=port).start()
    try:
        sub = Subscriber(port)
        pub = publisher(tmp_path, port)  # the next run finds them
        assert sub.wait_for(lambda: tracks(sub) == [1, 2, 3]), tracks(sub)
        pub.close()
        sub.close()
    finally:
        b.stop()


# -- the last will, credentials, TLS -------------------------------------------------------------------


def run_config(tmp_path: Path, data: Path, port: int, extra: str = "") -> Path:
    kf = tmp_path / "kf" / "Lin_Manuel_Miranda"
    kf.mkdir(parents=True)
    for p in (data / "identities_extra" / "Lin_Manuel_Miranda").iterdir():
        shutil.copy(p, kf / p.name)
    config = tmp_path / "config.yaml"
    config.write_text(f"known_faces: kf\nmqtt:\n  host: 127.0.0.1\n  port: {port}\n{extra}")
    return config


def test_a_run_publishes_every_audit_log_event_once_in_order(tmp_path, data, broker):
    config = run_config(tmp_path, data, broker.port)
    sub = Subscriber(broker.port)
    clip = data / "videos" / "short_hamilton_clip.mp4"
    proc = subprocess.run(
        [*LIVECAM, "--config", str(config), "run", "--camera", str(clip), "--no-window", "--name", "front-door"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    audit = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert audit and {e["camera"] for e in audit} == {"front-door"}
    assert sub.wait_for(lambda: len(sub.on("livecam/front-door/event")) >= len(audit))
    time.sleep(0.3)
    got = [json.loads(m.payload) for m in sub.on("livecam/front-door/event")]
    assert [{k: v for k, v in g.items() if k != "event_type"} for g in got] == audit
    assert sub.last("livecam/front-door/person") == b"Lin_Manuel_Miranda"
    assert sub.on("livecam/front-door/present/Lin_Manuel_Miranda")[-1].payload == b"OFF"  # the run ended
    assert b"ON" in [m.payload for m in sub.on("livecam/front-door/present/Lin_Manuel_Miranda")]
    assert sub.last("livecam/front-door/available") == b"offline"
    assert "livecam[front-door]: mqtt: connected" in proc.stderr
    sub.close()


def test_kill_9_of_livecam_shows_offline_through_the_last_will(tmp_path, data, broker):
    config = run_config(tmp_path, data, broker.port)
    sub = Subscriber(broker.port)
    clip = data / "videos" / "short_hamilton_clip.mp4"
    proc = subprocess.Popen(
        [*LIVECAM, "--config", str(config), "run", "--camera", str(clip), "--no-window", "--realtime", "--loop",
         "--name", "hall"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert sub.wait_for(lambda: sub.last("livecam/hall/available") == b"online", timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert sub.wait_for(lambda: sub.last("livecam/hall/available") == b"offline", timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sub.close()


def test_wrong_password_is_one_clear_line_and_the_door_goes_on(tmp_path, data):
    folder = tmp_path / "broker"
    folder.mkdir()
    passwd = folder / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "door", "right-one"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "ha", "ha-secret"], check=True)
    b = Broker(folder, anonymous=False, extra=f"password_file {passwd}\n").start()
    try:
        secret = tmp_path / "mqtt-password"
        secret.write_text("wrong-one\n")
        secret.chmod(0o600)
        config = run_config(tmp_path, data, b.port, "  username: door\n  password_file: mqtt-password\n")
        clip = data / "videos" / "short_hamilton_clip.mp4"
        proc = subprocess.run(
            [*LIVECAM, "--config", str(config), "run", "--camera", str(clip), "--no-window", "--realtime"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        refused = [line for line in proc.stderr.splitlines() if "refused" in line]
        assert len(refused) == 1, proc.stderr  # one line, not one per retry
        assert "check mqtt.username and mqtt.password_file" in refused[0]
        assert "wrong-one" not in proc.stderr
        assert "event: recognized Lin_Manuel_Miranda" in proc.stderr  # the door went on
        assert "kept in" in proc.stderr  # ...and its events wait for the next run
        check = subprocess.run([*LIVECAM, "--config", str(config), "check"], capture_output=True, text=True)
        assert check.returncode == 1 and f"mqtt: the broker at 127.0.0.1:{b.port} refused livecam" in check.stdout

        # the right password: connected, and the events the refused run kept are delivered first
        sub = Subscriber(b.port, username="ha", password="ha-secret")
        secret.write_text("right-one\n")
        proc = subprocess.run(
            [*LIVECAM, "--config", str(config), "run", "--camera", str(clip), "--no-window"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0 and "refused" not in proc.stderr, proc.stderr
        check = subprocess.run([*LIVECAM, "--config", str(config), "check"], capture_output=True, text=True)
        assert check.returncode == 0 and f"mqtt: connected to 127.0.0.1:{b.port} as door" in check.stdout
        topic = "livecam/short_hamilton_clip/event"
        assert sub.wait_for(lambda: len(sub.on(topic)) >= 2), proc.stderr
        runs = [json.loads(m.payload)["time"] for m in sub.on(topic)]
        assert runs == sorted(runs) and len(runs) == 2  # the first run's event, then the second's
        sub.close()
    finally:
        b.stop()


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 signed by it (openssl)."""

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=livecam test CA")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    # a client certificate, for a broker that asks for one
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=door")
    ssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "client.crt", "-days", "2")  # fmt: skip
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


def test_tls_with_a_self_signed_ca(tmp_path, caplog):
    folder = tmp_path / "broker"
    folder.mkdir()
    ca, cert, key = make_ca(folder)
    tls_port, mutual_port = free_port(), free_port()
    tls = f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    b = Broker(
        folder,
        extra=f"listener {tls_port} 127.0.0.1\n{tls}listener {mutual_port} 127.0.0.1\n{tls}require_certificate true\n",
    ).start()  # the plain listener is the test's subscriber's
    try:
        sub = Subscriber(b.port)
        pub = MqttPublisher(settings(tls_port, tls=True, tls_ca=ca), Outbox(tmp_path / "o1.sqlite", 10), ["Ada"])
        pub.handle(event(1))
        assert sub.wait_for(lambda: tracks(sub) == [1])
        pub.close()
        # a broker that asks for a client certificate: with one signed by its CA
        client = settings(
            mutual_port, tls=True, tls_ca=ca, tls_cert=folder / "client.crt", tls_key=folder / "client.key"
        )
        pub = MqttPublisher(client, Outbox(tmp_path / "o3.sqlite", 10), ["Ada"])
        pub.handle(event(3))
        assert sub.wait_for(lambda: tracks(sub) == [1, 3])
        pub.close()
        # without the CA (the system's CAs only), the broker's certificate is not trusted: nothing is sent
        caplog.set_level(logging.WARNING)
        pub = MqttPublisher(settings(tls_port, tls=True, camera="other"), Outbox(tmp_path / "o2.sqlite", 10), [])
        pub.handle(event(2))
        time.sleep(3)
        assert tracks(sub, "livecam/other/event") == []
        pub.close()
        assert "certificate verify failed" in caplog.text
        sub.close()
    finally:
        b.stop()


def test_mqtt_config_errors_are_one_line(tmp_path):
    from livecam.cli import main

    cases = {
        "mqtt:\n  host: h\n  topic_prefix: 'a/+/b'\n": "mqtt.topic_prefix",
        "mqtt:\n  host: h\n  password_file: p\n": "mqtt.password_file needs mqtt.username",
        "mqtt:\n  host: h\n  tls:\n    cert: c.pem\n": "mqtt.tls.cert and mqtt.tls.key",
        "camera:\n  name: 'front door'\n": "camera.name",
        "mqtt:\n  host: h\n  port: 70000\n": "mqtt.port",
        # a URL became mqtt://127.0.0.1:1883:1883; host:port likewise: the port has a key of its own
        "mqtt:\n  host: 'mqtt://127.0.0.1:1883'\n": "mqtt.host must be a host name or address, not a URL or"
        " host:port: write host: 127.0.0.1 and port: 1883",
        "mqtt:\n  host: 'mqtts://u:secret@broker.lan'\n": "write host: broker.lan and port: 8883 and tls: {enabled:",
        "mqtt:\n  host: '127.0.0.1:1883'\n": "write host: 127.0.0.1 and port: 1883",
        "mqtt:\n  host: 'broker lan'\n": "mqtt.host must be a host name or address",
    }
    for text, says in cases.items():
        config = tmp_path / "config.yaml"
        config.write_text(text)
        proc = subprocess.run([*LIVECAM, "--config", str(config), "check"], capture_output=True, text=True)
        assert proc.returncode == 2 and says in proc.stderr and proc.stderr.count("\n") == 1, (text, proc.stderr)
        assert "secret" not in proc.stderr
    assert main(["run", "--camera", "x.mp4", "--name", "a/b", "--no-window"]) == 2


def test_camera_names_from_sources_are_safe_and_never_carry_credentials():
    from livecam.names import camera_name_for

    assert camera_name_for("0") == "camera-0"
    assert camera_name_for("/videos/front door.mp4") == "front-door"
    assert camera_name_for("rtsp://admin:hunter2@192.168.1.5:554/stream1") == "192-168-1-5-554"
    assert camera_name_for("http://[::1/") == "stream"  # a malformed URL still gives a name
    assert camera_name_for("/videos/Zoë.mp4") == "Zo"
    assert camera_name_for("/videos/Ωμέγα.mp4") == "camera"


def test_a_failing_callback_does_not_end_the_connection_thread(tmp_path, broker, caplog, monkeypatch):
    sub = Subscriber(broker.port)
    pub = publisher(tmp_path, broker.port)

    def broken(client, userdata, message):
        raise RuntimeError("bug in a callback")

    pub.client.on_message = broken
    sub.client.publish("homeassistant/status", "online")  # reaches the broken callback
    time.sleep(0.5)
    broker.stop(signal.SIGKILL)  # ...and paho's thread must still be there to reconnect
    broker.start()
    assert sub.wait_for(lambda: sub.connects >= 2)  # the test's subscriber is back before the event exists
    time.sleep(0.3)
    pub.handle(event(1))
    assert sub.wait_for(lambda: tracks(sub) == [1], timeout=20)
    assert "bug in a callback" in caplog.text
    pub.close()
    sub.close()


def test_an_outbox_that_cannot_be_used_is_one_line_and_exit_2(tmp_path, data):
    # the outbox's folder would need a folder that is not there: livecam creates one level at most
    config = run_config(tmp_path, data, free_port(), "  outbox: missing/deeper/outbox.sqlite\n")
    clip = data / "videos" / "short_hamilton_clip.mp4"
    proc = subprocess.run(
        [*LIVECAM, "--config", str(config), "run", "--camera", str(clip), "--no-window", "--frames", "5"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "outbox" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("livecam: error:")


def test_password_file_is_read_stripped_and_a_world_readable_one_is_warned_about(tmp_path, caplog):
    from livecam.config import ConfigError, parse_config
    from livecam.wiring import mqtt_settings

    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    cfg = parse_config({"mqtt": {"host": "h", "username": "door", "password_file": str(secret)}})
    secret.chmod(0o640)  # the service's group may read it
    assert mqtt_settings(cfg, "door").password == "s3cret" and "can be read" not in caplog.text
    secret.chmod(0o644)
    mqtt_settings(cfg, "door")
    assert "can be read by everyone" in caplog.text and "s3cret" not in caplog.text
    secret.unlink()
    with pytest.raises(ConfigError, match="mqtt.password_file: .*cannot read"):
        mqtt_settings(cfg, "door")


# -- issue 18: nothing around the frame loop may stall it, lose an event or leak a face ---------------


def hold_lock(path: Path) -> sqlite3.Connection:
    """Another process's lock on the outbox (a backup, `sqlite3` at a shell)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_an_outbox_locked_at_start_is_not_damaged_and_its_events_are_sent(tmp_path, broker):
    """Locked for 8 s at start, the outbox was moved aside as "damaged": its 2 events never went."""
    box = Outbox(tmp_path / "outbox.sqlite", 1000)
    box.put(event_payload(event(1)))
    box.put(event_payload(event(2)))
    box.close()
    other = hold_lock(tmp_path / "outbox.sqlite")
    sub = Subscriber(broker.port)
    start = time.monotonic()
    pub = publisher(tmp_path, broker.port)
    assert time.monotonic() - start < 2.0  # the start never waits on the lock (SQLite's 5 s, before)
    pub.handle(event(3))
    time.sleep(6)  # longer than SQLite's busy timeout
    assert tracks(sub) == []  # nothing can be sent in order while the older events are out of reach
    other.execute("COMMIT")
    other.close()
    assert sub.wait_for(lambda: tracks(sub) == [1, 2, 3]), tracks(sub)
    assert not list(tmp_path.glob("outbox.sqlite.damaged-*"))
    pub.close()
    sub.close()


def test_an_outbox_locked_mid_run_never_stalls_the_loop_and_loses_no_event(tmp_path, broker, caplog):
    """Locked during a run, put() waited 5 s per event (a 6.7 s gap in --log-json, the watchdog's pings
    stopped) and then dropped it ("event not handled (database is locked)")."""
    caplog.set_level(logging.INFO)
    sub = Subscriber(broker.port)
    pub = publisher(tmp_path, broker.port)
    pub.handle(event(1))
    assert sub.wait_for(lambda: tracks(sub) == [1])
    other = hold_lock(tmp_path / "outbox.sqlite")
    start = time.monotonic()
    for n in range(2, 7):
        pub.handle(event(n))
    assert time.monotonic() - start < 2.0  # 25 s before
    time.sleep(2)
    other.execute("COMMIT")
    other.close()
    assert sub.wait_for(lambda: tracks(sub) == [1, 2, 3, 4, 5, 6]), tracks(sub)
    assert caplog.text.count("is locked by another process") == 1  # one warning, not one per try
    assert "can be used again" in caplog.text
    pub.close()
    sub.close()


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_huge_retained_homeassistant_status_is_never_read(tmp_path, broker):
    """A retained 150 MB homeassistant/status took RSS from 164 to 599 MB and fps from 257 to 101: the
    broker now drops it for livecam (MQTT 5's Maximum Packet Size), so it is never even buffered."""
    publish_elsewhere(broker.port, "homeassistant/status", 64 << 20)
    sub = Subscriber(broker.port, topics=["livecam/#"])
    base, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        pub = publisher(tmp_path, broker.port)
        assert sub.wait_for(lambda: sub.last("livecam/door/available") == b"online")
        time.sleep(3)  # the broker sends retained messages right after the subscription
        pub.handle(event(1))
        assert sub.wait_for(lambda: tracks(sub) == [1])  # still connected, still working
    finally:
        done.set()
        sampler.join()
    assert peak[0] - base < 24 << 20, f"RSS grew by {(peak[0] - base) >> 20} MB"
    pub.close()
    sub.close()


def test_a_flood_of_online_gets_the_state_again_at_most_every_few_seconds(tmp_path, broker):
    """198 republications of everything, JPEG included, in 20 s of "online" messages."""
    pub = publisher(tmp_path, broker.port)
    pub.handle(event(1, face=True))
    sub = Subscriber(broker.port, topics=["livecam/door/snapshot"])
    assert sub.wait_for(lambda: (sub.last("livecam/door/snapshot") or b"")[:2] == b"\xff\xd8")
    before = len(sub.on("livecam/door/snapshot"))
    flood = Subscriber(broker.port, client_id="flood", topics=["nothing/here"])
    for _ in range(200):
        flood.client.publish("homeassistant/status", "online")
        time.sleep(0.01)
    time.sleep(8)
    again = len(sub.on("livecam/door/snapshot")) - before
    assert 1 <= again <= 3, again  # Home Assistant still gets its state, once every 5 s at most
    pub.close()
    flood.close()
    sub.close()


def retained(port: int, prefix: str = "") -> dict[str, bytes]:
    late = Subscriber(port, client_id="late-reader")
    got = {m.topic: m.payload for m in late.messages if m.retain and m.topic.startswith(prefix)}
    late.close()
    return got


def test_snapshots_turned_off_empty_the_retained_face_and_its_entity(tmp_path, broker):
    pub = publisher(tmp_path, broker.port)
    pub.handle(event(1, face=True))
    pub.close()
    assert retained(broker.port)["livecam/door/snapshot"][:2] == b"\xff\xd8"
    pub = publisher(tmp_path, broker.port, snapshots=False)  # the next run, mqtt.snapshots: false
    pub.handle(event(2, face=True))
    pub.close()
    left = retained(broker.port)
    assert "livecam/door/snapshot" not in left and "homeassistant/image/livecam_door/snapshot/config" not in left
    assert left["livecam/door/person"] == b"Ada"  # the rest is as before


def test_no_strangers_face_is_published_when_the_door_keeps_no_crops(tmp_path, broker):
    """door.unknown_dir: null ("keep no crops") still sent a stranger's face, retained."""
    from livecam.config import parse_config
    from livecam.wiring import mqtt_settings

    assert (
        mqtt_settings(parse_config({"door": {"unknown_dir": None}, "mqtt": {"host": "h"}}), "d").stranger_snapshots
        is False
    )
    assert mqtt_settings(parse_config({"mqtt": {"host": "h"}}), "d").stranger_snapshots is True
    sub = Subscriber(broker.port, topics=["livecam/door/snapshot"])
    pub = publisher(tmp_path, broker.port, stranger_snapshots=False)
    pub.handle(event(1, face=True))
    assert sub.wait_for(lambda: (sub.last("livecam/door/snapshot") or b"")[:2] == b"\xff\xd8")
    pub.handle(event(2, kind="unknown", face=True))
    assert sub.wait_for(lambda: sub.last("livecam/door/snapshot") == b"")  # emptied, not the stranger
    pub.close()
    assert "livecam/door/snapshot" not in retained(broker.port)
    assert all(m.payload[:2] != b"\xff\xd8" for m in sub.on("livecam/door/snapshot")[1:])
    sub.close()


def test_a_face_leaves_the_broker_with_its_crop_at_its_age_and_at_the_next_start(tmp_path, broker):
    sub = Subscriber(broker.port, topics=["livecam/door/snapshot"])
    # a stranger's face goes when its crop is deleted (unknown purge, retention by count)
    crop = tmp_path / "crop.jpg"
    crop.write_bytes(b"jpeg")
    pub = publisher(tmp_path, broker.port)
    pub.handle(event(1, kind="unknown", face=True, snapshot=crop))
    assert sub.wait_for(lambda: (sub.last("livecam/door/snapshot") or b"")[:2] == b"\xff\xd8")
    crop.unlink()
    assert sub.wait_for(lambda: sub.last("livecam/door/snapshot") == b"")
    pub.close()
    # any face goes when it is older than the crops' retention (door.unknown_keep_days)
    pub = publisher(tmp_path, broker.port, snapshot_keep_seconds=1.0)
    pub.handle(event(2, face=True))
    assert sub.wait_for(lambda: (sub.last("livecam/door/snapshot") or b"")[:2] == b"\xff\xd8")
    assert sub.wait_for(lambda: sub.last("livecam/door/snapshot") == b"")
    pub.close()
    # a face an earlier run left (of an age this run cannot know) is emptied when a run starts
    pub = publisher(tmp_path, broker.port)
    pub.handle(event(3, face=True))
    pub.close()
    assert "livecam/door/snapshot" in retained(broker.port)
    pub = publisher(tmp_path, broker.port)
    assert sub.wait_for(lambda: sub.last("livecam/door/snapshot") == b"")
    pub.close()
    sub.close()


def test_unknown_purge_empties_the_retained_snapshots_on_the_configured_broker(tmp_path, broker):
    """The retained snapshot stayed on the broker after `unknown purge`. Cameras: every one in the
    audit log (a --name run's too) and camera.name."""
    unknown = tmp_path / "unknown"
    unknown.mkdir(mode=0o700)
    (tmp_path / "events.jsonl").write_text(
        json.dumps({"kind": "unknown", "camera": "front-door"}) + "\n" + json.dumps({"camera": "bad/#"}) + "\n"
    )
    sub = Subscriber(broker.port, topics=["livecam/+/snapshot"])
    for cam in ("front-door", "side", "other"):
        sub.client.publish(f"livecam/{cam}/snapshot", b"\xff\xd8face", qos=1, retain=True).wait_for_publish(5)
    config = tmp_path / "config.yaml"
    config.write_text(f"camera:\n  name: side\nmqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n")
    proc = subprocess.run(
        [*LIVECAM, "--config", str(config), "unknown", "purge", "--older-than", "30"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "retained snapshots cleared" in proc.stdout, proc.stdout + proc.stderr
    left = retained(broker.port, "livecam/")
    assert set(left) == {"livecam/other/snapshot"}  # a camera of another door is not this purge's
    # no broker to be reached: the crops are purged, the face on the broker is not: said, exit 1
    config.write_text(f"camera:\n  name: side\nmqtt:\n  host: 127.0.0.1\n  port: {free_port()}\n")
    proc = subprocess.run(
        [*LIVECAM, "--config", str(config), "unknown", "purge", "--older-than", "30"], capture_output=True, text=True
    )
    assert proc.returncode == 1 and "retained snapshots not cleared: cannot reach" in proc.stdout, proc.stdout
    sub.close()


def test_snapshots_to_a_broker_without_tls_and_a_user_are_warned_about_once(tmp_path, broker, caplog):
    caplog.set_level(logging.WARNING)
    pub = publisher(tmp_path, broker.port)
    pub.handle(event(1, face=True))
    pub.close()
    said = [r.getMessage() for r in caplog.records if "mqtt.snapshots" in r.getMessage()]
    assert len(said) == 1 and "without TLS or a user name" in said[0], said
    caplog.clear()
    pub = publisher(tmp_path, broker.port, snapshots=False)
    pub.close()
    assert "mqtt.snapshots" not in caplog.text


def test_the_final_presence_reaches_the_broker_when_a_run_ends_right_after_an_event(tmp_path, broker):
    """After a run that ended by itself (end of file, --frames), present/<person> stayed ON: the run's
    last event (a waiting unknown, decided as the run ends) was still waiting for its PUBACK when the
    door said "nobody is here", and the sender, done with its events, quit without publishing that."""
    pub = publisher(tmp_path, broker.port)
    pub.enrolled(["Ada"])
    pub.presence(frozenset({"Ada"}))
    sub = Subscriber(broker.port, topics=["livecam/door/present/Ada", "livecam/door/event"])
    assert sub.wait_for(lambda: sub.last("livecam/door/present/Ada") == b"ON")
    broker.proc.send_signal(signal.SIGSTOP)  # the PUBACK of the next event is held back a moment
    try:
        pub.handle(event(1))
        time.sleep(0.3)  # the sender waits for the PUBACK
        pub.presence(frozenset())  # EventSink.close: nobody is at this door any more...
        threading.Timer(0.3, broker.proc.send_signal, (signal.SIGCONT,)).start()
        pub.close()  # ...and the publisher closes
    finally:
        broker.proc.send_signal(signal.SIGCONT)
    assert tracks(sub) == [1]
    assert retained(broker.port)["livecam/door/present/Ada"] == b"OFF"
    sub.close()


def test_tls_and_password_files_are_checked_before_the_models_load(tmp_path, data):
    """A missing tls.ca was found only after the gallery loaded, without naming the file; a password
    file anyone in its group could change connected without a word."""
    config = run_config(tmp_path, data, free_port())
    base = config.read_text()
    clip = data / "videos" / "short_hamilton_clip.mp4"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o660)
    cases = {
        "  tls:\n    ca: missing-ca.crt\n": f"mqtt.tls.ca: {tmp_path / 'missing-ca.crt'}: cannot read (No such file",
        f"  tls:\n    ca: {junk}\n": f"mqtt.tls.ca: {junk}: not a PEM CA certificate",
        f"  tls:\n    cert: c.crt\n    key: {junk}\n": f"mqtt.tls.cert: {tmp_path / 'c.crt'}: cannot read",
        f"  tls:\n    cert: {junk}\n    key: {junk}\n": "mqtt.tls.cert, mqtt.tls.key",
        f"  username: door\n  password_file: {secret}\n": f"mqtt.password_file: {secret} can be changed by its group",
    }
    for extra, says in cases.items():
        config.write_text(base + extra)
        proc = subprocess.run(
            [*LIVECAM, "--config", str(config), "run", "--camera", str(clip), "--no-window"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and says in lines[0], (extra, proc.stderr)
        assert "Traceback" not in proc.stderr and "s3cret" not in proc.stderr
    secret.chmod(0o602)
    config.write_text(base + f"  username: door\n  password_file: {secret}\n")
    proc = subprocess.run([*LIVECAM, "--config", str(config), "check"], capture_output=True, text=True)
    assert proc.returncode == 2 and "can be changed by everyone" in proc.stderr, proc.stderr
