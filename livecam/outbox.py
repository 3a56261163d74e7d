"""A bounded, on-disk queue of messages waiting for a broker (MQTT's door events).

SQLite (in the standard library) keeps the order and survives a crash or a
restart of livecam: a message leaves the queue only when the broker has
acknowledged it. The file is 0600 in livecam's private state folder, never
opened through a symlink. Each row is sealed with livecam's key (state.py), so
a row written by anyone else (a forged "recognized" event that a door
automation would act on) is dropped, not sent. Past `max_messages`, the oldest
are dropped, counted and logged: a broker that is down for weeks costs a
bounded amount of disk.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .state import cache_key, seal
from .storage import OutputError, ensure_private_dir, open_private

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024  # an event is ~0.5 KB; a bigger row was not written by livecam
DROP_LOG_SECONDS = 60.0  # "dropped" is logged at most this often


@dataclass(frozen=True)
class Message:
    id: int
    payload: bytes


class Outbox:
    """FIFO of payloads on disk: put() (any thread), first() and remove() (the sender)."""

    def __init__(self, path: Path, max_messages: int, state: Path | None = None) -> None:
        self.path = Path(path)
        self.max_messages = max_messages
        self.dropped = 0
        self._last_drop_log = -1e18
        self._lock = threading.RLock()  # one SQLite connection, used by the frame loop and the sender
        self._key = cache_key(folder=state)  # `state`: the config's state_dir (None: the default)
        assert self._key is not None
        ensure_private_dir(self.path.parent)
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        os.close(open_private(self.path, append=True))  # 0600, refused if a link: before SQLite opens it by name
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
        try:
            db.execute("PRAGMA trusted_schema=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL,"
                " mac TEXT NOT NULL)"
            )
            db.execute("SELECT count(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError as exc:  # not an outbox of ours: keep it aside, start an empty one
            db.close()
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            os.replace(self.path, aside)
            log.error("%s: not a readable outbox (%s); moved to %s, starting an empty one", self.path, exc, aside.name)
            return self._open()
        return db

    def _mac(self, payload: bytes) -> str:
        return seal(self._key, b"livecam-outbox", str(self.path.name).encode(), payload)

    def put(self, payload: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT INTO outbox (payload, mac) VALUES (?, ?)", (payload, self._mac(payload)))
            excess = len(self) - self.max_messages
            if excess > 0:
                oldest = "SELECT id FROM outbox ORDER BY id LIMIT ?"
                self._db.execute(f"DELETE FROM outbox WHERE id IN ({oldest})", (excess,))  # noqa: S608 - no input
                self.dropped += excess
                now = time.monotonic()
                if now - self._last_drop_log >= DROP_LOG_SECONDS:
                    self._last_drop_log = now
                    log.warning(
                        "%s: full (%d messages waiting for the broker): dropped the oldest; %d dropped in all",
                        self.path, self.max_messages, self.dropped,
                    )  # fmt: skip

    def first(self) -> Message | None:
        """The oldest message; rows that are not livecam's (bad seal, too big) are dropped on the way."""
        with self._lock:
            while True:
                row = self._db.execute(
                    "SELECT id, length(payload) > ?, mac FROM outbox ORDER BY id LIMIT 1", (MAX_MESSAGE_BYTES,)
                ).fetchone()
                if row is None:
                    return None
                rowid, too_big, mac = row
                payload = b""
                if not too_big:
                    payload = bytes(self._db.execute("SELECT payload FROM outbox WHERE id = ?", (rowid,)).fetchone()[0])
                if not too_big and isinstance(mac, str) and hmac.compare_digest(mac, self._mac(payload)):
                    return Message(rowid, payload)
                log.warning("%s: message %d is not one livecam wrote (seal or size): dropped", self.path, rowid)
                self._db.execute("DELETE FROM outbox WHERE id = ?", (rowid,))

    def remove(self, message_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()


def open_outbox(path: Path, max_messages: int, state: Path | None = None) -> Outbox:
    """The outbox at `path`, sealed with the key in state folder `state`; OutputError (one line) if unusable."""
    try:
        return Outbox(path, max_messages, state)
    except OutputError as exc:
        raise OutputError(f"the MQTT outbox (mqtt.outbox): {exc}") from None
    except (sqlite3.Error, OSError) as exc:  # StateError (no usable key) is an OSError too
        why = getattr(exc, "strerror", None) or exc
        raise OutputError(f"{path}: cannot use as the MQTT outbox ({why})") from None
