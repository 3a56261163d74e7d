"""Enrollment: which photos are good enough to recognise someone by, and adding them safely.

A shot is good when it has exactly one face, large enough, sharp, roughly
frontal, and not a near-duplicate of a shot already taken. Accepted photos are
re-encoded as JPEG with the EXIF rotation applied and all metadata (GPS,
camera serials) dropped, and written 0600 into a 0700 folder.
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

from . import names
from .batch import EngineSettings
from .detection import Detector
from .faces import Face, FaceEngine
from .gallery import Gallery, cache_path, read_cache, write_cache
from .images import ImageError, is_image_path, load_image
from .models import DLIB, MODELS
from .storage import atomic_write_bytes, ensure_private_dir

log = logging.getLogger(__name__)

MIN_FACE_PX = 80  # smaller faces make poor references (and HOG's own limit at upsample 0)
# Variance of the Laplacian of the face at 150 px. LFW photos score 20 to 55+ (5th to
# 50th percentile); the same photos blurred with sigma 2 score below 20.
MIN_SHARPNESS = 20.0
MAX_YAW = 0.30  # nose offset from the eyes' midpoint, in eye distances: 0 is frontal
MAX_ROLL_DEGREES = 25.0


class EnrollError(ValueError):
    """A bad name or gallery operation; str() is one line."""


def validate_name(name: str) -> str:
    """A person's name as a folder name: any script, but never a path out of the gallery."""
    try:
        return names.validate_name(name)
    except names.NameError_ as exc:
        raise EnrollError(str(exc)) from None


@dataclass(frozen=True)
class ShotCheck:
    face: Face | None
    reason: str | None  # None: good

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
            return ShotCheck(face, "near-duplicate of a shot already taken (turn a little)")
    return ShotCheck(face, None)


@dataclass
class EnrollReport:
    name: str
    accepted: list[tuple[Path, Path]] = field(default_factory=list)  # (source, saved as)
    rejected: list[tuple[Path, str]] = field(default_factory=list)  # (source, reason)
    lookalikes: list[tuple[str, float]] = field(default_factory=list)  # (person, distance)
    timed_out: bool = False  # the camera gave no `count` good shots within the time allowed


def person_folder(root: Path, name: str) -> Path:
    """The folder of a person in the gallery; never through a symlink (with `Alice -> Bob`,
    removing Alice deleted Bob)."""
    folder = Path(root) / validate_name(name)
    if folder.is_symlink():
        raise EnrollError(f"{folder}: is a symbolic link; livecam does not enroll into, or delete through, links")
    return folder


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


def enroll_images(
    root: Path,
    name: str,
    paths: list[Path],
    engine: FaceEngine,
    gallery: Gallery | None = None,
    threshold: float = DLIB.threshold,
) -> EnrollReport:
    folder = person_folder(root, name)
    report = EnrollReport(folder.name)
    taken = []
    if gallery is not None and folder.name in gallery.names:
        idx = gallery.names.index(folder.name)
        taken = list(gallery.encodings[gallery.labels == idx])
    new_encodings = []
    for path in paths:
        try:
            rgb = load_image(path)
        except ImageError as exc:
            report.rejected.append((path, str(exc).removeprefix(f"{path}: ")))
            continue
        check = check_shot(engine, rgb, taken + new_encodings)
        if not check.ok:
            report.rejected.append((path, check.reason or ""))
            continue
        dest = save_shot(folder, rgb, _stem(path))
        report.accepted.append((path, dest))
        new_encodings.append(check.face.encoding)
    if gallery is not None and new_encodings and len(gallery):
        report.lookalikes = lookalikes(gallery, folder.name, np.array(new_encodings), threshold)
    return report


def _stem(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)[:40]
    return stem or "photo"


def lookalikes(gallery: Gallery, name: str, encodings: np.ndarray, threshold: float) -> list[tuple[str, float]]:
    """Other enrolled people within `threshold` of the new person's photos, closest first."""
    matcher = gallery.matcher(threshold, 0.0)
    d = matcher.person_distances(encodings).min(axis=0)
    out = [(p, float(dist)) for p, dist in zip(matcher.names, d, strict=True) if p != name and dist <= threshold]
    return sorted(out, key=lambda x: x[1])


# -- gallery housekeeping ---------------------------------------------------------------------
def remove_person(root: Path, name: str, settings: EngineSettings | None = None) -> int:
    """Delete a person's photos (their folder, or `<Name>.<image suffix>` files: never another
    person's `<Name>.Other.jpg`) and their encodings from the cache; returns how many were removed."""
    folder = person_folder(root, name)
    singles = [
        p
        for p in Path(root).iterdir()
        if p.stem == folder.name and is_image_path(p) and stat.S_ISREG(os.lstat(p).st_mode)
    ]
    if not folder.is_dir() and not singles:
        raise EnrollError(f"{name!r} is not enrolled in {root}")
    count = len(singles)
    for p in singles:
        p.unlink()
    if folder.is_dir():
        count += sum(1 for p in folder.iterdir() if p.is_file() and not p.is_symlink())
        shutil.rmtree(folder)  # never follows links inside (it works on descriptors)
    _purge_cache(Path(root), {p.name for p in singles}, f"{folder.name}/", settings)
    return count


def _purge_cache(root: Path, singles: set[str], prefix: str, settings: EngineSettings | None) -> None:
    """Drop the removed person's encodings from every model's cache now, not at the next load."""
    settings = settings or EngineSettings()
    for model in MODELS:
        these = dataclasses.replace(settings, model=model)
        cache = cache_path(root, these)
        if not os.path.lexists(cache):
            continue
        entries = read_cache(cache, these, root)
        kept = {k: v for k, v in entries.items() if not (k.startswith(prefix) or k in singles)}
        if entries and len(kept) != len(entries):
            write_cache(cache, kept, these, root)
        elif not entries:
            cache.unlink()  # not readable with these settings: it may hold the person; rebuilt on the next load


def rename_person(root: Path, old: str, new: str, settings: EngineSettings) -> None:
    src = person_folder(root, old)
    dst = person_folder(root, new)
    if not src.is_dir():
        raise EnrollError(f"{old!r} is not enrolled in {root} (as a folder)")
    if dst.exists():
        raise EnrollError(f"{new!r} is already enrolled in {root}")
    src.rename(dst)
    # carry the cached encodings over, so nothing is encoded again
    cache = cache_path(root, settings)
    entries = read_cache(cache, settings, root)
    if entries:
        prefix_old, prefix_new = f"{src.name}/", f"{dst.name}/"
        moved = {(prefix_new + k[len(prefix_old) :] if k.startswith(prefix_old) else k): v for k, v in entries.items()}
        write_cache(cache, moved, settings, root)


# -- enrollment in front of a camera -----------------------------------------------------------
GUIDANCE = {
    "no face found": "look at the camera",
    "faces; enrollment needs exactly one": "one person at a time, please",
    "face too small": "move closer",
    "blurred": "hold still",
    "face turned to the side": "turn a little towards the camera",
    "head tilted": "hold your head level",
    "near-duplicate": "turn a little",
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
    threshold: float = DLIB.threshold,
    timeout_s: float = 120.0,
) -> EnrollReport:
    """Capture `count` good shots from a camera (or file). `show` draws guidance; it returns False to abort."""
    folder = person_folder(root, name)
    report = EnrollReport(folder.name)
    taken: list[np.ndarray] = []
    if gallery is not None and folder.name in gallery.names:
        taken = list(gallery.encodings[gallery.labels == gallery.names.index(folder.name)])
    new_encodings: list[np.ndarray] = []
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
        check = check_shot(engine, rgb, taken + new_encodings, detect)
        message = guidance(check.reason)
        if check.ok and frame.t - last_shot_t >= MIN_SHOT_INTERVAL_S:
            dest = save_shot(folder, rgb, "shot")
            report.accepted.append((Path(f"{source.name}#{frame.index}"), dest))
            new_encodings.append(check.face.encoding)
            last_shot_t = frame.t
            message = f"got {len(report.accepted)} of {count}"
        if message != last_message:
            log.info("enroll %s: %s", folder.name, message)
            last_message = message
        if show is not None and not show(frame.image, message, check.face):
            break
    if gallery is not None and new_encodings and len(gallery):
        report.lookalikes = lookalikes(gallery, folder.name, np.array(new_encodings), threshold)
    return report
