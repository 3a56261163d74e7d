"""The audit log's retention (issue 18): off the frame loop, streamed in bounded memory, no event lost,
unreadable lines skipped with one warning; `run` and `unknown list` survive a hostile line."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import threading
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

import livecam.door.events as events
from livecam.cli import main
from livecam.door.events import AuditLog, DoorPolicy, Event, EventSink, UnknownStore
from livecam.live.capture import Frame
from livecam.live.recognizer import FrameResult

NOW = datetime.now(timezone.utc)
BRACKETS = "[" * 200_000  # json.loads raised RecursionError on it: a traceback, exit 1, a crash loop as a service
DEEP = "[" * 5_000  # short enough to be parsed, still past the parser's depth


def audit_line(track: int, days_old: float, snapshot: str | None = None) -> str:
    when = (NOW - timedelta(days=days_old)).isoformat(timespec="milliseconds")
    return Event("unknown", when, "/srv/door.mp4", track, None, 0.61, 0.1, snapshot=snapshot, camera="door").to_json()


def write_log(path: Path, megabytes: float, bad: tuple[str, ...] = ()) -> tuple[int, int]:
    """A log of `megabytes`: its first half two years old, the rest a day old, `bad` lines in the middle;
    (old lines, recent lines)."""
    n = int(megabytes * (1 << 20) / (len(audit_line(0, 700)) + 1))
    old = n // 2
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(audit_line(i, 700) + "\n" for i in range(old))
        f.writelines(line + "\n" for line in bad)
        f.writelines(audit_line(i, 1) + "\n" for i in range(old, n))
    os.chmod(path, 0o600)
    return old, n - old


def tracks(path: Path) -> list[int]:
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError, RecursionError, TypeError, KeyError):  # the test's own bad lines
            out.append(json.loads(line)["track"])
    return out


def test_prune_streams_a_big_log_in_bounded_memory(tmp_path):
    path = tmp_path / "events.jsonl"
    old, recent = write_log(path, 24)
    audit = AuditLog(path, keep_days=365)
    tracemalloc.start()
    try:
        dropped = audit.prune(365)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    audit.close()
    assert dropped == old
    assert tracks(path) == list(range(old, old + recent))
    # read whole, 24 MB were 24 MB of bytes and as much again in lines (400 MB took 1.4 GB of RSS)
    assert peak < 4 << 20, f"prune held {peak >> 20} MB"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]  # no temporary file left


def test_prune_skips_lines_it_cannot_read_with_one_warning(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    old, recent = write_log(path, 1, bad=(BRACKETS, DEEP, "not json", '{"kind": "unknown"}', ""))
    audit = AuditLog(path, keep_days=365)
    with caplog.at_level(logging.WARNING, logger="livecam.door.events"):
        assert audit.prune(365) == old
    audit.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "4 line(s) could not be read" in warnings[0], warnings
    assert "3 kept as they are" in warnings[0] and "1 longer than 65536 bytes dropped" in warnings[0]
    lines = path.read_text().splitlines()
    # undated lines stay (an audit log deletes only what it can date as old); the over-long one is gone
    assert lines[:3] == [DEEP, "not json", '{"kind": "unknown"}'] and BRACKETS not in lines
    assert tracks(path) == list(range(old, old + recent))


def test_retention_runs_beside_the_loop_and_no_event_written_meanwhile_is_lost(tmp_path, monkeypatch):
    """The prune is held in the middle of the log; the loop's frames and events go on, and every
    event written meanwhile is in the log after the rewrite, once, in order."""
    path = tmp_path / "events.jsonl"
    old, recent = write_log(path, 2)
    reached, go = threading.Event(), threading.Event()
    where: list[str] = []

    class Held(datetime):  # the prune dates each line: it is held at its first one
        @classmethod
        def fromisoformat(cls, text: str) -> datetime:
            if not reached.is_set():
                where.append(threading.current_thread().name)
                reached.set()
                go.wait(20)  # bounded: a prune on the loop's own thread would hold the test here
            return datetime.fromisoformat(text)

    monkeypatch.setattr(events, "datetime", Held)
    audit = AuditLog(path, keep_days=365)
    sink = EventSink("door", DoorPolicy(1, 30), [audit])
    image = np.zeros((4, 4, 3), np.uint8)
    sink.handle(FrameResult(Frame(0, 0.0, image), [], False, 0, {}, []))  # the first frame starts retention
    assert reached.wait(60)
    assert where == ["audit-retention"]  # not the loop's thread
    for n in range(100):  # the loop's frames and events go on while the prune is held mid-file
        sink.handle(FrameResult(Frame(n + 1, (n + 1) / 30, image), [], False, 0, {}, []))
        audit.handle(Event("recognized", NOW.isoformat(), "door", 10_000 + n, "Ada", 0.3, 0.2))
    go.set()
    sink.wait_housekeeping(120)
    audit.write(Event("recognized", NOW.isoformat(), "door", 20_000, "Ada", 0.3, 0.2))  # after the swap
    sink.close()
    expected = [*range(old, old + recent), *range(10_000, 10_100), 20_000]
    assert tracks(path) == expected
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]


def test_a_run_that_stops_during_a_prune_leaves_the_log_whole(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    write_log(path, 1)
    before = path.read_bytes()
    reached = threading.Event()

    class Held(datetime):
        @classmethod
        def fromisoformat(cls, text: str) -> datetime:
            if not reached.is_set():
                reached.set()
                # still in the middle of the log when the run stops
                getattr(audit, "_stop_pruning", threading.Event()).wait(30)
            return datetime.fromisoformat(text)

    monkeypatch.setattr(events, "datetime", Held)
    monkeypatch.setattr(events, "PRUNE_CLOSE_GRACE", 0.0, raising=False)
    audit = AuditLog(path, keep_days=365)
    audit.housekeeping()
    assert reached.wait(60)
    audit.write(Event("recognized", NOW.isoformat(), "door", 7, "Ada", 0.3, 0.2))
    audit.close()
    after = path.read_bytes()
    assert after.startswith(before) and json.loads(after[len(before) :])["track"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]


def test_run_on_a_big_log_with_a_hostile_line_goes_on_and_prunes_beside_the_loop(
    tmp_path, data, make_gallery, monkeypatch, capsys, caplog
):
    """A real run: 20 MB of audit log (half of it old), a line of 200,000 '[' and one past the parser's
    depth. Exit 0, no traceback, every frame in --log-json, the prune done on its own thread."""
    root = make_gallery({})
    shutil.copytree(data / "identities_extra" / "Lin_Manuel_Miranda", root / "Lin_Manuel_Miranda")
    log_path = tmp_path / "events.jsonl"
    old, recent = write_log(log_path, 20, bad=(BRACKETS, DEEP))
    (tmp_path / "config.yaml").write_text(f"known_faces: {root}\ndoor:\n  events_log: events.jsonl\n")
    # a file run ends within seconds: the prune may finish (in a service it runs for as long as it needs)
    monkeypatch.setattr(events, "PRUNE_CLOSE_GRACE", 300.0, raising=False)
    with caplog.at_level(logging.INFO):
        code = main(
            [
                "--config",
                str(tmp_path / "config.yaml"),
                "run",
                "--camera",
                str(data / "videos" / "short_hamilton_clip.mp4"),
                "--no-window",
                "--log-json",
                str(tmp_path / "frames.jsonl"),
            ]
        )
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err and "RecursionError" not in err
    frames = [json.loads(line)["frame"] for line in (tmp_path / "frames.jsonl").read_text().splitlines()]
    assert frames == list(range(len(frames))) and len(frames) > 200  # every frame, in order
    done = [r for r in caplog.records if "retention: dropped" in r.getMessage()]
    assert len(done) == 1 and done[0].threadName == "audit-retention", [r.getMessage() for r in caplog.records]
    assert f"dropped {old} audit log line(s)" in done[0].getMessage()
    warned = [r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(warned) == 1 and "2 line(s) could not be read" in warned[0]
    after = [json.loads(line) for line in log_path.read_text().splitlines() if line != DEEP]
    assert [e["track"] for e in after[:recent]] == list(range(old, old + recent))
    assert [e["name"] for e in after[recent:]] == ["Lin_Manuel_Miranda"]  # the run's event, after the prune
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600


def test_unknown_list_skips_a_hostile_line_with_one_warning(tmp_path, capsys):
    store = UnknownStore(tmp_path / "unknown")
    crop = store.save(np.full((40, 40, 3), 128, np.uint8), 3, NOW, "front-door")
    assert crop is not None
    log_path = tmp_path / "events.jsonl"
    log_path.write_text("\n".join([BRACKETS, DEEP, audit_line(3, 1, snapshot=str(crop))]) + "\n")
    (tmp_path / "known_faces").mkdir()
    (tmp_path / "config.yaml").write_text(
        "known_faces: known_faces\ndoor:\n  events_log: events.jsonl\n  unknown_dir: unknown\n"
    )
    assert main(["--config", str(tmp_path / "config.yaml"), "unknown", "list"]) == 0
    out, err = capsys.readouterr()
    row = out.rstrip("\n").split("\t")
    assert row[:3] == [crop.stem, json.loads(audit_line(3, 1))["time"], "door"]  # the log's time and camera
    assert "Traceback" not in err and err.count("could not be read") == 1 and "2 line(s)" in err


@pytest.fixture(autouse=True)
def _fast_rests(monkeypatch):
    """Tests need not share the GIL politely."""
    monkeypatch.setattr(events, "PRUNE_REST_S", 0.0005, raising=False)
