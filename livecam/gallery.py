"""The gallery: known people's photos, their encodings, and a pickle-free cache.

Layout: `known_faces/<Name>/*.jpg` (many photos per person) or
`known_faces/<Name>.jpg`. Encodings are cached in
`known_faces/.livecam-cache.npz`, keyed per photo by (relative path, size,
mtime), so that only new or changed photos are encoded. The cache carries a
format version and a checksum; anything that does not verify is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .batch import EngineSettings, FileResult, encode_files
from .faces import EMBEDDING_SIZE, Face, FaceEngine
from .images import is_image_path
from .matching import Matcher
from .storage import atomic_write_bytes, ensure_private_dir

log = logging.getLogger(__name__)

CACHE_NAME = ".livecam-cache.npz"
CACHE_FORMAT = "livecam-gallery"
CACHE_VERSION = 1
# A photo with several faces is used only when its largest face is at least
# this many times the area of the next: then it is clearly the subject.
DOMINANT_AREA_RATIO = 2.0


@dataclass(frozen=True)
class Photo:
    name: str
    path: Path
    relpath: str
    size: int
    mtime_ns: int


@dataclass
class Gallery:
    """Enrolled encodings: row i belongs to person names[labels[i]]."""

    names: list[str]
    encodings: np.ndarray  # (N, 128) float32
    labels: np.ndarray  # (N,) int64
    photos: list[str]  # relpath of each row
    skipped: dict[str, str] = field(default_factory=dict)  # relpath -> reason
    encoded_now: int = 0  # how many photos this load had to encode

    def __len__(self) -> int:
        return len(self.encodings)

    def matcher(self, threshold: float, margin: float) -> Matcher:
        return Matcher(self.encodings, self.labels, self.names, threshold, margin)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.names, 0)
        for label in self.labels:
            counts[self.names[label]] += 1
        return counts


def scan_photos(root: Path) -> list[Photo]:
    """Every gallery photo under `root`, sorted; hidden files and symlinked folders skipped."""
    root = Path(root)
    photos: list[Photo] = []
    if not root.is_dir():
        return photos
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            for f in sorted(entry.iterdir()):
                if not f.name.startswith(".") and is_image_path(f) and f.is_file():
                    photos.append(_photo(root, entry.name, f))
        elif entry.is_file() and is_image_path(entry):
            photos.append(_photo(root, entry.stem, entry))
    return photos


def _photo(root: Path, name: str, path: Path) -> Photo:
    st = path.stat()
    return Photo(name, path, path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns)


def pick_subject(faces: list[Face]) -> tuple[Face | None, str | None]:
    """The one face a gallery photo is of, or the reason there is none."""
    if not faces:
        return None, "no face found"
    if len(faces) == 1:
        return faces[0], None
    first, second = sorted(faces, key=lambda f: f.box.area, reverse=True)[:2]
    if first.box.area >= DOMINANT_AREA_RATIO * second.box.area:
        return first, None
    return None, f"{len(faces)} faces and none clearly the largest"


# -- cache ---------------------------------------------------------------------------------
@dataclass
class _CacheEntry:
    size: int
    mtime_ns: int
    encoding: np.ndarray | None
    reason: str


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _settings_tag(settings: EngineSettings) -> str:
    # Encodings made with other settings are not comparable: a change rebuilds.
    s = settings
    return f"{s.detector}/{s.upsample}/{s.max_upsample}/{s.cnn_fallback}/{s.jitters}/{s.flip_average}"


def read_cache(path: Path, settings: EngineSettings) -> dict[str, _CacheEntry]:
    """The cache's entries; empty (with a warning) if missing, foreign, edited or truncated."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        stored = str(arrays.pop("checksum"))
        if str(arrays["format"]) != CACHE_FORMAT or int(arrays["version"]) != CACHE_VERSION:
            raise ValueError("format or version differs")
        if stored != _checksum(arrays):
            raise ValueError("checksum does not match")
        if str(arrays["settings"]) != _settings_tag(settings):
            log.info("encoding settings changed; re-encoding the gallery")
            return {}
        paths, sizes, mtimes = arrays["paths"], arrays["sizes"], arrays["mtimes"]
        encodings, reasons = arrays["encodings"], arrays["reasons"]
        if encodings.shape != (len(paths), EMBEDDING_SIZE):
            raise ValueError("encodings have the wrong shape")
    except Exception as exc:  # any damage at all means: rebuild
        log.warning("%s: gallery cache unreadable (%s); rebuilding it", path, str(exc).splitlines()[0])
        return {}
    return {
        str(p): _CacheEntry(int(s), int(m), None if r else e.astype(np.float32), str(r))
        for p, s, m, e, r in zip(paths, sizes, mtimes, encodings, reasons, strict=True)
    }


def write_cache(path: Path, entries: dict[str, _CacheEntry], settings: EngineSettings) -> None:
    keys = sorted(entries)
    zero = np.zeros(EMBEDDING_SIZE, np.float32)
    arrays = {
        "format": np.array(CACHE_FORMAT),
        "version": np.array(CACHE_VERSION),
        "settings": np.array(_settings_tag(settings)),
        "paths": np.array(keys, dtype=str).reshape(-1),
        "sizes": np.array([entries[k].size for k in keys], np.int64),
        "mtimes": np.array([entries[k].mtime_ns for k in keys], np.int64),
        "encodings": np.array(
            [entries[k].encoding if entries[k].encoding is not None else zero for k in keys], np.float32
        ).reshape(-1, EMBEDDING_SIZE),
        "reasons": np.array([entries[k].reason for k in keys], dtype=str).reshape(-1),
    }
    arrays["checksum"] = np.array(_checksum(arrays))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    ensure_private_dir(path.parent)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-write
        stale.unlink(missing_ok=True)
    atomic_write_bytes(path, buf.getvalue())


# -- loading -------------------------------------------------------------------------------
def load_gallery(
    root: Path,
    settings: EngineSettings,
    workers: int = 0,
    engine: FaceEngine | None = None,
    use_cache: bool = True,
) -> Gallery:
    """Scan `root`, encode only photos the cache does not know, save the cache, return the gallery."""
    root = Path(root)
    cache_path = root / CACHE_NAME
    photos = scan_photos(root)
    cached = read_cache(cache_path, settings) if use_cache else {}
    entries: dict[str, _CacheEntry] = {}
    todo: list[Photo] = []
    for photo in photos:
        hit = cached.get(photo.relpath)
        if hit is not None and hit.size == photo.size and hit.mtime_ns == photo.mtime_ns:
            entries[photo.relpath] = hit
        else:
            todo.append(photo)
    if todo:
        log.info("encoding %d new or changed gallery photos", len(todo))
        results: list[FileResult] = list(encode_files([p.path for p in todo], settings, workers, engine))
        for photo, result in zip(todo, results, strict=True):
            if result.error:
                reason = result.error.removeprefix(f"{photo.path}: ")
                face = None
            else:
                face, reason = pick_subject(result.faces)
            if reason:
                log.warning("%s: skipped: %s", photo.path, reason)
            entries[photo.relpath] = _CacheEntry(
                photo.size, photo.mtime_ns, face.encoding if face else None, reason or ""
            )
    if use_cache and (todo or set(cached) != set(entries)) and root.is_dir():
        try:
            write_cache(cache_path, entries, settings)
        except OSError as exc:
            log.warning("%s: cannot write gallery cache (%s)", cache_path, exc.strerror or exc)
    return _assemble(photos, entries, encoded_now=len(todo))


def _assemble(photos: list[Photo], entries: dict[str, _CacheEntry], encoded_now: int) -> Gallery:
    names = sorted({p.name for p in photos if entries[p.relpath].encoding is not None})
    index = {n: i for i, n in enumerate(names)}
    rows = [(p, entries[p.relpath]) for p in photos]
    used = [(p, e) for p, e in rows if e.encoding is not None]
    encodings = np.array([e.encoding for _, e in used], np.float32).reshape(-1, EMBEDDING_SIZE)
    labels = np.array([index[p.name] for p, _ in used], np.int64)
    skipped = {p.relpath: e.reason for p, e in rows if e.encoding is None}
    return Gallery(names, encodings, labels, [p.relpath for p, _ in used], skipped, encoded_now)


def gallery_stats(gallery: Gallery) -> str:
    return f"{len(gallery.names)} people, {len(gallery)} photos" + (
        f", {len(gallery.skipped)} skipped" if gallery.skipped else ""
    )
