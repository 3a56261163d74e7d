"""A bounded, on-disk queue of messages waiting for a broker (MQTT's door events).

SQLite (in the standard library) keeps the order and survives a crash or a
restart of livecam: a message leaves the queue only when the broker has
acknowledged it. The file is 0600 in livecam's private state folder, never
opened through a symlink. Each row is sealed with livecam's key (state.py) and
its own sequence number (its rowid), so a row written by anyone else (a forged
"recognized" event that a door automation would act on), or a sealed row
copied, is dropped, not sent. Past `max_messages`, the oldest are dropped,
counted and logged: a broker that is down for weeks costs a bounded amount of
disk.

Two threads, two sides. `put()` (the frame loop) only appends to a bounded
list in memory and never touches SQLite: another process holding the file
locked (a backup, `sqlite3` at a shell) must not stall the video. Everything
else (`flush()`, `first()`, `remove()`, `close()`) is the sender thread's: it
moves waiting messages into the file when the file is free, and a locked file
is "busy" (OutboxBusy, tried again), never "damaged".
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..state import cache_key, seal
from ..storage import OutputError, ensure_private_dir, open_private

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024  # an event is ~0.5 KB; a bigger row was not written by livecam
DROP_LOG_SECONDS = 60.0  # "dropped" is logged at most this often
# Events held in memory while the file is locked: ~0.5 KB each, so 5 MB at most; at one event
# a second that is almost 3 hours of a locked file.
MEMORY_MAX = 10_000
BUSY_SECONDS = 0.2  # SQLite's wait for another process's lock, per try: the sender stays responsive
SEAL_VERSION = 2  # PRAGMA user_version: rows sealed with their rowid (0: an earlier livecam's, payload only)
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
# what a file that is not an outbox of ours looks like; any other error (a full disk, I/O) is tried again
_DAMAGED_CODES = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_ERROR)


class OutboxBusy(Exception):
    """Another process holds the outbox file locked: nothing is wrong with it; try again later."""


@dataclass(frozen=True)
class Message:
    id: int
    payload: bytes


class Outbox:
    """FIFO of payloads on disk: put() from the frame loop; the rest from one thread (the sender)."""

    def __init__(self, path: Path, max_messages: int, state: Path | None = None, memory_max: int = MEMORY_MAX) -> None:
        self.path = Path(path)
        self.max_messages = max_messages
        self.memory_max = memory_max
        self.dropped = 0  # oldest rows dropped past max_messages
        self.overflowed = 0  # events refused because memory was full (the file locked that long)
        self._last_drop_log = -1e18
        self._key = cache_key(folder=state)  # `state`: the config's state_dir (None: the default)
        assert self._key is not None
        ensure_private_dir(self.path.parent)
        os.close(open_private(self.path, append=True))  # 0600, refused if a link: before SQLite opens it by name
        self._waiting: deque[bytes] = deque()  # put() but not yet in the file
        self._rows = 0  # rows in the file, as last counted
        self._count_lock = threading.Lock()  # _waiting and _rows: len() from any thread never touches SQLite
        self._db_lock = threading.RLock()  # the connection: the sender's, and close() once the sender is done
        self._db: sqlite3.Connection | None = None  # opened by the sender, when the file is free
        self._closed = False
        self._delivered = 0  # rows up to this one are delivered: never sent again (a copy put back neither)...
        self._deleted = 0  # ...and deleted up to this one (the rest as soon as the file is free)

    # -- the frame loop's side -----------------------------------------------------------------------
    def put(self, payload: bytes) -> bool:
        """Queue `payload` without waiting for anything; False (counted, warned once) when memory is full."""
        with self._count_lock:
            if len(self._waiting) >= self.memory_max:
                self.overflowed += 1
                first = self.overflowed == 1
            else:
                self._waiting.append(payload)
                return True
        if first:
            log.warning(
                "%s: %d events wait in memory, the most livecam holds, because the file has been locked by another"
                " process all this time; newer events are dropped (counted) until it is free",
                self.path, self.memory_max,
            )  # fmt: skip
        return False

    def __len__(self) -> int:
        """Messages waiting, in memory and in the file."""
        with self._count_lock:
            return len(self._waiting) + self._rows

    # -- the sender's side ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Move the messages waiting in memory into the file (and delete delivered rows); OutboxBusy if locked."""
        with self._db_lock:
            db = self._connection()
            with self._count_lock:
                batch = list(self._waiting)
            delivered = self._delivered
            if not batch and delivered <= self._deleted:
                return
            try:
                db.execute("BEGIN IMMEDIATE")
                if delivered > self._deleted:
                    db.execute("DELETE FROM outbox WHERE id <= ?", (delivered,))
                for payload in batch:
                    # the seal covers the rowid, known once the row is in: a copied row gets another one
                    rowid = db.execute("INSERT INTO outbox (payload, mac) VALUES (?, '')", (payload,)).lastrowid
                    db.execute("UPDATE outbox SET mac = ? WHERE id = ?", (self._mac(rowid, payload), rowid))
                rows = int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
                excess = max(0, rows - self.max_messages)
                if excess:
                    oldest = "SELECT id FROM outbox ORDER BY id LIMIT ?"
                    db.execute(f"DELETE FROM outbox WHERE id IN ({oldest})", (excess,))  # noqa: S608 - no input
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise _busy(exc) from None
            self._deleted = delivered
            with self._count_lock:
                for _ in batch:
                    self._waiting.popleft()
                self._rows = rows - excess
        if excess:
            self._log_dropped(excess)

    def first(self) -> Message | None:
        """The oldest message; rows that are not livecam's (bad seal, too big, a copy, one delivered
        already) are dropped on the way. OutboxBusy while another process holds the file."""
        self.flush()  # what waits in memory is newer than the file's rows, and goes after them
        with self._db_lock:
            db = self._connection()
            try:
                while True:
                    row = db.execute(
                        "SELECT id, length(payload) > ?, mac FROM outbox ORDER BY id LIMIT 1", (MAX_MESSAGE_BYTES,)
                    ).fetchone()
                    if row is None:
                        return None
                    rowid, too_big, mac = row
                    payload = b""
                    if not too_big:
                        payload = bytes(db.execute("SELECT payload FROM outbox WHERE id = ?", (rowid,)).fetchone()[0])
                    sealed = isinstance(mac, str) and hmac.compare_digest(mac, self._mac(rowid, payload))
                    if not too_big and sealed and rowid > self._delivered:
                        return Message(rowid, payload)
                    log.warning(
                        "%s: message %d is not one livecam wrote (seal, sequence or size): dropped", self.path, rowid
                    )
                    db.execute("DELETE FROM outbox WHERE id = ?", (rowid,))
                    self._count()
            except sqlite3.Error as exc:
                raise _busy(exc) from None

    def remove(self, message_id: int) -> None:
        """The broker has the message (and every one before it): delete it now, or once the file is free."""
        with self._db_lock:
            self._delivered = max(self._delivered, message_id)
            with contextlib.suppress(OutboxBusy):
                self.flush()

    def close(self, wait: float = 0.0) -> None:
        """Put what still waits in memory into the file, trying for up to `wait` seconds while another
        process holds it locked; what cannot be kept is said, with how many."""
        with self._db_lock:
            if self._closed:
                return
            problem = self._flush_until(time.monotonic() + wait)
            with self._count_lock:
                lost, self._waiting = len(self._waiting), deque()
            if lost:
                log.error("%s: %d events could not be kept (%s): lost", self.path, lost, problem)
            if self.overflowed:
                log.error("%s: %d events were dropped while the file was locked", self.path, self.overflowed)
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None
            self._closed = True

    def _flush_until(self, deadline: float) -> Exception | None:
        """flush(), tried again while the file is locked until `deadline`; the problem left, if any."""
        while True:
            try:
                self.flush()
                return None
            except OutboxBusy as exc:
                if time.monotonic() >= deadline:
                    return exc
                time.sleep(0.05)
            except (sqlite3.Error, OSError) as exc:
                return exc

    # -- SQLite ------------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise OutboxBusy("closed")  # a sender still running after close() stores nothing more
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_SECONDS)
        try:
            db.execute("PRAGMA trusted_schema=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL,"
                " mac TEXT NOT NULL)"
            )
            db.execute("SELECT id, payload, mac FROM outbox LIMIT 0").fetchall()  # our columns, or damaged
            self._upgrade_seals(db)
            rows = int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            db.close()
            if _code(exc) not in _DAMAGED_CODES:
                raise _busy(exc) from None  # locked by another process, a full disk...: not damaged, tried again
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            os.replace(self.path, aside)  # not an outbox of ours: kept aside, an empty one started
            log.error("%s: not a readable outbox (%s); moved to %s, starting an empty one", self.path, exc, aside.name)
            os.close(open_private(self.path, append=True))
            return self._open()
        with self._count_lock:
            self._rows = rows
        if rows:
            log.info("%s: %d events from an earlier run wait to be sent", self.path, rows)
        return db

    def _upgrade_seals(self, db: sqlite3.Connection) -> None:
        """Rows an earlier livecam sealed (payload only) are sealed again with their rowid, once."""
        if int(db.execute("PRAGMA user_version").fetchone()[0]) >= SEAL_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            for rowid, payload, mac in db.execute("SELECT id, payload, mac FROM outbox").fetchall():
                old = seal(self._key, b"livecam-outbox", self.path.name.encode(), bytes(payload))
                if isinstance(mac, str) and hmac.compare_digest(mac, old):  # others are dropped when read
                    db.execute("UPDATE outbox SET mac = ? WHERE id = ?", (self._mac(rowid, bytes(payload)), rowid))
            db.execute(f"PRAGMA user_version = {SEAL_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    def _mac(self, rowid: int, payload: bytes) -> str:
        return seal(self._key, b"livecam-outbox-v2", self.path.name.encode(), str(rowid).encode(), payload)

    def _count(self) -> None:
        assert self._db is not None
        rows = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        with self._count_lock:
            self._rows = rows

    def _log_dropped(self, excess: int) -> None:
        self.dropped += excess
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_SECONDS:
            self._last_drop_log = now
            log.warning(
                "%s: full (%d messages waiting for the broker): dropped the oldest; %d dropped in all",
                self.path, self.max_messages, self.dropped,
            )  # fmt: skip


def _code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", None) or sqlite3.SQLITE_ERROR) & 0xFF  # extended codes: low byte


def _busy(exc: sqlite3.Error) -> Exception:
    """OutboxBusy for a lock held by another process; the error itself otherwise."""
    return OutboxBusy(str(exc)) if _code(exc) in _BUSY_CODES else exc


def open_outbox(path: Path, max_messages: int, state: Path | None = None) -> Outbox:
    """The outbox at `path`, sealed with the key in state folder `state`; OutputError (one line) if unusable."""
    try:
        return Outbox(path, max_messages, state)
    except OutputError as exc:
        raise OutputError(f"the MQTT outbox (mqtt.outbox): {exc}") from None
    except OSError as exc:  # StateError (no usable key) is an OSError too
        why = getattr(exc, "strerror", None) or exc
        raise OutputError(f"{path}: cannot use as the MQTT outbox ({why})") from None
