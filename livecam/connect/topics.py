"""What livecam publishes over MQTT, and where: every topic of a camera, Home Assistant's discovery configs,
and the door's retained state (the last person, the snapshot, who is present) with the rules for when each is due
to be published again. No network here: `mqtt.MqttPublisher` owns the connection and sends what this says.

The topics are a contract other tools read (README, "MQTT and Home Assistant"); mqtt.py's docstring lists them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2

from .. import __version__
from ..door import Event

SNAPSHOT_QUALITY = 90
NONE = "none"  # the person sensor's state when nobody was recognized lately
REPUBLISH_SECONDS = 5.0  # Home Assistant's "online" gets the configs and state again at most this often
EVERYTHING = frozenset({"discovery", "person", "snapshot", "presence"})


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int
    camera: str
    topic_prefix: str
    discovery_prefix: str
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    person_reset_seconds: float = 60.0
    snapshots: bool = True
    snapshot_keep_seconds: float | None = None  # a face is not kept on the broker longer (crops' retention)
    stranger_snapshots: bool = True  # a stranger's face too (off when no strangers' crops are kept)
    keepalive: int = 30


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HASHED_SLUG = re.compile(r".*_[0-9a-f]{8}")  # the tail every hashed slug ends with


def person_slug(name: str) -> str:
    """A topic level and Home Assistant object id for a person, one per name (NFC: the same name in
    either Unicode spelling has one slug): the name itself when it is plain ASCII letters, digits,
    - and _ and does not end like a hashed slug; otherwise an ASCII form and a hash of the name.
    A plain slug never ends in `_<8 hex>` and a hashed one always does, so a name cannot be chosen
    to take another's slug (`Jose_Marti_67e21a26` is not `José Martí`)."""
    name = unicodedata.normalize("NFC", name)
    if _PLAIN_NAME.fullmatch(name) and not _HASHED_SLUG.fullmatch(name):
        return name
    ascii_form = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_form).strip("_")[:40] or "person"
    return f"{base}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


class Topics:
    """Every topic and discovery config of one camera (the README's table)."""

    def __init__(self, s: MqttSettings) -> None:
        base = f"{s.topic_prefix}/{s.camera}"
        self.available = f"{base}/available"
        self.event = f"{base}/event"
        self.person = f"{base}/person"
        self.person_attributes = f"{base}/person/attributes"
        self.snapshot = f"{base}/snapshot"
        self.node = f"livecam_{s.camera}"
        self.discovery = s.discovery_prefix
        self.ha_status = f"{s.discovery_prefix}/status"
        self.presence_configs = f"{s.discovery_prefix}/binary_sensor/{self.node}/+/config"
        self._base = base
        self._settings = s

    def present(self, slug: str) -> str:
        return f"{self._base}/present/{slug}"

    def config_topic(self, component: str, object_id: str) -> str:
        return f"{self.discovery}/{component}/{self.node}/{object_id}/config"

    def _common(self) -> dict:
        """What every entity's discovery config carries: the camera's device and its availability."""
        return {
            "availability_topic": self.available,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": {
                "identifiers": [self.node],
                "name": f"livecam {self._settings.camera}",
                "manufacturer": "livecam",
                "model": "face recognizer",
                "sw_version": __version__,
            },
        }

    def device_configs(self) -> dict[str, dict]:
        """Discovery configs of the camera's own entities: the last person, door events, the snapshot."""
        s = self._settings
        common = self._common()
        configs = {
            self.config_topic("sensor", "person"): {
                "name": "Person",
                "unique_id": f"{self.node}_person",
                "state_topic": self.person,
                "json_attributes_topic": self.person_attributes,
                "icon": "mdi:face-recognition",
            },
            # Home Assistant's event entity reads `event_type` from the JSON; livecam's events carry it
            self.config_topic("event", "door"): {
                "name": "Door",
                "unique_id": f"{self.node}_door",
                "state_topic": self.event,
                "event_types": ["recognized", "unknown"],
                "icon": "mdi:doorbell-video",
            },
        }
        if s.snapshots:
            configs[self.config_topic("image", "snapshot")] = {
                "name": "Snapshot",
                "unique_id": f"{self.node}_snapshot",
                "image_topic": self.snapshot,
                "content_type": "image/jpeg",
            }
        return {topic: {**cfg, **common} for topic, cfg in configs.items()}

    def presence_config(self, person: str) -> tuple[str, dict]:
        slug = person_slug(person)
        return self.config_topic("binary_sensor", slug), {
            "name": person,
            "unique_id": f"{self.node}_present_{slug}",
            "state_topic": self.present(slug),
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "presence",
            **self._common(),
        }


def event_payload(event: Event) -> bytes:
    """The audit log's JSON plus `event_type` (Home Assistant's event entity reads it)."""
    record = json.loads(event.to_json())
    record["event_type"] = event.kind
    return json.dumps(record, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Snapshot:
    """The face the snapshot topic shows: its JPEG, its crop in unknown/ (a stranger's), when it was taken."""

    jpeg: bytes
    crop: Path | None
    at: float  # monotonic


class RetainedState:
    """What the retained topics should hold: written by the frame loop (an event, who is present, the gallery)
    and by paho's thread (Home Assistant's "online", a stale config seen), read by the sender thread, which asks
    for the messages now due with `messages()`. One lock; nothing here waits for the network."""

    def __init__(
        self, settings: MqttSettings, people: Sequence[str] = (), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings)
        self._clock = clock
        self._lock = threading.Lock()
        self._people: list[str] = list(people)
        self._present: frozenset[str] = frozenset()
        self._person: tuple[str, dict] = (NONE, {})
        self._person_at = 0.0  # clock time of the last "recognized"
        self._snapshot: Snapshot | None = None
        self._dirty: set[str] = set()  # state topics to publish again
        self._cleared: set[str] = set()  # discovery configs of people no longer enrolled, to empty
        self._republish_asked = False  # Home Assistant said "online"
        self._republished_at = -1e18  # clock time everything was last published
        self._sent_presence: dict[str, str] = {}  # the sender's: each person's state as last published

    # -- what happened ---------------------------------------------------------------------------
    def record(self, event: Event) -> None:
        """A door event: the person sensor (a recognized name) and the snapshot (its face)."""
        with self._lock:
            if event.kind == "recognized" and event.name:
                self._person = (
                    event.name,
                    {
                        "distance": round(event.distance, 4) if math.isfinite(event.distance) else None,
                        "time": event.time,
                        "liveness": event.liveness,
                        "track": event.track,
                        "camera": self.settings.camera,
                    },
                )
                self._person_at = self._clock()
                self._dirty.add("person")
            if self.settings.snapshots and event.face is not None and event.face.size:
                self._snapshot = self._snapshot_of(event)
                self._dirty.add("snapshot")

    def _snapshot_of(self, event: Event) -> Snapshot | None:
        """The event's face for the snapshot topic; None (the topic emptied) for a stranger when no
        strangers' crops are kept: the broker must not keep what the door itself does not."""
        stranger = event.kind == "unknown"
        if stranger and not self.settings.stranger_snapshots:
            return None
        ok, jpeg = cv2.imencode(".jpg", event.face, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY])
        if not ok:
            return None
        crop = Path(event.snapshot) if stranger and event.snapshot else None
        return Snapshot(jpeg.tobytes(), crop, self._clock())

    def set_present(self, people: frozenset[str]) -> None:
        with self._lock:
            self._present = people
            self._dirty.add("presence")

    def set_people(self, people: Sequence[str]) -> None:
        """The gallery changed: configs for the new, emptied configs (and sensors) for the gone."""
        with self._lock:
            gone = set(self._people) - set(people)
            self._cleared |= {self.topics.presence_config(p)[0] for p in gone}
            self._people = list(people)
            self._dirty |= {"discovery", "presence"}

    def connected(self) -> None:
        """A new connection: everything again (the broker may have lost its retained messages)."""
        with self._lock:
            self._dirty |= EVERYTHING
            self._republished_at = self._clock()

    def ask_republish(self) -> None:
        """Home Assistant (re)started and wants the configs again (honoured by `due()`, rate-limited)."""
        with self._lock:
            self._republish_asked = True

    def config_seen(self, topic: str) -> None:
        """A retained presence config under our node: emptied unless its person is still enrolled."""
        with self._lock:
            if topic not in {self.topics.presence_config(p)[0] for p in self._people}:
                self._cleared.add(topic)

    # -- what is due -----------------------------------------------------------------------------
    def due(self) -> None:
        """The clock's rules: the person sensor back to none, a face forgotten, a republish allowed."""
        with self._lock:
            now = self._clock()
            if self._person[0] != NONE and now - self._person_at >= self.settings.person_reset_seconds:
                self._person = (NONE, {})
                self._dirty.add("person")
            # the face goes when its crop does (purged, retention) or when it is older than the crops' retention
            snap, keep = self._snapshot, self.settings.snapshot_keep_seconds
            if snap is not None:
                aged = keep is not None and now - snap.at >= keep
                if aged or (snap.crop is not None and not snap.crop.exists()):
                    self._snapshot = None
                    self._dirty.add("snapshot")
            # at most once every REPUBLISH_SECONDS: a flood of "online" (a loop of automations, a hostile
            # client) must not make livecam send its whole state, JPEG included, each time
            if self._republish_asked and now - self._republished_at >= REPUBLISH_SECONDS:
                self._republish_asked = False
                self._republished_at = now
                self._dirty |= EVERYTHING

    @property
    def pending(self) -> bool:
        """Something still to publish (a run's end, presence OFF, must reach the broker before it closes)."""
        with self._lock:
            return bool(self._dirty or self._cleared)

    def messages(self) -> list[tuple[str, bytes | str]]:
        """The retained messages now due, (topic, payload), in order; taken: asked again, they are not repeated.
        The sender thread's alone (it remembers which presence states it sent)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            cleared, self._cleared = self._cleared, set()
            person, attributes = self._person
            snapshot, people, present = self._snapshot, list(self._people), self._present
        topics, out = self.topics, []
        if "discovery" in dirty:
            out += [(topic, json.dumps(config)) for topic, config in topics.device_configs().items()]
            if not self.settings.snapshots:  # no Snapshot entity: an earlier run's config is emptied
                out.append((topics.config_topic("image", "snapshot"), b""))
            for p in people:
                topic, config = topics.presence_config(p)
                out.append((topic, json.dumps(config, ensure_ascii=False)))
        for topic in sorted(cleared):  # an empty retained config removes the entity from Home Assistant
            out += [(topic, b""), (topics.present(topic.rsplit("/", 2)[-2]), b"")]
        if "person" in dirty:
            out.append((topics.person, person))
            out.append((topics.person_attributes, json.dumps(attributes, ensure_ascii=False)))
        if "snapshot" in dirty:
            # no face held (snapshots off, none yet this run, aged out, purged): an empty retained
            # message removes the one the broker keeps, whose age livecam cannot know
            out.append((topics.snapshot, snapshot.jpeg if snapshot else b""))
        if "presence" in dirty:
            if "discovery" in dirty:
                self._sent_presence = {}  # (re)connected, or the gallery changed: every sensor again
            for p in people:
                state = "ON" if p in present else "OFF"
                if self._sent_presence.get(p) != state:  # only changes: a gallery of 100 is not 100 messages
                    out.append((topics.present(person_slug(p)), state))
                    self._sent_presence[p] = state
        return out
