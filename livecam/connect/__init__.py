"""What connects the door to the rest of a house: MQTT (with Home Assistant discovery, and an outbox that keeps
events while the broker is away) and systemd's notifications.

Everything outside imports these names from here."""

from __future__ import annotations

from .mqtt import MqttError, MqttPublisher, clear_snapshots, probe
from .outbox import open_outbox
from .systemd import Notifier
from .topics import MqttSettings

__all__ = ["MqttError", "MqttPublisher", "MqttSettings", "clear_snapshots", "open_outbox", "probe", "Notifier"]
