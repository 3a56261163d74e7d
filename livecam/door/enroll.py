"""Enrollment: which photos are good enough to recognise someone by, and adding them safely.

A shot is good when it has exactly one face, large enough, sharp, roughly
frontal, and not a near-duplicate of a photo already enrolled or taken. A gallery
holds only the person it names, so a good shot is also the same face as the
person's enrolled photos and as this run's first shot, and nobody else's who is
enrolled (within the model's threshold; another person's only with --force).
Accepted photos are re-encoded as JPEG with the EXIF rotation applied and all
metadata (GPS, camera serials) dropped, and written 0600 into a 0700 folder.

A person's folder is found by their name in NFC, whatever Unicode spelling it
has on disk (names.py), so that removing, renaming or enrolling `Arié` never
misses an `Arie\u0301` folder of the same person.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import names
from ..engine import (
    EngineSettings,
    Face,
    FaceEngine,
    Gallery,
    ImageError,
    Matcher,
    cache_path,
    is_image_path,
    load_image,
    read_cache,
    write_cache,
)
from ..live import Detector
from ..models import MODELS
from ..storage import atomic_write_bytes, ensure_private_dir
from .events import UnknownStore, promote

log = logging.getLogger(__name__)

MIN_FACE_PX = 80  # smaller faces make poor references (and HOG's own limit at upsample 0)
# Variance of the Laplacian of the face at 150 px. LFW photos score 20 to 55+ (5th to
# 50th percentile); the same photos blurred with sigma 2 score below 20.
MIN_SHARPNESS = 20.0
MAX_YAW = 0.30  # nose offset from the eyes' midpoint, in eye distances: 0 is frontal
MAX_ROLL_DEGREES = 25.0


class EnrollError(ValueError):
    """A bad name or gallery operation; str() is one line."""


def _valid(name: str) -> str:
    """names.validate_name, its error as the CLI's one-line EnrollError."""
    try:
        return names.validate_name(name)
    except names.NameError_ as exc:
        raise EnrollError(str(exc)) from None


@dataclass(frozen=True)
class ShotCheck:
    face: Face | None
    reason: str | None  # None: good
    like: tuple[str, float] | None = None  # another enrolled person it is within the threshold of (--force)

    @property
    def ok(self) -> bool:
        return self.reason is None


def sharpness(rgb: np.ndarray, face: Face) -> float:
    b = face.box.clipped(*rgb.shape[:2])
    crop = cv2.cvtColor(rgb[b.top : b.bottom, b.left : b.right], cv2.COLOR_RGB2GRAY)
    crop = cv2.resize(crop, (150, 150), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(crop, cv2.CV_64F).var())


def pose(points: np.ndarray) -> tuple[float, float]:
    """(yaw, roll degrees) from the 5 landmarks: yaw is the nose's sideways offset in eye distances."""
    right_eye = points[0:2].mean(axis=0)
    left_eye = points[2:4].mean(axis=0)
    nose = points[4]
    eyes_mid = (right_eye + left_eye) / 2
    eye_vec = left_eye - right_eye
    eye_dist = float(np.linalg.norm(eye_vec)) or 1.0
    # the nose's offset along the eye line, relative to the eyes' midpoint
    yaw = float(np.dot(nose - eyes_mid, eye_vec / eye_dist)) / eye_dist
    roll = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
    if roll > 90:
        roll -= 180
    elif roll < -90:
        roll += 180
    return yaw, roll


def check_shot(
    engine: FaceEngine, rgb: np.ndarray, taken: list[np.ndarray], detect: Callable[[np.ndarray], list] | None = None
) -> ShotCheck:
    """Is this photo a good enrollment shot? `taken`: encodings of shots already accepted.

    `detect` (camera frames): the live loop's detector on the grayscale frame, ~10 ms,
    instead of the still-photo pipeline whose fallbacks (more upsampling, then the
    CNN) cost seconds on every frame with no face: a 9 s clip took 128 s.
    """
    if detect is None:
        faces = engine.faces(rgb)
    else:
        boxes = detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        faces = [Face(b, e) for b, e in zip(boxes, engine.encode(rgb, boxes), strict=True)]
    if not faces:
        return ShotCheck(None, "no face found")
    if len(faces) > 1:
        return ShotCheck(None, f"{len(faces)} faces; enrollment needs exactly one")
    face = faces[0]
    if min(face.box.width, face.box.height) < MIN_FACE_PX:
        return ShotCheck(face, f"face too small ({face.box.width} px; move closer, at least {MIN_FACE_PX} px)")
    sharp = sharpness(rgb, face)
    if sharp < MIN_SHARPNESS:
        return ShotCheck(face, f"blurred (sharpness {sharp:.0f} < {MIN_SHARPNESS:.0f}; hold still)")
    yaw, roll = pose(engine.landmarks(rgb, face.box))
    if abs(yaw) > MAX_YAW:
        return ShotCheck(face, f"face turned to the side (yaw {yaw:+.2f}; look at the camera)")
    if abs(roll) > MAX_ROLL_DEGREES:
        return ShotCheck(face, f"head tilted ({roll:+.0f} degrees; hold it level)")
    for other in taken:
        if float(np.linalg.norm(other - face.encoding)) < engine.spec.duplicate_distance:
            # the camera's guidance turns this into "turn a little"; a photo file gets no camera advice
            return ShotCheck(face, "near-duplicate of a photo already enrolled or taken")
    return ShotCheck(face, None)


@dataclass
class EnrollReport:
    name: str
    accepted: list[tuple[Path, Path]] = field(default_factory=list)  # (source, saved as)
    rejected: list[tuple[Path, str]] = field(default_factory=list)  # (source, reason)
    lookalikes: list[tuple[Path, str, float]] = field(default_factory=list)  # forced: (source, person, distance)
    timed_out: bool = False  # the camera gave no `count` good shots within the time allowed


@dataclass
class _Entries:
    """What the gallery holds under one name, in any Unicode spelling."""

    folders: list[Path] = field(default_factory=list)
    singles: list[Path] = field(default_factory=list)  # known_faces/<Name>.jpg
    links: list[Path] = field(default_factory=list)  # symbolic links named like a person's folder


def _people(root: Path) -> dict[str, _Entries]:
    """Every name in the gallery (NFC) and its entries on disk, as the scan reads them."""
    out: dict[str, _Entries] = {}
    root = Path(root)
    if not root.is_dir():
        return out
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        mode = os.lstat(entry).st_mode
        if stat.S_ISDIR(mode):
            raw, kind = entry.name, "folders"
        elif stat.S_ISREG(mode) and is_image_path(entry):
            raw, kind = entry.stem, "singles"
        elif stat.S_ISLNK(mode) and not is_image_path(entry):
            raw, kind = entry.name, "links"
        else:
            continue
        try:
            name = names.validate_name(raw)
        except names.NameError_:
            continue  # the scan skips it too (with a warning)
        getattr(out.setdefault(name, _Entries()), kind).append(entry)
    return out


def enrolled_names(root: Path) -> set[str]:
    """The names of the people in the gallery (NFC)."""
    return {name for name, e in _people(root).items() if e.folders or e.singles}


def people_photos(root: Path) -> dict[str, list[Path]]:
    """Each person in the gallery (NFC name, sorted) and their photos on disk: regular image files, never a link."""
    return {name: _photos(e) for name, e in sorted(_people(root).items()) if e.folders or e.singles}


def person_photos(root: Path, name: str) -> list[Path]:
    """The photos of one person (`name` in NFC), reading only their own folder: [] for a name not enrolled."""
    entries = _people(root).get(name)
    return _photos(entries) if entries is not None else []


def _photos(entries: _Entries) -> list[Path]:
    photos = list(entries.singles)
    for folder in entries.folders:
        photos += sorted(p for p in folder.iterdir() if is_image_path(p) and not p.is_symlink() and p.is_file())
    return photos


def _entries(root: Path, name: str) -> _Entries:
    entries = _people(root).get(_valid(name), _Entries())
    if entries.links:  # with `Alice -> Bob`, removing Alice deleted Bob
        raise EnrollError(
            f"{entries.links[0]}: is a symbolic link; livecam does not enroll into, or delete through, links"
        )
    return entries


def person_folder(root: Path, name: str) -> Path:
    """The folder of a person in the gallery: the one already there under any spelling of the name
    (NFC preferred), else a new one named in NFC; never through a symlink."""
    clean = _valid(name)
    folders = _entries(root, clean).folders
    exact = [f for f in folders if f.name == clean]
    return (exact or folders or [Path(root) / clean])[0]


def check_new_name(root: Path, name: str, force: bool = False, exclude: str | None = None) -> str:
    """`name` in NFC, if photos may be added under it: refused when it looks like an enrolled name without
    being it (a Cyrillic letter, a fullwidth one, a no-break space...), unless `force` (then a warning).
    `exclude`: a name not to compare with (rename: the person's old name)."""
    clean = _valid(name)
    enrolled = enrolled_names(root) - {_valid(exclude) if exclude else ""}
    other = None if clean in enrolled else names.lookalike(clean, enrolled)  # more photos of someone: no new name
    if other is None:
        return clean
    # escaped, both: the difference is what cannot be seen
    what = (
        f"name {clean!r} looks like {other!r}, already enrolled (written {names.shown(clean)} and {names.shown(other)})"
    )
    if not force:
        raise EnrollError(f"{what}: use that name, or --force if this is someone else")
    log.warning("%s; used anyway (--force)", what)
    return clean


def save_shot(folder: Path, rgb: np.ndarray, stem: str) -> Path:
    ensure_private_dir(folder.parent)
    ensure_private_dir(folder)
    n = 1
    while (dest := folder / f"{stem}-{n}.jpg").exists():
        n += 1
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise EnrollError(f"{dest}: cannot encode JPEG")
    atomic_write_bytes(dest, data.tobytes())
    return dest


class Enrollment:
    """One person's new photos, each checked before anything is saved (enroll, enroll --camera, promote).

    A good shot (`check_shot`) is added only when it is the same face as this run's first
    shot and as the person's nearest photo already enrolled, and is not within `threshold`
    of anyone else enrolled (with `force`: added, with a warning). Both distances are the
    model's own: "the same face" is its 1:1 same-person distance (`verify_threshold`: dlib's
    0.5; its 0.45 refused Tony_Blair/2.jpg as not Tony_Blair/1.jpg, at 0.48), "anyone else"
    its identification threshold, the distance at which livecam would name them."""

    def __init__(
        self,
        root: Path,
        name: str,
        engine: FaceEngine,
        gallery: Gallery | None = None,
        threshold: float | None = None,
        force: bool = False,
        same_person: float | None = None,
    ) -> None:
        self.name = check_new_name(root, name, force)
        self.folder = person_folder(root, self.name)
        self.engine = engine
        self.threshold = engine.spec.threshold if threshold is None else threshold
        self.same_person = engine.spec.verify_threshold if same_person is None else same_person
        self.force = force
        self.report = EnrollReport(self.name)
        self.enrolled: list[np.ndarray] = []  # the person's photos already in the gallery
        self.new: list[np.ndarray] = []  # shots accepted in this run, the first one first
        self.others: Matcher | None = None  # everyone else enrolled
        if gallery is not None and len(gallery):
            mine = np.array([gallery.names[label] == self.name for label in gallery.labels], bool)
            self.enrolled = list(gallery.encodings[mine])
            if not mine.all():
                self.others = Matcher(gallery.encodings[~mine], gallery.labels[~mine], gallery.names, self.threshold)

    def check(self, rgb: np.ndarray, detect: Callable[[np.ndarray], list] | None = None) -> ShotCheck:
        shot = check_shot(self.engine, rgb, self.enrolled + self.new, detect)
        if not shot.ok or shot.face is None:
            return shot
        return self._identity(shot.face)

    def _identity(self, face: Face) -> ShotCheck:
        e, same, t = face.encoding, self.same_person, self.threshold
        if self.new and (d := float(np.linalg.norm(self.new[0] - e))) > same:
            return ShotCheck(
                face, f"a different face from the first shot (distance {d:.2f} > {same:.2f}): one person at a time"
            )
        if self.enrolled:
            d = float(np.linalg.norm(np.asarray(self.enrolled) - e, axis=1).min())
            if d > same:
                return ShotCheck(
                    face,
                    f"not the same face as the {len(self.enrolled)} photo(s) of {self.name} already enrolled"
                    f" (distance {d:.2f} > {same:.2f})",
                )
        if self.others is not None:
            d_all = self.others.person_distances(e)[0]
            j = int(np.argmin(d_all))
            person, d = self.others.names[j], float(d_all[j])
            if d <= t:
                if not self.force:
                    return ShotCheck(
                        face,
                        f"looks like {person}, already enrolled (distance {d:.2f} <= {t:.2f}); --force adds it anyway",
                    )
                return ShotCheck(face, None, (person, d))
        return ShotCheck(face, None)

    def accepted(self, source: Path, dest: Path, shot: ShotCheck) -> None:
        """Count a shot that was saved (as `dest`)."""
        assert shot.ok and shot.face is not None
        self.report.accepted.append((source, dest))
        self.new.append(shot.face.encoding)
        if shot.like is not None:
            person, d = shot.like
            self.report.lookalikes.append((source, person, d))
            log.warning(
                "%s: looks like %s, already enrolled (distance %.3f <= %.2f): added as %s anyway (--force);"
                " they may be confused", source, person, d, self.threshold, self.name,
            )  # fmt: skip

    def rejected(self, source: Path, reason: str) -> None:
        self.report.rejected.append((source, reason))


def enroll_images(
    root: Path,
    name: str,
    paths: list[Path],
    engine: FaceEngine,
    gallery: Gallery | None = None,
    threshold: float | None = None,
    force: bool = False,
    same_person: float | None = None,
) -> EnrollReport:
    """Add photos of a person, each one checked (`Enrollment`); the rest are listed with their reasons."""
    run = Enrollment(root, name, engine, gallery, threshold, force, same_person)
    for path in paths:
        try:
            rgb = load_image(path)
        except ImageError as exc:
            run.rejected(path, str(exc).removeprefix(f"{path}: "))
            continue
        shot = run.check(rgb)
        if not shot.ok:
            run.rejected(path, shot.reason or "")
            continue
        run.accepted(path, save_shot(run.folder, rgb, _stem(path)), shot)
    return run.report


def promote_visitor(
    store: UnknownStore,
    visitor_id: str,
    root: Path,
    name: str,
    engine: FaceEngine,
    gallery: Gallery | None = None,
    threshold: float | None = None,
    force: bool = False,
    same_person: float | None = None,
) -> EnrollReport:
    """An unknown visitor's crop into the gallery as `name`, after the checks every enrolled photo passes
    (a second copy of a crop already promoted is a near-duplicate; someone else's face is refused)."""
    src = store.find(visitor_id)
    run = Enrollment(root, name, engine, gallery, threshold, force, same_person)
    try:
        shot = run.check(load_image(src))
    except ImageError as exc:
        shot = ShotCheck(None, str(exc).removeprefix(f"{src}: "))
    if not shot.ok:
        run.rejected(src, shot.reason or "")
    else:
        run.accepted(src, promote(store, visitor_id, run.folder), shot)
    return run.report


def _stem(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)[:40]
    return stem or "photo"


# -- gallery housekeeping ---------------------------------------------------------------------
def remove_person(root: Path, name: str, settings: EngineSettings | None = None) -> int:
    """Delete a person's photos (their folder, or `<Name>.<image suffix>` files: never another
    person's `<Name>.Other.jpg`), under every Unicode spelling of the name, and their encodings
    from the caches; returns how many were removed."""
    entries = _entries(root, name)
    if not entries.folders and not entries.singles:
        raise EnrollError(f"{name!r} is not enrolled in {root}")
    count = len(entries.singles)
    for p in entries.singles:
        p.unlink()
    for folder in entries.folders:
        count += sum(1 for p in folder.iterdir() if p.is_file() and not p.is_symlink())
        shutil.rmtree(folder)  # never follows links inside (it works on descriptors)
    singles, prefixes = {p.name for p in entries.singles}, tuple(f"{f.name}/" for f in entries.folders)
    _update_caches(Path(root), lambda key: None if key in singles or key.startswith(prefixes) else key, settings)
    return count


def _update_caches(root: Path, rekey: Callable[[str], str | None], settings: EngineSettings | None) -> None:
    """Every model's cache, its photos renamed by `rekey` (None: the photo is gone), now, not at the next load."""
    settings = settings or EngineSettings()
    for model in MODELS:
        these = dataclasses.replace(settings, model=model)
        cache = cache_path(root, these)
        if not os.path.lexists(cache):
            continue
        entries = read_cache(cache, these, root)
        if not entries:
            cache.unlink()  # not readable with these settings: it may hold the person; rebuilt on the next load
            continue
        kept = {new: v for k, v in entries.items() if (new := rekey(k)) is not None}
        if kept.keys() != entries.keys():
            write_cache(cache, kept, these, root)


def rename_person(root: Path, old: str, new: str, settings: EngineSettings, force: bool = False) -> None:
    """Rename a person, keeping the cached encodings. Every spelling of the old name becomes one folder;
    a new name that is enrolled (in any spelling) is refused, one that looks like an enrolled name is
    refused unless `force`."""
    root = Path(root)
    entries = _entries(root, old)
    if not entries.folders:
        raise EnrollError(f"{old!r} is not enrolled in {root} (as a folder)")
    if _valid(old) == _valid(new):
        raise EnrollError(f"{old!r} and {new!r} are the same name")
    taken = _entries(root, new)
    dst = root / check_new_name(root, new, force, exclude=old)
    if taken.folders or taken.singles or os.path.lexists(dst):
        raise EnrollError(f"{new!r} is already enrolled in {root}")
    first, *rest = entries.folders
    first.rename(dst)
    moved = {}  # old key -> new key, for photos moved one by one
    for item in [p for folder in rest for p in sorted(folder.iterdir())] + entries.singles:
        target = dst / item.name
        n = 1
        while os.path.lexists(target):  # never over another photo
            target = dst / f"{Path(item.name).stem}-{n}{Path(item.name).suffix}"
            n += 1
        os.rename(item, target)
        moved[item.relative_to(root).as_posix()] = target.relative_to(root).as_posix()
    for folder in rest:
        folder.rmdir()
    prefix_old, prefix_new = f"{first.name}/", f"{dst.name}/"
    _update_caches(
        root,
        lambda k: prefix_new + k[len(prefix_old) :] if k.startswith(prefix_old) else moved.get(k, k),
        settings,
    )


# -- enrollment in front of a camera -----------------------------------------------------------
GUIDANCE = {
    "no face found": "look at the camera",
    "faces; enrollment needs exactly one": "one person at a time, please",
    "face too small": "move closer",
    "blurred": "hold still",
    "face turned to the side": "turn a little towards the camera",
    "head tilted": "hold your head level",
    "near-duplicate": "turn a little",
    "a different face": "one person at a time, please",
    "not the same face": "only the person being enrolled, please",
    "looks like": "only the person being enrolled, please",
}
MIN_SHOT_INTERVAL_S = 0.4  # shots spaced out in (source) time differ more


def guidance(reason: str | None) -> str:
    if reason is None:
        return "hold still..."
    for key, text in GUIDANCE.items():
        if key in reason:
            return text
    return reason


def enroll_from_source(
    root: Path,
    name: str,
    source,
    engine: FaceEngine,
    count: int,
    show: Callable[[np.ndarray, str, Face | None], bool] | None = None,
    gallery: Gallery | None = None,
    threshold: float | None = None,
    timeout_s: float = 120.0,
    force: bool = False,
    same_person: float | None = None,
) -> EnrollReport:
    """Capture `count` good shots from a camera (or file). `show` draws guidance; it returns False to abort.
    Every shot is the first shot's face: someone else walking by is not taken."""
    run = Enrollment(root, name, engine, gallery, threshold, force, same_person)
    report = run.report
    started = time.monotonic()
    last_shot_t = -MIN_SHOT_INTERVAL_S
    last_message = ""
    detect = Detector(engine, MIN_FACE_PX)
    while len(report.accepted) < count:
        if time.monotonic() - started >= timeout_s:
            report.timed_out = True
            break
        frame = source.read(timeout=1.0)
        if frame is None:
            if source.ended:
                break
            continue
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        check = run.check(rgb, detect)
        message = guidance(check.reason)
        if check.ok and frame.t - last_shot_t >= MIN_SHOT_INTERVAL_S:
            run.accepted(Path(f"{source.name}#{frame.index}"), save_shot(run.folder, rgb, "shot"), check)
            last_shot_t = frame.t
            message = f"got {len(report.accepted)} of {count}"
        if message != last_message:
            log.info("enroll %s: %s", run.name, message)
            last_message = message
        if show is not None and not show(frame.image, message, check.face):
            break
    return report
