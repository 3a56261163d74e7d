from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np

from livecam.cli import main
from livecam.door.events import DoorPolicy, UnknownStore
from livecam.engine.faces import Box
from livecam.identity import STRANGER, STRANGER_LABEL, UNDECIDED, Identity
from livecam.live.recognizer import TrackUpdate


def identity_of(label: str | None) -> Identity:
    """The contracts' form back to an Identity: None undecided, "unknown" a stranger, else a person."""
    return UNDECIDED if label is None else STRANGER if label == STRANGER_LABEL else Identity.of(label)


def update(track, name, agreeing=2, t=0.0, embedding=None, encodings=3, ended=False):
    e = None if embedding is None else np.full(128, embedding, np.float32)
    return TrackUpdate(
        track, identity_of(name), 0.3, 0.2, agreeing, Box(0, 10, 10, 0), None, None, t, encodings, e, ended
    )


def test_recognized_needs_agreement_and_one_visit_is_one_event():
    policy = DoorPolicy(min_agree=2, cooldown_seconds=30)
    assert policy.consider(update(1, "Ada", agreeing=1)) is None  # named at once, not yet agreed
    assert policy.consider(update(1, "Ada", agreeing=2)) == "recognized"
    assert policy.consider(update(1, "Ada", agreeing=3)) is None  # same track
    assert policy.consider(update(2, "Ada", t=10)) is None  # a new track of the same visit
    assert policy.consider(update(3, "Bob", t=10)) == "recognized"
    assert policy.consider(update(4, "Ada", t=45)) == "recognized"  # a new visit after the cooldown
    assert policy.consider(update(6, None, agreeing=0, t=45)) is None


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_run_writes_audit_log_and_runs_actions(tmp_path, data, make_gallery):
    root = make_gallery({"Tony_Blair": [1, 2]})
    (root / "Lin_Manuel_Miranda").mkdir()
    for p in (data / "identities_extra" / "Lin_Manuel_Miranda").iterdir():
        shutil.copy(p, root / "Lin_Manuel_Miranda" / p.name)
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received = []
    out = tmp_path / "opened.txt"
    # the name reaches the command as data in the environment, never through a shell string
    script = tmp_path / "open-door.py"
    script.write_text(
        "import os, sys\n"
        "open(sys.argv[1], 'a').write(os.environ['LIVECAM_NAME'] + ' ' + os.environ['LIVECAM_CAMERA'] + '\\n')\n"
    )
    config = tmp_path / "config.yaml"
    (tmp_path / "audit").mkdir()  # livecam creates no folder the user did not name
    config.write_text(
        f"known_faces: {root}\n"
        "door:\n  events_log: audit/events.jsonl\n"
        "actions:\n  on_recognized:\n"
        f"    command: [{json.dumps(os.sys.executable)}, {json.dumps(str(script))}, {json.dumps(str(out))}]\n"
        f"    webhook: http://127.0.0.1:{server.server_port}/door\n"
    )
    code = main(
        ["--config", str(config), "run", "--camera", str(data / "videos" / "short_hamilton_clip.mp4"), "--no-window"]
    )
    server.shutdown()
    assert code == 0
    log = tmp_path / "audit" / "events.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    recognized = [e for e in events if e["kind"] == "recognized"]
    assert [e["name"] for e in recognized] == ["Lin_Manuel_Miranda"]  # one visit, one event
    assert set(recognized[0]) == {
        "kind",
        "time",
        "source",
        "track",
        "name",
        "distance",
        "margin",
        "liveness",
        "snapshot",
        "frame",
        "t",
        "nearest",
        "camera",
    }
    assert recognized[0]["camera"] == "short_hamilton_clip"  # no camera.name: from the source
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert out.read_text() == "Lin_Manuel_Miranda short_hamilton_clip\n"
    assert [h["name"] for h in Hook.received] == ["Lin_Manuel_Miranda"]


def test_strangers_are_kept_once_and_can_be_promoted_and_purged(tmp_path, make_gallery, capsys, big_data):
    root = make_gallery({"Tony_Blair": [1, 2]})
    config = tmp_path / "config.yaml"
    config.write_text(f"known_faces: {root}\nencoding:\n  model: dlib\n")  # the distances below are dlib's
    assert (
        main(
            [
                "--config",
                str(config),
                "run",
                "--camera",
                str(big_data / "videos" / "hdtf_WDA_KatieHill_000.mp4"),
                "--no-window",
                "--name",
                "side-gate",
            ]
        )
        == 0
    )
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events] == ["unknown"]
    crop = events[0]["snapshot"]
    assert crop and stat.S_IMODE(os.stat(crop).st_mode) == 0o600
    assert events[0]["camera"] == "side-gate" and "-side-gate-t" in os.path.basename(crop)
    # one clean line: who the stranger was nearest to, as in the JSON (issue 18)
    assert f"livecam[side-gate]: event: unknown (track {events[0]['track']}, nearest Tony_Blair at 0." in (
        capsys.readouterr().err
    )
    assert stat.S_IMODE((tmp_path / "unknown").stat().st_mode) == 0o700
    capsys.readouterr()
    assert main(["--config", str(config), "unknown", "list"]) == 0
    listed = capsys.readouterr().out.split("\t")
    visitor = listed[0]
    # when, which camera (the README's promise; it showed the source), and who the stranger looked like
    assert listed[1] == events[0]["time"] and listed[2] == "side-gate"
    assert events[0]["nearest"] == "Tony_Blair" and listed[3].startswith("nearest Tony_Blair at ")
    assert main(["--config", str(config), "unknown", "promote", visitor, "Katie Hill"]) == 0
    assert (root / "Katie Hill" / f"{visitor}.jpg").is_file() and not os.path.exists(crop)
    assert main(["--config", str(config), "unknown", "promote", "nope", "X"]) == 2
    store = UnknownStore(tmp_path / "unknown")
    old = store.save(np.zeros((20, 20, 3), np.uint8), 9, datetime(2020, 1, 1, tzinfo=timezone.utc))
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    assert main(["--config", str(config), "unknown", "purge", "--older-than", "30"]) == 0
    assert not old.exists()


# --- privacy and bounded cost (issue 10) ---


def _crop():
    return np.full((40, 40, 3), 128, np.uint8)


def test_unknown_crops_have_unique_names_and_a_rate_limit(tmp_path):
    from datetime import datetime, timezone

    from livecam.door.events import UnknownStore

    when = datetime(2026, 11, 27, 10, 0, 0, tzinfo=timezone.utc)
    first, second = UnknownStore(tmp_path / "u", per_minute=10), UnknownStore(tmp_path / "u", per_minute=10)
    a, b = first.save(_crop(), 1, when), second.save(_crop(), 1, when)  # two runs, same second, same track
    assert a != b and a.is_file() and b.is_file()
    saved = [first.save(_crop(), n, when) for n in range(2, 20)]
    assert sum(p is not None for p in saved) == 9 and first.refused == 9  # 10 a minute, the first one included
    assert len(list((tmp_path / "u").iterdir())) == 11


def test_retention_deletes_old_crops_and_audit_lines_and_the_log_goes_on(tmp_path):
    import time
    from datetime import datetime, timedelta, timezone

    from livecam.door.events import AuditLog, DoorPolicy, Event, EventSink, Retention, UnknownStore

    store = UnknownStore(tmp_path / "u", per_minute=100)
    now = datetime.now(timezone.utc)
    crops = [store.save(_crop(), n, now) for n in range(6)]
    old = time.time() - 40 * 86400
    for p in crops[:2]:
        os.utime(p, (old, old))
    audit = AuditLog(tmp_path / "events.jsonl", keep_days=365)
    for days in (400, 200, 1):
        audit.write(Event("unknown", (now - timedelta(days=days)).isoformat(), "cam", days, None, 0.7, 0.0))
    sink = EventSink("cam", DoorPolicy(2, 30), [audit], store, Retention(unknown_keep_days=30, unknown_keep_count=3))
    sink.housekeeping()
    sink.wait_housekeeping(120)  # retention runs on threads of its own (issue 18)
    assert sorted(store.list()) == sorted(crops[3:])  # 2 too old, then only the newest 3
    audit.write(Event("recognized", now.isoformat(), "cam", 9, "Ada", 0.3, 0.2))
    audit.close()
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [x["track"] for x in lines] == [200, 1, 9]
    assert stat.S_IMODE((tmp_path / "events.jsonl").stat().st_mode) == 0o600


def test_camera_credentials_never_reach_logs_errors_or_events(tmp_path, capsys, caplog, monkeypatch):
    import socket
    import time

    import livecam.live.capture as capture
    from livecam.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"rtsp://admin:s3cret@127.0.0.1:{port}/stream?token=s3cret"
    (tmp_path / "known_faces").mkdir()  # an empty gallery (a missing one is refused)
    code = main(["run", "--camera", url, "--no-window"])
    err = capsys.readouterr().err
    assert code == 2 and f"127.0.0.1:{port}" in err and "s3cret" not in err

    class Failing:  # a camera that cannot exist here: opens, gives one frame, then fails for ever
        def __init__(self):
            self.n = 0

        def isOpened(self):  # noqa: N802
            return True

        def read(self):
            self.n += 1
            return (True, np.zeros((48, 64, 3), np.uint8)) if self.n == 1 else (False, None)

        def get(self, prop):
            return 0.0

        def set(self, *args):
            return True

        def release(self):
            pass

    monkeypatch.setattr(capture, "_open_capture", lambda *a: Failing())
    monkeypatch.setattr(capture, "BACKOFF_START_S", 0.01)
    with caplog.at_level("DEBUG"):
        reader = capture.open_source(url)
        time.sleep(0.5)
        reader.close()
    assert "reconnect" in caplog.text and "s3cret" not in caplog.text and "admin" not in caplog.text


def test_one_failing_handler_never_costs_the_others_the_event(caplog):
    """The door feeds every event to each handler (audit log, actions; MQTT would be one more)."""
    from livecam.door.events import DoorPolicy, EventSink
    from livecam.engine.faces import Box
    from livecam.live.recognizer import TrackUpdate

    class Broken:
        def handle(self, event):
            raise RuntimeError("broker gone")

        def housekeeping(self):
            pass

        def close(self):
            raise OSError("still gone")

    class Keeps:
        def __init__(self):
            self.got = []

        def handle(self, event):
            self.got.append(event)

        def housekeeping(self):
            pass

        def close(self):
            self.closed = True

    keeps = Keeps()
    sink = EventSink("cam", DoorPolicy(1, 30), [Broken(), keeps])
    box = Box(0, 10, 10, 0)
    with caplog.at_level("ERROR"):
        sink.take([TrackUpdate(1, Identity.of("Ada"), 0.3, 0.2, 2, box, None, None, 1.0)], 1.0)
        sink.close()
    assert [e.name for e in keeps.got] == ["Ada"] and keeps.closed
    assert "Broken: event not handled (broker gone)" in caplog.text


def test_presence_starts_with_the_recognized_event_and_ends_when_the_name_is_gone_for_a_while():
    from livecam.door.events import PRESENT_HOLD, EventHandler, EventSink
    from livecam.live.capture import Frame
    from livecam.live.recognizer import FrameResult, TrackedFace

    class Seen(EventHandler):
        def __init__(self):
            self.calls = []

        def handle(self, event):
            pass

        def presence(self, people):
            self.calls.append((t, sorted(people)))

    seen = Seen()
    sink = EventSink("cam", DoorPolicy(2, cooldown_seconds=30), [seen], camera="door")
    image = np.zeros((4, 4, 3), np.uint8)

    def frame(t, shown, updates=()):
        faces = [TrackedFace(Box(0, 10, 10, 0), 1, identity_of(n), 0.3) for n in shown]
        sink.handle(FrameResult(Frame(int(t * 10), t, image), faces, False, 0, {}, list(updates)))

    t = 0.0
    frame(t, ["Ada"])  # named on screen, but no "recognized" event yet: not at the door
    assert seen.calls == []
    t = 0.5
    frame(t, ["Ada"], [update(1, "Ada", t=t)])
    assert seen.calls == [(0.5, ["Ada"])] and sink.events[-1].camera == "door"
    for t in (1.0, 1.5, 1.0 + PRESENT_HOLD):  # a frame without the name (re-checked) is no exit
        frame(t, [] if t == 1.5 else ["Ada"])
    assert len(seen.calls) == 1
    t = 3.0 + PRESENT_HOLD + 0.1
    frame(t, [])
    assert seen.calls[-1] == (t, [])
    t = 10.0
    frame(t, ["Ada"])  # back within the cooldown: the same visit, no new event
    assert seen.calls[-1] == (10.0, ["Ada"]) and len(sink.events) == 1
    t = 50.0
    frame(t, [])
    t = 60.0
    frame(t, ["Ada"])  # after the cooldown, a name alone is not enough: the door waits for the event
    assert seen.calls[-1] == (50.0, [])
    sink.close()


# --- issue 18: unknown purge and list, the unknown event's log line ---


def test_unknown_purge_takes_only_a_number_of_days(tmp_path, capsys):
    """nan removed nothing and -1 everything, both with exit 0."""
    crop = UnknownStore(tmp_path / "unknown").save(_crop(), 1, datetime.now(timezone.utc), "door")
    assert crop is not None
    for bad in ("nan", "inf", "-inf", "-1", "soon"):
        assert main(["unknown", "purge", f"--older-than={bad}"]) == 2, bad
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "--older-than" in err and bad in err, err
    assert crop.exists()
    assert main(["unknown", "purge", "--older-than", "0"]) == 0  # 0 days: every crop, as asked
    assert not crop.exists()


def test_unknown_list_says_when_it_is_empty_and_shows_each_crops_camera(tmp_path, capsys):
    assert main(["unknown", "list"]) == 0
    assert capsys.readouterr().out == "no unknown visitors kept in unknown\n"  # it printed nothing
    store = UnknownStore(tmp_path / "unknown")
    now = datetime.now(timezone.utc)
    front, side, back = (store.save(_crop(), n, now, cam) for n, cam in ((1, "front-door"), (2, "side"), (3, "back")))
    from livecam.door.events import Event

    with open(tmp_path / "events.jsonl", "w") as f:  # the default events_log; nothing about `back` in it
        for crop, cam, nearest, distance in ((front, "front-door", "Ada", 0.61234), (side, "side", None, np.inf)):
            when = now.isoformat()
            event = Event("unknown", when, "rtsp://c/1", 1, None, distance, 0.1, snapshot=str(crop), nearest=nearest)
            f.write(json.dumps({**json.loads(event.to_json()), "camera": cam}) + "\n")
    assert main(["unknown", "list"]) == 0
    rows = {r.split("\t")[0]: r.split("\t") for r in capsys.readouterr().out.splitlines()}
    assert rows[front.stem][2:4] == ["front-door", "nearest Ada at 0.612"]
    assert rows[side.stem][2:4] == ["side", "nearest: no one enrolled"]  # distance null in the log
    assert rows[back.stem][2:4] == ["back", "nearest: -"]  # not in the log: the camera from the crop's name


def test_the_unknown_log_line_names_the_nearest_person_like_the_json(caplog):
    """It read "event: unknown  (track 1, distance inf)" where the JSON had null, and no nearest person."""
    from livecam.door.events import EventSink
    from livecam.identity import STRANGER

    box = Box(0, 10, 10, 0)

    def face(v):
        return np.full(128, v, np.float32)

    stranger = TrackUpdate(1, STRANGER, 0.6123, 0.05, 0, box, None, None, 1.0, 3, face(0.0), nearest="Tony_Blair")
    inf = float("inf")
    nobody = TrackUpdate(2, STRANGER, inf, inf, 0, box, None, None, 1.0, 3, face(1.0))  # an empty gallery
    ada = TrackUpdate(3, Identity.of("Ada"), 0.3, 0.2, 2, box, None, None, 1.0, 3, face(-1.0))
    sink = EventSink("cam", DoorPolicy(1, 30))
    with caplog.at_level("INFO", logger="livecam.door.events"):
        sink.take([stranger, nobody, ada], 1.0, final=True)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("event:")] == [
        "event: recognized Ada (track 3, distance 0.300)",
        "event: unknown (track 1, nearest Tony_Blair at 0.612)",
        "event: unknown (track 2, no one enrolled)",
    ]
    as_json = [json.loads(e.to_json()) for e in sink.events]
    assert [(e["nearest"], e["distance"]) for e in as_json] == [(None, 0.3), ("Tony_Blair", 0.6123), (None, None)]


def test_a_run_with_no_one_enrolled_logs_unknown_events_as_such(tmp_path, data, capsys):
    (tmp_path / "known_faces").mkdir()
    clip = data / "videos" / "short_hamilton_clip.mp4"
    assert main(["run", "--camera", str(clip), "--no-window"]) == 0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    lines = [x for x in capsys.readouterr().err.splitlines() if ": event: " in x]
    assert events and all(e["kind"] == "unknown" and e["distance"] is None for e in events)
    assert lines == [
        f"livecam[short_hamilton_clip]: event: unknown (track {e['track']}, no one enrolled)" for e in events
    ]


def test_the_sink_keeps_a_bounded_number_of_events_without_their_faces():
    """Every event of a run was kept with its face crop: a 30-minute soak's door grew by 120 MB (issue 18)."""
    from dataclasses import replace

    from livecam.door.events import RECENT_EVENTS, EventHandler, EventSink
    from livecam.live.capture import Frame
    from livecam.live.recognizer import FrameResult

    class Faces(EventHandler):
        def __init__(self):
            self.with_face = 0

        def handle(self, event):
            self.with_face += event.face is not None

    handler = Faces()
    sink = EventSink("cam", DoorPolicy(2, cooldown_seconds=30), [handler], camera="door")
    image = np.zeros((4, 4, 3), np.uint8)
    crop = np.zeros((160, 160, 3), np.uint8)
    n = RECENT_EVENTS + 50
    for i in range(n):  # a new person each time: each one an event
        u = replace(update(i, f"P{i}", t=float(i)), crop=crop)
        sink.handle(FrameResult(Frame(i, float(i), image), [], False, 0, {}, [u]))
    assert handler.with_face == n  # the handlers still get the face
    assert len(sink.events) == RECENT_EVENTS and all(e.face is None for e in sink.events)
    assert sink.events[-1].name == f"P{n - 1}"
