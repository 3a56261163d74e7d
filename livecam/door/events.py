"""Door decisions, the audit log, actions, and unknown visitors.

* A "recognized" event needs a named track whose recent encodings agree
  (`min_agree`) and whose pooled match is within the threshold with the
  margin; a per-person cooldown makes one visit one event.
* An "unknown" event waits until the track has had its chance and is sent
  once per stranger's visit; its best face crop is kept in `unknown/` (0600
  files in a 0700 folder).
* Actions (`actions.py`) run on their own thread behind a bounded queue: a
  slow or dead webhook never slows the video.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from ..config import DoorConfig
from ..engine import MAX_FILE_BYTES, face_distance
from ..live import FrameResult, TrackUpdate
from ..models import DLIB
from ..storage import PRIVATE_FILE, atomic_write_bytes, ensure_private_dir, open_private, read_regular

log = logging.getLogger(__name__)

UNKNOWN_HOLD = 1.0  # seconds an ended unknown track waits for the same face to be named on a new track


@dataclass(frozen=True)
class Event:
    kind: str  # "recognized" or "unknown"
    time: str  # ISO 8601, UTC
    source: str
    track: int
    name: str | None
    distance: float
    margin: float
    liveness: str | None = None
    snapshot: str | None = None
    frame: int | None = None  # index of the frame in its source
    t: float | None = None  # source time of that frame, seconds
    nearest: str | None = None  # unknown events: the enrolled person this face was nearest to (not a match)
    camera: str | None = None  # the camera's name (camera.name, --name)
    # the face's best view (BGR), for handlers that show it (MQTT's snapshot); never in the JSON
    face: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> str:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "face"}
        d["distance"] = round(self.distance, 4) if np.isfinite(self.distance) else None
        d["margin"] = round(self.margin, 4) if np.isfinite(self.margin) else None
        d["t"] = None if self.t is None else round(self.t, 3)
        return json.dumps(d, ensure_ascii=False)

    def describe(self) -> str:
        """One log line's words for the event; a distance that is null in the JSON is no number here."""
        if self.kind == "unknown":
            # who the stranger looked like; only an empty gallery leaves a decided stranger with no nearest
            near = self.nearest is not None and np.isfinite(self.distance)
            looked = f"nearest {self.nearest} at {self.distance:.3f}" if near else "no one enrolled"
            return f"unknown (track {self.track}, {looked})"
        distance = f"distance {self.distance:.3f}" if np.isfinite(self.distance) else "no distance"
        return f"{self.kind} {self.name} (track {self.track}, {distance})"


class EventHandler:
    """Receives every door event, in order (the audit log, actions, MQTT); the other hooks are optional."""

    def handle(self, event: Event) -> None:
        raise NotImplementedError

    def presence(self, people: frozenset[str]) -> None:
        """Who is at the door now (EventSink.presence says what that means); called when it changes."""

    def enrolled(self, people: Sequence[str]) -> None:
        """The gallery's people (at start and after each reload)."""

    def housekeeping(self) -> None:
        """Retention: at start, then daily."""

    def close(self) -> None:
        """The run ends."""


@dataclass
class _Waiting:
    """A track shown as unknown whose "unknown" event waits for the track to have had its chance."""

    update: TrackUpdate  # its latest standing
    since: float  # source time it was first shown as unknown
    ended_at: float | None = None


class DoorPolicy:
    """Turns track updates into events: one visit, one correct line.

    * "recognized": a named track whose recent encodings agree (`min_agree`),
      that has blinked when liveness is on; then a per-person cooldown.
    * "unknown" waits: a track shown as unknown gets its event only when it has
      been unknown for `unknown_wait_seconds` with `unknown_min_encodings`
      encodings, or `UNKNOWN_HOLD` seconds after it ended unnamed, and never
      when a track of the same face (its embedding within the model's same_face_distance)
      has been named meanwhile: a known person seen badly at first, or whose
      track broke, is not reported as a stranger. Unknown events of one face
      within the cooldown are one visit.

    Times are the frames' source times, so a file gives the same events on every run.
    """

    def __init__(
        self,
        min_agree: int,
        cooldown_seconds: float,
        unknown_wait_seconds: float = DoorConfig.unknown_wait_seconds,
        unknown_min_encodings: int = 3,
        same_face_distance: float = DLIB.same_face_distance,
    ) -> None:
        self.same_face = same_face_distance
        self.min_agree = min_agree
        self.cooldown = cooldown_seconds
        self.unknown_wait = unknown_wait_seconds
        self.unknown_min_encodings = unknown_min_encodings
        self._last_by_person: dict[str, float] = {}
        self._announced: set[int] = set()  # tracks that had their event
        self._waiting: dict[int, _Waiting] = {}
        self._recent_unknown: list[tuple[float, np.ndarray]] = []  # (time, embedding) of unknown events
        self._named: list[tuple[float, np.ndarray]] = []  # (time, embedding) of named tracks, for a while

    def consider(self, update: TrackUpdate) -> str | None:
        """The kind of event this update triggers now ("recognized"), if any; unknowns come from `due`."""
        identity = update.identity
        if update.ended:
            self._announced.discard(update.track)
            if update.track in self._waiting:
                self._waiting[update.track].ended_at = update.t
            return None
        if not identity.decided:
            return None
        if identity.is_stranger:
            waiting = self._waiting.get(update.track)
            if update.track not in self._announced:
                self._waiting[update.track] = _Waiting(update, waiting.since if waiting else update.t)
            return None
        if update.embedding is not None:
            self._named.append((update.t, update.embedding))
            self._cancel_waiting_like(update.embedding)
        if update.track in self._announced or update.agreeing < self.min_agree:
            return None
        if update.alive is False:
            return None  # liveness is on and this face has not blinked since it was named
        self._announced.add(update.track)
        person = identity.person
        assert person is not None
        last = self._last_by_person.get(person)
        self._last_by_person[person] = update.t
        if last is not None and update.t - last < self.cooldown:
            return None  # the same visit, seen again (e.g. a new track after a turn of the head)
        return "recognized"

    def due(self, now: float, final: bool = False) -> list[TrackUpdate]:
        """Waiting unknowns whose time has come (all of them when `final`: the run ends)."""
        self._named = [(t, e) for t, e in self._named if now - t <= max(self.cooldown, UNKNOWN_HOLD)]
        out = []
        for track, w in list(self._waiting.items()):
            ready = (
                final
                or (w.ended_at is not None and now - w.ended_at >= UNKNOWN_HOLD)
                or (
                    w.ended_at is None
                    and now - w.since >= self.unknown_wait
                    and w.update.encodings >= self.unknown_min_encodings
                )
            )
            if not ready:
                continue
            del self._waiting[track]
            if w.ended_at is None:
                self._announced.add(track)
            if self._seen_before(w.update, now):
                continue
            out.append(w.update)
        return out

    def _cancel_waiting_like(self, embedding: np.ndarray) -> None:
        for track, w in list(self._waiting.items()):
            if w.update.embedding is not None and face_distance(w.update.embedding, embedding) <= self.same_face:
                log.debug("track %d is not a stranger: the same face was named", track)
                del self._waiting[track]

    def _seen_before(self, update: TrackUpdate, now: float) -> bool:
        """The same face was named, or announced as unknown, within the cooldown: the same visit."""
        self._recent_unknown = [(t, e) for t, e in self._recent_unknown if now - t < self.cooldown]
        e = update.embedding
        if e is None:
            return False
        if any(face_distance(e, other) <= self.same_face for _, other in self._named):
            return True
        if any(face_distance(e, other) <= self.same_face for _, other in self._recent_unknown):
            return True
        self._recent_unknown.append((now, e))
        return False


class AuditLog(EventHandler):
    """Append-only JSON lines, 0600 (made so even if the file was there with another mode), never
    written through a symlink; each line flushed as it is written.

    Retention (`keep_days`) runs on a thread of its own, streaming the log line by line: a 400 MB
    log read whole on the first frame held the loop 9.7 s and took 1.4 GB. The loop keeps writing
    meanwhile; the prune copies those lines too, under the lock, before it swaps the file."""

    def __init__(self, path: Path, keep_days: float | None = None) -> None:
        self.path = Path(path)
        self.keep_days = keep_days  # retention (door.events_keep_days); None: kept
        self._lock = threading.Lock()  # held by each write and by a prune's final copy and swap
        self._file = self._open()
        self._closed = False
        self._pruner: threading.Thread | None = None
        self._stop_pruning = threading.Event()

    def _open(self):
        return os.fdopen(open_private(self.path, append=True), "a", encoding="utf-8")

    def write(self, event: Event) -> None:
        line = event.to_json() + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    handle = write  # an EventHandler

    def housekeeping(self) -> None:
        """Start retention on its own thread (at most one at a time) and return at once."""
        if self.keep_days is None or (self._pruner is not None and self._pruner.is_alive()):
            return
        keep_days = self.keep_days
        self._pruner = _in_background("audit-retention", lambda: self._retention(keep_days))

    def wait_housekeeping(self, timeout: float | None = None) -> bool:
        """Wait for a retention started by housekeeping(); False if it is still running."""
        if self._pruner is not None:
            self._pruner.join(timeout)
            return not self._pruner.is_alive()
        return True

    def _retention(self, keep_days: float) -> None:
        started = time.monotonic()
        dropped = self.prune(keep_days)
        if dropped:
            log.info(
                "retention: dropped %d audit log line(s) older than %g days (%.1f s)",
                dropped,
                keep_days,
                time.monotonic() - started,
            )

    def prune(self, keep_days: float, now: datetime | None = None) -> int:
        """Drop lines older than `keep_days`; returns how many. Bounded memory, any thread.

        The kept lines stream into a temporary file beside the log; then, holding the write lock,
        the lines written since are appended to it and it replaces the log (atomic, 0600). A line
        that cannot be read (no JSON object with a time) has no date to judge: it is kept as it
        is; a line longer than MAX_LINE_BYTES is not livecam's and is dropped, never held whole."""
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=keep_days)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            log.warning("%s: cannot apply retention (%s)", self.path, exc.strerror or exc)
            return 0
        with os.fdopen(fd, "rb") as reader:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                log.warning("%s: cannot apply retention (not a regular file)", self.path)
                return 0
            with self._lock:  # no write is half done now: everything below `end` is whole lines
                end = os.fstat(fd).st_size
            try:
                return self._rewrite(reader, st, end, cutoff)
            except _Abandoned:
                log.info("%s: retention stopped with the run; the log is as it was", self.path)
                return 0
            except OSError as exc:  # a full disk: the log stays as it was
                log.warning("%s: cannot apply retention (%s)", self.path, exc.strerror or exc)
                return 0

    def _rewrite(self, reader: BinaryIO, st: os.stat_result, end: int, cutoff: datetime) -> int:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name[:100]}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                dropped = unreadable = too_long = 0
                burst = time.perf_counter()
                for n, line in enumerate(_lines(reader, end, MAX_LINE_BYTES)):
                    if n % 64 == 0 and time.perf_counter() - burst > PRUNE_BURST_S:
                        # let go of the GIL now and then: holding it for whole switch intervals (5 ms),
                        # a prune slowed the frame loop from 306 to 58 fps
                        time.sleep(PRUNE_REST_S)
                        burst = time.perf_counter()
                    if self._stop_pruning.is_set():
                        raise _Abandoned
                    if line is None:
                        too_long += 1
                        continue
                    when = _time_of(line)
                    if when is None:
                        if line.strip():
                            unreadable += 1
                            out.write(line)
                    elif when < cutoff:
                        dropped += 1
                    else:
                        out.write(line)
                if unreadable or too_long:  # one warning per prune, not one per line
                    what = [f"{unreadable} kept as they are (no date to judge them by)"] if unreadable else []
                    what += [f"{too_long} longer than {MAX_LINE_BYTES} bytes dropped"] if too_long else []
                    log.warning(
                        "%s: %d line(s) could not be read: %s", self.path, unreadable + too_long, "; ".join(what)
                    )
                if not dropped and not too_long:
                    os.unlink(tmp)
                    return 0
                out.flush()
                os.fsync(out.fileno())  # the bulk, before the lock is taken: the lock is held only briefly
                with self._lock:
                    if self._closed:
                        raise _Abandoned
                    now_there = os.lstat(self.path)
                    if (now_there.st_dev, now_there.st_ino) != (st.st_dev, st.st_ino):
                        raise OSError(f"{self.path} was replaced meanwhile")
                    reader.seek(end)
                    shutil.copyfileobj(reader, out)  # the events written during the prune: none is lost
                    out.flush()
                    os.fchmod(out.fileno(), PRIVATE_FILE)
                    os.fsync(out.fileno())
                    os.replace(tmp, self.path)
                    self._file.close()
                    self._file = self._open()
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return dropped

    def close(self) -> None:
        """A prune still running gets PRUNE_CLOSE_GRACE seconds, then is abandoned (the log stays whole)."""
        if self._pruner is not None:
            self._pruner.join(PRUNE_CLOSE_GRACE)
            self._stop_pruning.set()
            self._pruner.join()
        with self._lock:
            self._closed = True
            self._file.close()


RECENT_EVENTS = 100  # EventSink.events keeps this many
MAX_LINE_BYTES = 64 << 10  # livecam's lines are a few hundred bytes (paths and names bounded); longer ones are junk
PRUNE_BURST_S, PRUNE_REST_S = 0.002, 0.002  # a prune works for 2 ms, then sleeps 2 ms
PRUNE_CLOSE_GRACE = 1.0  # seconds a stopping run lets a running prune finish before abandoning it


class _Abandoned(Exception):
    """The run is closing: a prune in progress stops and leaves the log as it was."""


def _in_background(name: str, work: Callable[[], None]) -> threading.Thread:
    """`work` on a daemon thread; a failure is one log line (a thread's exception would be a traceback on stderr)."""

    def run() -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - retention must never take the door down
            log.error("%s failed: %s", name, exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def _lines(f: BinaryIO, end: int | None, limit: int) -> Iterator[bytes | None]:
    """Each line of `f` up to byte `end` (None: to its end), newline included; None for a line longer
    than `limit` bytes, which is read past in pieces and never held whole."""
    left = float("inf") if end is None else end
    while left > 0:
        line = f.readline(int(min(limit + 1, left)))
        if not line:
            return
        left -= len(line)
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        while left > 0:  # the rest of the long line, a piece at a time
            piece = f.readline(int(min(1 << 16, left)))
            left -= len(piece)
            if not piece or piece.endswith(b"\n"):
                break
        yield None


def _record(line: bytes) -> dict | None:
    """The JSON object on a line, or None: not JSON, not an object, or nested past the parser's depth
    (a line of 200,000 '[' raised RecursionError, a traceback for `run` and `unknown list`)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


_LIVECAM_LINE = re.compile(rb'\{"kind": "[a-z]+", "time": "([0-9T:.+-]{10,40})"')  # how Event.to_json starts


def _time_of(line: bytes) -> datetime | None:
    """An audit line's time (UTC when it names no zone), or None when it has none that can be read."""
    if m := _LIVECAM_LINE.match(line):  # livecam's own lines: no need to parse the whole line (3x faster)
        text = m[1].decode("ascii")
    else:
        record = _record(line)
        if record is None or not isinstance(record.get("time"), str):
            return None
        text = record["time"]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def audit_records(path: Path | None) -> Iterator[dict]:
    """Each JSON object of the audit log, streamed in bounded memory; nothing when it cannot be opened
    (or is not a regular file). Lines that cannot be read are skipped, with one warning at the end."""
    if path is None:
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    unreadable = 0
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        for line in _lines(f, None, MAX_LINE_BYTES):
            record = None if line is None else _record(line)
            if record is not None:
                yield record
            elif line is None or line.strip():
                unreadable += 1
    if unreadable:
        log.warning("%s: %d line(s) could not be read; skipped", path, unreadable)


def events_by_crop(path: Path | None, names: set[str] | None = None) -> dict[str, dict]:
    """The audit log's events by their crop's file name (for `livecam unknown list`; names are unique,
    and a run and the command may spell the folder differently), only those of `names` when given:
    memory bounded by the crops, not by the log."""
    out: dict[str, dict] = {}
    for record in audit_records(path):
        snapshot = record.get("snapshot")
        if isinstance(snapshot, str) and (names is None or os.path.basename(snapshot) in names):
            out[os.path.basename(snapshot)] = record
    return out


@dataclass(frozen=True)
class Visitor:
    """One kept crop of a stranger, with what the audit log says of it; from the crop itself (its time, and the
    camera in its name) when the log is off or has dropped the event (`logged` False)."""

    id: str
    path: Path
    time: str
    camera: str
    nearest: str | None
    distance: float | None
    logged: bool


_CROP_NAME = re.compile(r"\d{8}-\d{6}-\d{6}-(?P<camera>.+)-t\d+-[0-9a-f]{6}")  # see UnknownStore.save


class UnknownStore:
    """Best face crops of strangers, for `livecam unknown list | promote | purge`."""

    def __init__(self, folder: Path, per_minute: int = 10) -> None:
        self.folder = Path(folder)
        self.per_minute = per_minute
        self.refused = 0  # crops not saved: over the rate
        self._saved_at: list[float] = []  # monotonic times of the last minute's saves

    def save(self, crop: np.ndarray, track: int, when: datetime, camera: str = "") -> Path | None:
        """Save a crop under a name no other run can take (two runs at once once shared names,
        and audit records pointed at the other person's face). None over `per_minute`
        crops a minute: a crowd saved 43 crops in 2 s."""
        now = time.monotonic()
        self._saved_at = [t for t in self._saved_at if now - t < 60]
        if len(self._saved_at) >= self.per_minute:
            self.refused += 1
            log.warning("unknown crops: %d this minute already; track %d's is not saved", self.per_minute, track)
            return None
        self._saved_at.append(now)
        ensure_private_dir(self.folder)
        where = f"-{camera}" if camera else ""  # camera names are file-name safe (config.CAMERA_NAME)
        path = self.folder / f"{when:%Y%m%d-%H%M%S-%f}{where}-t{track}-{secrets.token_hex(3)}.jpg"
        ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if ok:
            atomic_write_bytes(path, data.tobytes())
        return path

    @staticmethod
    def camera_of(crop: Path) -> str | None:
        """The camera's name in a crop's file name (as save() makes it), or None."""
        m = _CROP_NAME.fullmatch(crop.stem)
        return m["camera"] if m else None

    def list(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.jpg") if not p.is_symlink() and p.is_file())

    def visitors(self, events_log: Path | None) -> list[Visitor]:
        """The kept crops, oldest first (the names start with the time), each with its audit record."""
        crops = self.list()
        seen = events_by_crop(events_log, {p.name for p in crops}) if crops else {}
        return [self._visitor(p, seen.get(p.name)) for p in crops]

    @classmethod
    def _visitor(cls, crop: Path, event: dict | None) -> Visitor:
        event = event or {}
        when = event.get("time") or datetime.fromtimestamp(crop.lstat().st_mtime, timezone.utc).isoformat(
            timespec="seconds"
        )
        nearest, distance = event.get("nearest"), event.get("distance")
        known = isinstance(nearest, str) and bool(nearest) and isinstance(distance, (int, float))
        return Visitor(
            crop.stem,
            crop,
            str(when),
            str(event.get("camera") or cls.camera_of(crop) or "-"),
            nearest if known else None,
            float(distance) if known else None,
            bool(event),
        )

    def find(self, visitor_id: str) -> Path:
        path = self.folder / f"{visitor_id}.jpg"
        if "/" in visitor_id or "\0" in visitor_id or path.is_symlink() or not path.is_file():
            raise FileNotFoundError(f"no unknown visitor {visitor_id!r} in {self.folder}")
        return path

    def purge(self, older_than_days: float | None, now: float | None = None, keep_count: int | None = None) -> int:
        """Delete crops older than `older_than_days`, then all but the newest `keep_count`."""
        cutoff = (now or time.time()) - (older_than_days or 0) * 86400
        crops = sorted(((p.lstat().st_mtime, p) for p in self.list()), reverse=True)  # newest first
        doomed = [p for i, (mtime, p) in enumerate(crops) if (older_than_days is not None and mtime < cutoff)
                  or (keep_count is not None and i >= keep_count)]  # fmt: skip
        for p in doomed:
            p.unlink(missing_ok=True)
        return len(doomed)


def promote(store: UnknownStore, visitor_id: str, person_folder: Path) -> Path:
    """Move an unknown visitor's crop into the gallery as a photo of a person.

    Copied by content, never through a link: a symlink named like a crop made
    `promote` chmod its target outside the folder."""
    src = store.find(visitor_id)
    try:
        data = read_regular(src, MAX_FILE_BYTES)
    except OSError as exc:
        raise FileNotFoundError(f"{src}: not a crop livecam saved ({exc.strerror or 'not a regular file'})") from None
    ensure_private_dir(person_folder.parent)
    ensure_private_dir(person_folder)
    dest = person_folder / src.name
    atomic_write_bytes(dest, data)
    src.unlink()
    return dest


HOUSEKEEPING_SECONDS = 86400.0
PRESENT_HOLD = 2.0  # seconds a person stays "at the door" after a face last showed their name


@dataclass(frozen=True)
class Retention:
    """How long strangers' crops are kept (None: for ever); the audit log keeps its own (AuditLog.keep_days)."""

    unknown_keep_days: float | None = None
    unknown_keep_count: int | None = None


class EventSink:
    """The door: track updates in, events out to every handler.

    The policy decides; the unknown store keeps the stranger's crop the event
    points to; each handler gets each event. One handler's failure is logged
    and never keeps the event from the others.
    """

    def __init__(
        self,
        source: str,
        policy: DoorPolicy,
        handlers: Sequence[EventHandler] = (),
        unknown: UnknownStore | None = None,
        retention: Retention | None = None,
        camera: str | None = None,
    ) -> None:
        self.source = source
        self.camera = camera
        self.policy = policy
        self.handlers = list(handlers)
        self.unknown = unknown
        self.retention = retention or Retention()
        # the last events, for a caller that looks (tests, the summary), without their face crops: every event
        # of a run kept with its crop grew a door's RSS by 120 MB in 30 minutes (1,228 events)
        self.events: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._next_housekeeping = 0.0  # wall clock
        self._crop_retention: threading.Thread | None = None
        self._recognized_at: dict[str, float] = {}  # source time of each person's last "recognized" event
        self._seen_at: dict[str, float] = {}  # ...and of the last frame that showed them named, while present
        self.present: frozenset[str] = frozenset()

    def handle(self, result: FrameResult) -> None:
        self.take(result.updates, result.frame.t)
        self._track_presence({f.identity.person for f in result.faces if f.identity.person}, result.frame.t)
        if time.time() >= self._next_housekeeping:
            self.housekeeping()

    def enrolled(self, people: Sequence[str]) -> None:
        """The gallery's people, at start and after a reload (MQTT's per-person sensors)."""
        for handler in self.handlers:
            self._call(handler, "enrolled", list(people))

    def _track_presence(self, shown: set[str], now: float) -> None:
        """A person is at the door from their "recognized" event while a face shows their name, and
        for PRESENT_HOLD seconds after (a name hidden for a frame while it is re-checked is no exit).
        Back within the cooldown (no new event), a face showing their name is the same visit."""
        if not shown and not self._seen_at:
            return  # nobody named and nobody present: the common frame costs nothing
        for person in shown:
            if person in self._seen_at or now - self._recognized_at.get(person, -1e18) <= self.policy.cooldown:
                self._seen_at[person] = now
        self._seen_at = {p: t for p, t in self._seen_at.items() if now - t <= PRESENT_HOLD}
        present = frozenset(self._seen_at)
        if present != self.present:
            self.present = present
            for handler in self.handlers:
                self._call(handler, "presence", present)

    def housekeeping(self) -> None:
        """Start retention (at start, then once a day of a long run) on threads of its own: it
        never holds the frame loop, and a failure is a log line, not the end of the run."""
        self._next_housekeeping = time.time() + HOUSEKEEPING_SECONDS
        r = self.retention
        crops = self.unknown is not None and (r.unknown_keep_days is not None or r.unknown_keep_count is not None)
        if crops and (self._crop_retention is None or not self._crop_retention.is_alive()):
            self._crop_retention = _in_background("crop-retention", self._purge_crops)
        for handler in self.handlers:
            self._call(handler, "housekeeping")

    def _purge_crops(self) -> None:
        assert self.unknown is not None
        removed = self.unknown.purge(self.retention.unknown_keep_days, keep_count=self.retention.unknown_keep_count)
        if removed:
            log.info("retention: deleted %d unknown visitor crop(s)", removed)

    def wait_housekeeping(self, timeout: float | None = None) -> None:
        """Wait for the retention housekeeping() started (tests, tools)."""
        if self._crop_retention is not None:
            self._crop_retention.join(timeout)
        for handler in self.handlers:
            self._call(handler, "wait_housekeeping", timeout)

    def take(self, updates: list[TrackUpdate], now: float, final: bool = False) -> None:
        """Track updates in, events out; `final`: the run ends, waiting unknowns are decided now."""
        for update in updates:
            if self.policy.consider(update) == "recognized":
                self._emit("recognized", update)
                person = update.identity.person
                if person is not None:
                    self._recognized_at[person] = self._seen_at[person] = now
        for update in self.policy.due(now, final):
            self._emit("unknown", update)

    def _emit(self, kind: str, update: TrackUpdate) -> None:
        now = datetime.now(timezone.utc)
        snapshot = None
        if kind == "unknown" and self.unknown is not None and update.crop is not None:
            try:
                saved = self.unknown.save(update.crop, update.track, now, self.camera or "")
            except OSError as exc:  # a full disk or a removed folder must not stop the door
                log.error("unknown crop of track %d not saved: %s", update.track, exc)
                saved = None
            snapshot = None if saved is None else str(saved)
        event = Event(
            kind,
            now.isoformat(timespec="milliseconds"),
            self.source,
            update.track,
            update.identity.person,
            float(update.distance),
            float(update.margin),
            liveness=None if update.alive is None else ("blink" if update.alive else "none"),
            snapshot=snapshot,
            frame=update.frame,
            t=update.t,
            nearest=update.nearest if kind == "unknown" else None,
            camera=self.camera,
            face=update.crop,
        )
        self.events.append(replace(event, face=None))
        log.info("event: %s", event.describe())
        for handler in self.handlers:
            try:
                handler.handle(event)
            except Exception as exc:  # noqa: BLE001 - one handler must not cost the others the event
                log.error("%s: event not handled (%s): %s", type(handler).__name__, exc, event.to_json())

    def close(self) -> None:
        if self.present:  # the run ends: nobody is at this door any more
            self.present = frozenset()
            for handler in self.handlers:
                self._call(handler, "presence", self.present)
        for handler in self.handlers:
            self._call(handler, "close")

    @staticmethod
    def _call(handler: EventHandler, hook: str, *args) -> None:
        method = getattr(handler, hook, None)  # a plain object with handle() is a handler too
        if method is None:
            return
        try:
            method(*args)
        except Exception as exc:  # noqa: BLE001 - one handler must not cost the others anything
            log.error("%s: %s failed: %s", type(handler).__name__, hook, exc)
