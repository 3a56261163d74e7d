"""The MQTT outbox on its own (real SQLite files): bounded, private, sealed rows (a forged, edited or
copied row is never sent), and a file locked by another process is busy, never damaged, and never
makes put() wait."""

from __future__ import annotations

import logging
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from livecam.connect.outbox import Outbox, OutboxBusy
from livecam.state import cache_key, seal


def drain(box: Outbox) -> list[bytes]:
    seen = []
    while (m := box.first()) is not None:
        seen.append(m.payload)
        box.remove(m.id)
    return seen


@pytest.fixture
def path(tmp_path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    return folder / "outbox.sqlite"


def hold_lock(path: Path) -> sqlite3.Connection:
    """Another process's lock (a backup, `sqlite3` at a shell): BEGIN EXCLUSIVE keeps readers out too."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_outbox_is_bounded_private_and_drops_rows_it_did_not_write(path, caplog):
    box = Outbox(path, 3)
    for n in range(5):
        box.put(f"e{n}".encode())
    box.flush()
    assert len(box) == 3 and box.dropped == 2
    assert box.first().payload == b"e2"  # the oldest were dropped
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    box.close()
    # a forged "recognized" event written into the file by someone else is never sent
    db = sqlite3.connect(path)
    db.execute("INSERT INTO outbox (payload, mac) VALUES (?, ?)", (b'{"kind": "recognized", "name": "Eve"}', "0" * 64))
    db.execute("UPDATE outbox SET payload = ? WHERE payload = ?", (b"e9", b"e3"))  # edited
    db.commit()
    db.close()
    box = Outbox(path, 3)
    assert drain(box) == [b"e2", b"e4"]
    assert "not one livecam wrote" in caplog.text
    box.close()
    # not a database: kept aside, an empty outbox instead; a symlink: refused
    path.write_bytes(b"garbage" * 100)
    box = Outbox(path, 3)
    assert box.first() is None and list(path.parent.glob("outbox.sqlite.damaged-*"))
    box.close()
    link = path.parent / "link.sqlite"
    link.symlink_to(path.parent / "elsewhere")
    with pytest.raises(OSError, match="symbolic link"):
        Outbox(link, 3)
    assert not (path.parent / "elsewhere").exists()


def test_a_sealed_row_copied_with_plain_sql_is_sent_once(path, caplog):
    """A row copied 3 times with plain SQL was delivered 4 times: the seal covered the payload only."""
    box = Outbox(path, 100)
    box.put(b'{"kind": "recognized", "name": "Ada"}')
    box.close()
    db = sqlite3.connect(path)
    for _ in range(3):
        db.execute("INSERT INTO outbox (payload, mac) SELECT payload, mac FROM outbox ORDER BY id LIMIT 1")
    db.commit()
    db.close()
    box = Outbox(path, 100)
    assert drain(box) == [b'{"kind": "recognized", "name": "Ada"}']
    assert caplog.text.count("not one livecam wrote") == 3
    box.close()
    # the delivered row put back under its own number (and seal) is not sent again by this run
    box = Outbox(path, 100)
    box.put(b"a")
    first = box.first()
    row = sqlite3.connect(path).execute("SELECT id, payload, mac FROM outbox").fetchone()
    box.remove(first.id)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO outbox (id, payload, mac) VALUES (?, ?, ?)", row)
    db.commit()
    db.close()
    box.put(b"b")
    assert drain(box) == [b"b"]
    box.close()


def test_rows_an_earlier_livecam_sealed_are_sealed_again_once_and_sent(path):
    """An upgrade keeps the events waiting in the outbox (sealed without their rowid)."""
    state = path.parent / "st"
    box = Outbox(path, 100, state)  # makes the table and the key
    box.close()
    key = cache_key(folder=state)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    for payload in (b"old-1", b"old-2"):
        db.execute(
            "INSERT INTO outbox (payload, mac) VALUES (?, ?)",
            (payload, seal(key, b"livecam-outbox", path.name.encode(), payload)),
        )
    db.commit()
    db.close()
    box = Outbox(path, 100, state)
    box.put(b"new")
    assert drain(box) == [b"old-1", b"old-2", b"new"]
    box.close()


def test_a_locked_file_is_busy_not_damaged_and_put_never_waits(path, caplog):
    box = Outbox(path, 100)
    box.put(b"e1")
    box.put(b"e2")
    box.close()
    other = hold_lock(path)
    box = Outbox(path, 100)
    assert not list(path.parent.glob("*.damaged-*"))  # it was moved aside as "damaged"
    start = time.monotonic()
    for n in range(3, 8):
        box.put(f"e{n}".encode())
    assert time.monotonic() - start < 1.0  # SQLite waited 5 s per event here
    with pytest.raises(OutboxBusy):
        box.first()
    assert len(box) == 5  # in memory, none lost
    other.execute("COMMIT")
    other.close()
    assert drain(box) == [b"e1", b"e2", b"e3", b"e4", b"e5", b"e6", b"e7"]  # in order
    assert not list(path.parent.glob("*.damaged-*"))
    box.close()


def test_memory_overflow_while_locked_is_one_warning_and_counted(path, caplog):
    caplog.set_level(logging.WARNING)
    box = Outbox(path, 100, memory_max=3)
    box.flush()
    other = hold_lock(path)
    accepted = [box.put(f"e{n}".encode()) for n in range(6)]
    assert accepted == [True, True, True, False, False, False] and box.overflowed == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "newer events are dropped" in warnings[0].getMessage()
    other.execute("COMMIT")
    other.close()
    assert drain(box) == [b"e0", b"e1", b"e2"]
    box.close()
    assert "3 events were dropped while the file was locked" in caplog.text


def test_close_waits_a_moment_for_a_lock_then_says_what_it_could_not_keep(path, caplog):
    box = Outbox(path, 100)
    box.flush()
    other = hold_lock(path)
    box.put(b"e1")
    box.close(wait=0.3)
    assert "1 events could not be kept" in caplog.text
    other.execute("COMMIT")
    other.close()
