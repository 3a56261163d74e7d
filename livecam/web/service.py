"""What the web page does to the door's files: the same operations and checks as the CLI's
(`unknown list/promote/purge`, `gallery`), with names and ids validated the same way.

Nothing here knows HTTP. The engine (needed to check a face before it joins the gallery) is built on first use
and kept; one operation changes the gallery at a time.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..door import (
    EnrollError,
    UnknownStore,
    Visitor,
    audit_records,
    check_new_name,
    enroll_images,
    people_photos,
    person_folder,
    person_photos,
    promote_visitor,
    remove_person,
    rename_person,
)
from ..engine import load_gallery
from ..names import NameError_, validate_name
from ..storage import atomic_write_bytes
from ..wiring import gallery_settings

log = logging.getLogger(__name__)

MAX_EVENTS_SHOWN = 500  # newest first; the log itself may be far longer
MAX_PHOTO_BYTES = 8 * 2**20  # an uploaded photo (the gallery reader then checks what it declares)


@dataclass(frozen=True)
class Person:
    name: str
    photos: list[Path]


@dataclass(frozen=True)
class Outcome:
    """What an operation did, for the page: lines that went well, and lines that did not (with their reasons)."""

    done: list[str]
    refused: list[str]


class DoorFiles:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.root = Path(cfg.known_faces)
        self.store = UnknownStore(cfg.door.unknown_dir) if cfg.door.unknown_dir is not None else None
        self._lock = threading.Lock()
        self._engine = None

    # -- unknown visitors ------------------------------------------------------------------------
    def visitors(self) -> list[Visitor]:
        """Newest first."""
        return [] if self.store is None else self.store.visitors(self.cfg.door.events_log)[::-1]

    def visitor_photo(self, visitor_id: str) -> Path:
        """The crop of `visitor_id`: FileNotFoundError for anything that is not one (a path, a link)."""
        if self.store is None:
            raise FileNotFoundError(visitor_id)
        return self.store.find(visitor_id)

    def assign(self, visitor_ids: list[str], name: str, force: bool = False) -> Outcome:
        """Crops of one visitor into the gallery as `name`, each checked like `unknown promote` (a crop
        nearer another enrolled person is refused unless `force`)."""
        if self.store is None:
            return Outcome([], ["door.unknown_dir is null in the config: no unknown visitors are kept"])
        done, refused = [], []
        with self._lock:
            try:
                clean, engine, settings, gallery = self._adding_to(name, force)
            except (EnrollError, NameError_) as exc:
                return Outcome([], [str(exc)])
            m = self.cfg.matching
            for visitor in visitor_ids:
                try:
                    report = promote_visitor(
                        self.store, visitor, self.root, clean, engine, gallery, m.threshold, force, m.verify_threshold
                    )
                except FileNotFoundError as exc:
                    refused.append(str(exc))
                    continue
                refused += [f"{Path(src).stem}: {reason}" for src, reason in report.rejected]
                done += [f"{visitor} is now a photo of {clean}" for _ in report.accepted]
            if done:
                load_gallery(self.root, settings, self.cfg.workers, engine)  # encoded now, not at the door
        return Outcome(done, refused)

    def delete_visitors(self, visitor_ids: list[str]) -> Outcome:
        done, refused = [], []
        for visitor in visitor_ids:
            try:
                self.visitor_photo(visitor).unlink()
                done.append(f"{visitor} deleted")
            except FileNotFoundError as exc:
                refused.append(str(exc))
        return Outcome(done, refused)

    def purge(self, older_than_days: float) -> Outcome:
        if self.store is None:
            return Outcome([], ["door.unknown_dir is null in the config"])
        return Outcome([f"removed {self.store.purge(older_than_days)} unknown visitor photo(s)"], [])

    # -- gallery ---------------------------------------------------------------------------------
    def people(self) -> list[Person]:
        return [Person(name, photos) for name, photos in people_photos(self.root).items()]

    def person_photo(self, name: str, file_name: str) -> Path:
        """One photo of a person in the gallery; FileNotFoundError for anything else (a path, a link, a name
        that is not a person's)."""
        try:
            clean = validate_name(name)
        except NameError_:
            raise FileNotFoundError(name) from None
        for photo in person_photos(self.root, clean):  # each photo the page shows asks: not the whole gallery
            if photo.name == file_name:
                return photo
        raise FileNotFoundError(f"{name}/{file_name}")

    def add_photos(self, name: str, uploads: list[tuple[str, bytes]], force: bool = False) -> Outcome:
        """Uploaded photos of `name` (a new person or more photos of one), each through `enroll`'s checks: the
        hardened image reader (formats, declared sizes, bombs), one clear face, sharp enough, not someone else.
        An upload's own file name is only shown, never used as a path: photos are saved under new names."""
        if not uploads:
            return Outcome([], ["choose one or more photos"])
        shown = {}
        with self._lock, tempfile.TemporaryDirectory(prefix="livecam-upload-") as tmp:
            paths = []
            for i, (original, data) in enumerate(uploads):
                if len(data) > MAX_PHOTO_BYTES:
                    shown[original] = None
                    continue
                path = Path(tmp) / f"upload-{i + 1}"  # no suffix from the client: the reader looks at the bytes
                atomic_write_bytes(path, data)  # 0600: an upload is a face too, even for a moment
                paths.append(path)
                shown[path] = original or f"photo {i + 1}"
            refused = [
                f"{upload}: larger than {MAX_PHOTO_BYTES // 2**20} MB" for upload, v in shown.items() if v is None
            ]
            try:
                clean, engine, settings, gallery = self._adding_to(name, force)
            except (EnrollError, NameError_) as exc:
                return Outcome([], [str(exc)])
            m = self.cfg.matching
            report = enroll_images(self.root, clean, paths, engine, gallery, m.threshold, force, m.verify_threshold)
            done = [f"{shown[src]}: added to {clean}" for src, _ in report.accepted]
            refused += [f"{shown[src]}: {reason}" for src, reason in report.rejected]
            if done:
                load_gallery(self.root, settings, self.cfg.workers, engine)  # encoded now, not at the door
        return Outcome(done, refused)

    def rename(self, old: str, new: str, force: bool = False) -> Outcome:
        with self._lock:
            try:
                rename_person(self.root, old, new, gallery_settings(self.cfg), force)
            except (EnrollError, NameError_) as exc:
                return Outcome([], [str(exc)])
        return Outcome([f"{old} is now {new}"], [])

    def remove_photo(self, name: str, file_name: str) -> Outcome:
        """One photo out of a person's folder (never through a link; the name must be one of theirs)."""
        with self._lock:
            try:
                photo = self.person_photo(name, file_name)
            except FileNotFoundError:
                return Outcome([], [f"{name}/{file_name}: no such photo"])
            if photo.parent == self.root:  # known_faces/<Name>.jpg: the person is the photo
                return Outcome([], [f"{file_name} is all of {name}: remove the person instead"])
            photo.unlink()
        return Outcome([f"removed {file_name} from {name}"], [])

    def remove(self, name: str) -> Outcome:
        with self._lock:
            try:
                removed = remove_person(self.root, name, gallery_settings(self.cfg))
            except (EnrollError, NameError_) as exc:
                return Outcome([], [str(exc)])
        return Outcome([f"removed {name} ({removed} photo(s))"], [])

    # -- calibration -----------------------------------------------------------------------------
    def calibration(self, far: float = 0.001):
        """(Calibration, the lines `livecam calibrate` prints first, its recommendation); ValueError when the
        gallery cannot be calibrated (fewer than two people)."""
        import numpy as np

        from ..door import calibrate, recommendation
        from ..models import MODELS

        with self._lock:
            engine, settings = self._engine_and_settings()
            gallery = load_gallery(self.root, settings, self.cfg.workers, engine)
        cal = calibrate(gallery, far)
        lines = [f"{len(cal.genuine)} same-person pairs, {len(cal.impostor)} different-person pairs"]
        if len(cal.genuine):
            lines.append(f"same person: median {np.median(cal.genuine):.3f}, max {cal.genuine.max():.3f}")
        lines.append(f"different people: min {cal.impostor.min():.3f}, median {np.median(cal.impostor):.3f}")
        few = len(cal.impostor) * far < 1
        threshold = self.cfg.matching.threshold
        return cal, lines, recommendation(cal, threshold, MODELS[self.cfg.encoding.model].threshold, few)

    # -- events ----------------------------------------------------------------------------------
    def events(self, person: str = "", camera: str = "") -> list[dict]:
        """The audit log's events, newest first (at most MAX_EVENTS_SHOWN), filtered by name and camera."""
        kept: list[dict] = []
        for record in audit_records(self.cfg.door.events_log):
            if person and record.get("name") != person:
                continue
            if camera and record.get("camera") != camera:
                continue
            kept.append({**record, "why": self.why(record), "crop": self._crop_of(record)})
            if len(kept) > 4 * MAX_EVENTS_SHOWN:
                kept = kept[-MAX_EVENTS_SHOWN:]
        return list(reversed(kept[-MAX_EVENTS_SHOWN:]))

    def _crop_of(self, event: dict) -> str | None:
        """The id of the event's crop while the unknown store still keeps it (shown as a thumbnail)."""
        snapshot = event.get("snapshot")
        if not isinstance(snapshot, str) or self.store is None:
            return None
        try:
            return self.store.find(Path(snapshot).stem).stem
        except FileNotFoundError:
            return None

    def why(self, event: dict) -> str:
        """For an unknown event, why the face was not named: its nearest person, distance and the threshold."""
        if event.get("kind") != "unknown":
            return ""
        distance, nearest, margin = event.get("distance"), event.get("nearest"), event.get("margin")
        if not isinstance(distance, (int, float)) or not isinstance(nearest, str):
            return "no one enrolled to compare with"
        m = self.cfg.matching
        if distance > m.threshold:
            return f"nearest {nearest} at {distance:.3f}, over the threshold {m.threshold:.2f}"
        if isinstance(margin, (int, float)) and margin < m.margin:
            return (
                f"nearest {nearest} at {distance:.3f}, but a second person within {margin:.3f} (margin {m.margin:.2f})"
            )
        return f"nearest {nearest} at {distance:.3f}, within the threshold {m.threshold:.2f}, but not by enough looks"

    def _adding_to(self, name: str, force: bool):
        """(name in NFC, engine, settings, gallery) for adding photos of `name`; EnrollError or NameError_ when
        photos may not go under that name (a path, a name like an enrolled one)."""
        person_folder(self.root, name)
        clean = check_new_name(self.root, name, force)
        engine, settings = self._engine_and_settings()
        return clean, engine, settings, load_gallery(self.root, settings, self.cfg.workers, engine)

    def _engine_and_settings(self):
        settings = gallery_settings(self.cfg)
        if self._engine is None:
            self._engine = settings.build()
        return self._engine, settings
