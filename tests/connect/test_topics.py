"""What is published, and when (livecam/connect/topics.py): the retained state's rules with a scripted clock, no
broker. The broker's side of the same contract is tested against a real mosquitto in test_mqtt.py."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
from conftest import Clock

from livecam.connect.topics import NONE, REPUBLISH_SECONDS, MqttSettings, RetainedState, Topics, person_slug
from livecam.door import Event


def settings(**kw) -> MqttSettings:
    return MqttSettings("127.0.0.1", 1883, "door", "livecam", "homeassistant", "livecam-door", **kw)


def event(kind: str = "recognized", name: str | None = "Ada", snapshot: Path | None = None) -> Event:
    return Event(kind, "2026-12-05T10:00:00+00:00", "cam", 1, name if kind == "recognized" else None, 0.3, 0.1,
                 camera="door", face=np.full((40, 30, 3), 90, np.uint8),
                 snapshot=None if snapshot is None else str(snapshot))  # fmt: skip


def topics_of(messages) -> list[str]:
    return [topic for topic, _ in messages]


def state(clock: Clock, people=("Ada", "Bob"), **kw) -> RetainedState:
    s = RetainedState(settings(**kw), people, clock=clock)
    s.connected()
    s.messages()  # the connect's full state, out of the way
    return s


def test_a_new_connection_publishes_everything_once():
    s = RetainedState(settings(), ["Ada"], clock=Clock())
    s.connected()
    sent = dict(s.messages())
    assert "homeassistant/sensor/livecam_door/person/config" in sent
    assert json.loads(sent["homeassistant/binary_sensor/livecam_door/Ada/config"])["name"] == "Ada"
    assert sent["livecam/door/person"] == NONE and sent["livecam/door/snapshot"] == b""
    assert sent["livecam/door/present/Ada"] == "OFF"
    assert s.messages() == [] and not s.pending  # taken: not repeated


def test_the_person_sensor_names_the_last_recognized_then_resets_to_none():
    clock = Clock()
    s = state(clock, person_reset_seconds=60)
    s.record(event(name="Bob"))
    sent = dict(s.messages())
    assert sent["livecam/door/person"] == "Bob"
    assert json.loads(sent["livecam/door/person/attributes"])["distance"] == 0.3
    clock.now += 59.9
    s.due()
    assert "livecam/door/person" not in topics_of(s.messages())
    clock.now += 0.2
    s.due()
    assert dict(s.messages())["livecam/door/person"] == NONE


def test_presence_sends_only_changes_and_a_removed_person_leaves_home_assistant():
    s = state(Clock())
    s.set_present(frozenset({"Ada"}))
    assert s.messages() == [("livecam/door/present/Ada", "ON")]  # Bob was OFF already
    s.set_present(frozenset({"Ada"}))
    assert s.messages() == []
    s.set_people(["Ada"])
    sent = s.messages()
    assert ("homeassistant/binary_sensor/livecam_door/Bob/config", b"") in sent
    assert ("livecam/door/present/Bob", b"") in sent


def test_a_stale_config_on_the_broker_is_emptied_and_an_enrolled_ones_is_kept():
    s = state(Clock())
    s.config_seen("homeassistant/binary_sensor/livecam_door/Ada/config")
    assert s.messages() == []
    s.config_seen("homeassistant/binary_sensor/livecam_door/Carol/config")
    assert s.messages() == [
        ("homeassistant/binary_sensor/livecam_door/Carol/config", b""),
        ("livecam/door/present/Carol", b""),
    ]


def test_a_flood_of_online_republishes_at_most_once_every_few_seconds():
    clock = Clock()
    s = state(clock)
    republished = 0
    for _ in range(100):  # 10 s of "online" ten times a second
        s.ask_republish()
        s.due()
        republished += "livecam/door/person" in topics_of(s.messages())
        clock.now += 0.1
    assert republished == 10 / REPUBLISH_SECONDS - 1  # the connect's full state at 0 s counts: then at 5 s only


def test_no_strangers_face_when_no_crops_are_kept_and_no_snapshot_entity_when_snapshots_are_off():
    s = state(Clock(), stranger_snapshots=False)
    s.record(event("recognized"))
    assert dict(s.messages())["livecam/door/snapshot"][:2] == b"\xff\xd8"  # a JPEG
    s.record(event("unknown"))
    assert dict(s.messages())["livecam/door/snapshot"] == b""
    off = RetainedState(settings(snapshots=False), ["Ada"], clock=Clock())
    off.connected()
    sent = dict(off.messages())
    assert sent["homeassistant/image/livecam_door/snapshot/config"] == b""
    off.record(event("recognized"))
    assert "livecam/door/snapshot" not in topics_of(off.messages())


def test_a_face_leaves_with_its_crop_or_at_its_age(tmp_path):
    clock = Clock()
    s = state(clock, snapshot_keep_seconds=30)
    crop = tmp_path / "crop.jpg"
    crop.write_bytes(b"x")
    s.record(event("unknown", snapshot=crop))
    assert dict(s.messages())["livecam/door/snapshot"] != b""
    crop.unlink()  # `unknown purge`
    s.due()
    assert s.messages() == [("livecam/door/snapshot", b"")]
    s.record(event("recognized"))
    s.messages()
    clock.now += 29
    s.due()
    assert s.messages() == []
    clock.now += 1
    s.due()
    assert s.messages() == [("livecam/door/snapshot", b"")]


def test_topics_of_names_with_wildcards_or_unicode_stay_one_level():
    t = Topics(settings())
    for name in ("A+B", "x#y", "José", "Zoë/../x", "a b"):
        slug = person_slug(name)
        assert "/" not in slug and "+" not in slug and "#" not in slug and " " not in slug
        assert t.present(slug).count("/") == 3
    assert person_slug("A+B") != person_slug("A#B")


def test_slugs_are_one_per_name_in_either_unicode_spelling_and_cannot_be_taken_by_a_crafted_name():
    """`Jose_Marti_67e21a26` (a plain name) had the slug of `José Martí`: one presence sensor for two
    people. And `José Martí` spelled in NFD had a slug of its own."""
    jose = "José Martí"
    assert person_slug(unicodedata.normalize("NFD", jose)) == person_slug(jose) == "Jose_Marti_67e21a26"  # README
    names = [jose, person_slug(jose), "Jose Marti", "Jose_Marti", "José_Martí", "Ada", "Ada_0123abcd", "Ada_0123ABCD"]
    names += [person_slug(n) for n in names]  # every slug, tried as a name
    names = list(dict.fromkeys(names))
    slugs = [person_slug(n) for n in names]
    assert len(set(slugs)) == len(names), [(n, s) for n, s in zip(names, slugs, strict=True) if slugs.count(s) > 1]
    assert person_slug("Ada") == "Ada" and person_slug("Ada_0123ABCD") == "Ada_0123ABCD"  # plain names as they are
