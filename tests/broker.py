"""A real MQTT broker for tests: Debian's mosquitto on a free 127.0.0.1 port, and a subscriber that records."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto with its own config; start/stop/kill it at will (the same port each time)."""

    def __init__(self, folder: Path, port: int | None = None, extra: str = "", anonymous: bool = True) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            pytest.fail("mosquitto is not installed (scripts/setup.sh installs it)")
        self.exe = exe
        self.folder = folder
        self.port = port or free_port()
        self.conf = folder / "mosquitto.conf"
        (folder / "persist").mkdir(exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            # retained messages and persistent sessions survive a restart (as on a real install)
            f"persistence true\npersistence_location {folder / 'persist'}/\nautosave_interval 1\n"
            f"log_dest file {folder / 'mosquitto.log'}\n" + ("user root\n" if os.geteuid() == 0 else "") + extra
            # as root, mosquitto would become user "mosquitto", who cannot read the test's private folders
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        cmd = [self.exe, "-c", str(self.conf)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Subscriber:
    """Records every message on `topics`; a persistent session (QoS 1) so that nothing published
    while it reconnects to a restarted broker is lost to it."""

    port: int
    topics: list[str] = field(default_factory=lambda: ["#"])
    client_id: str = "test-subscriber"
    clean: bool = True
    messages: list[Received] = field(default_factory=list)
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._connected = threading.Event()
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=self.clean)
        self.connects = 0

        def on_connect(cl, userdata, flags, rc, props):
            cl.subscribe([(t, 1) for t in self.topics])
            self.connects += 1
            self._connected.set()

        c.on_connect = on_connect
        c.on_message = self._on_message
        if self.username:
            c.username_pw_set(self.username, self.password)
        c.reconnect_delay_set(1, 2)
        c.connect_async("127.0.0.1", self.port, 30)
        c.loop_start()
        self.client = c
        if not self._connected.wait(10):
            raise RuntimeError("test subscriber could not connect")
        time.sleep(0.2)  # the subscription is acknowledged and retained messages have come

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> bytes | None:
        got = self.on(topic)
        return got[-1].payload if got else None

    def wait_for(self, predicate, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_elsewhere(port: int, topic: str, payload_bytes: int, retain: bool = True) -> None:
    """Publish `payload_bytes` of junk from another process, so that the test's own memory never holds it."""
    code = (
        "import sys, paho.mqtt.client as paho\n"
        "c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id='elsewhere')\n"
        f"c.connect('127.0.0.1', {port}); c.loop_start()\n"
        f"c.publish({topic!r}, b'x' * {payload_bytes}, qos=1, retain={retain}).wait_for_publish(60)\n"
        "c.disconnect(); c.loop_stop()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
