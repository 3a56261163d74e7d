"""The gallery: known people's photos, their encodings, and a pickle-free cache.

Layout: `known_faces/<Name>/*.jpg` (many photos per person) or
`known_faces/<Name>.jpg`. Encodings are cached in
`known_faces/.livecam-cache.npz`, keyed per photo by its relative path and
`Stamp` (size, mtime, inode, ctime), so that only new or changed photos are
encoded. The cache is sealed with a MAC whose key is not in the gallery
(`state.py`): a cache someone else wrote, or edited, does not verify. It is
read as the untrusted file it is: a regular file, stored members of bounded
size, arrays of the right shapes and finite values; anything else is rebuilt
from the photos.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..models import MODELS, spec_of
from ..names import NameError_, validate_name
from ..state import KEY_NAME, StateError, cache_key, seal, state_dir
from ..storage import atomic_write_bytes, ensure_private_dir
from .batch import EngineSettings, FileResult, encode_files
from .faces import Face, FaceEngine
from .images import is_image_path
from .matching import Matcher

log = logging.getLogger(__name__)

CACHE_NAME = ".livecam-cache.npz"  # dlib's; another model's is .livecam-cache-<model>.npz (cache_path)
CACHE_FORMAT = "livecam-gallery"
CACHE_VERSION = 3  # 2: sealed with the state key; 3: photos keyed by inode and ctime too (Stamp)
MAX_CACHE_BYTES = 128 << 20  # ~100,000 photos; a bigger "cache" is not ours
_STAMP_MEMBERS = ("sizes", "mtimes", "inodes", "ctimes")  # Stamp's fields, in order
_MEMBERS = ("format", "version", "settings", "paths", *_STAMP_MEMBERS, "encodings", "reasons", "mac")
# A photo with several faces is used only when its largest face is at least
# this many times the area of the next: then it is clearly the subject.
DOMINANT_AREA_RATIO = 2.0


@dataclass(frozen=True)
class Stamp:
    """What tells one version of a photo from another without reading it: the loader's cache and the
    hot-reload watcher both go by it. Size and mtime alone could be forged: a stranger's photo, once
    encoded, swapped for a real photo of the person padded to the same size, its mtime restored with
    os.utime, stayed cached as that person. os.utime cannot set the ctime, and a file put in its place
    has a new ctime (and usually a new inode); hashing every photo at each 1 s poll would cost too much.
    Renaming a person's folder changes neither for the photos in it: their encodings are kept."""

    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


@dataclass(frozen=True)
class Photo:
    name: str
    path: Path
    relpath: str
    stamp: Stamp


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
    """Every gallery photo under `root`, sorted.

    Skipped: hidden files, anything that is a symlink (a link to a photo outside
    the gallery, or to /etc/shadow, would be read and enrolled), anything that is
    not a regular file, and folders or files whose name cannot be a person's
    (a newline, "unknown", too long: `names.validate_name`), each with a warning.
    """
    root = Path(root)
    photos: list[Photo] = []
    if not root.is_dir():
        return photos
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            log.warning("%s: skipped: a symbolic link (the gallery holds real files only)", _shown(entry))
            continue
        is_dir = entry.is_dir()
        if not is_dir and not is_image_path(entry):
            continue
        try:
            name = validate_name(entry.name if is_dir else entry.stem)
        except NameError_ as exc:
            log.warning("%s: skipped: %s", _shown(entry), exc)
            continue
        if is_dir:
            for f in sorted(entry.iterdir()):
                if f.name.startswith(".") or not is_image_path(f):
                    continue
                if f.is_symlink() or not f.is_file():
                    log.warning("%s: skipped: not a regular file (symbolic links are not followed)", _shown(f))
                    continue
                photos.append(_photo(root, name, f))
        elif entry.is_file():
            photos.append(_photo(root, name, entry))
    return photos


def _shown(path: Path) -> str:
    """A path for a log line: control characters escaped, so a file name cannot forge a line."""
    text = str(path)
    return text if text.isprintable() else ascii(text)


def _photo(root: Path, name: str, path: Path) -> Photo:
    return Photo(name, path, path.relative_to(root).as_posix(), Stamp.of(path.lstat()))


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
    stamp: Stamp  # of the photo when it was encoded
    encoding: np.ndarray | None
    reason: str


def _digest(arrays: dict[str, np.ndarray]) -> bytes:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.digest()


def _mac(key: bytes, folder: Path, arrays: dict[str, np.ndarray]) -> str:
    # the gallery's own path is sealed in: a cache copied from another gallery does not verify
    return seal(key, str(folder.resolve()).encode(), _digest(arrays))


def _settings_tag(settings: EngineSettings) -> str:
    # Encodings made with other settings are not comparable: a change rebuilds.
    s = settings
    model = f"{s.model}.r{MODELS[s.model].revision}" if MODELS[s.model].revision > 1 else s.model  # dlib's: as ever
    return f"{model}/{s.detector}/{s.upsample}/{s.max_upsample}/{s.cnn_fallback}/{s.jitters}/{s.flip_average}"


def read_cache(path: Path, settings: EngineSettings, root: Path | None = None) -> dict[str, _CacheEntry]:
    """The cache's entries; empty (with a warning) if missing, foreign, edited, damaged or not ours.
    `root`: the gallery it belongs to (default: the cache's folder)."""
    try:
        arrays = _read_members(path)
    except FileNotFoundError:
        return {}
    except Exception as exc:  # noqa: BLE001 - any damage at all means: rebuild
        log.warning("%s: gallery cache not used (%s); rebuilding it", path, _one_line(exc))
        return {}
    try:
        stored = str(arrays.pop("mac", ""))
        version = int(arrays["version"]) if arrays["version"].dtype.kind in "iu" else None
        if str(arrays["format"]) != CACHE_FORMAT or version is None or version > CACHE_VERSION:
            raise ValueError("format or version differs")
        if version < CACHE_VERSION:
            log.warning(
                "%s: gallery cache from an earlier livecam (version %d: photos were not yet told apart by inode"
                " and ctime); re-encoding the gallery once", path, version,
            )  # fmt: skip
            return {}
        if sorted(arrays) != sorted(m for m in _MEMBERS if m != "mac"):
            raise ValueError("unexpected members")
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: gallery cache not used (%s); rebuilding it", path, _one_line(exc))
        return {}
    try:
        key = cache_key(create=False, folder=settings.state_dir)
    except StateError as exc:
        log.warning("%s; gallery cache not used", exc)
        return {}
    if key is None or not hmac.compare_digest(stored.encode(), _mac(key, root or path.parent, arrays).encode()):
        _foreign(path, stored, state_dir(settings.state_dir))
        return {}
    try:
        if str(arrays["settings"]) != _settings_tag(settings):
            log.info("encoding settings changed; re-encoding the gallery")
            return {}
        paths, encodings, reasons = arrays["paths"], arrays["encodings"], arrays["reasons"]
        stamps = [arrays[m] for m in _STAMP_MEMBERS]
        n = len(paths)
        if not (
            paths.dtype.kind == "U"
            and reasons.dtype.kind == "U"
            and [a.dtype.kind for a in stamps] == ["i", "i", "u", "i"]  # sizes, mtimes, inodes (u64), ctimes
            and encodings.dtype == np.float32
            and paths.shape == reasons.shape == (n,)
            and all(a.shape == (n,) for a in stamps)
            and encodings.shape == (n, spec_of(settings.model).dimension)
        ):
            raise ValueError("arrays of the wrong type or shape")
        if not np.isfinite(encodings).all():
            raise ValueError("encodings that are not finite")
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: gallery cache not used (%s); rebuilding it", path, _one_line(exc))
        return {}
    return {
        str(p): _CacheEntry(Stamp(*(int(a[i]) for a in stamps)), None if r else e.copy(), str(r))
        for i, (p, e, r) in enumerate(zip(paths, encodings, reasons, strict=True))
    }


_announced: set[tuple[str, str]] = set()  # (cache, its seal): foreign caches already warned about


def _foreign(path: Path, stored: str, state: Path) -> None:
    """One warning per foreign cache: the watcher may meet the same one again (a cache it cannot
    rewrite), and a rebuild that is never announced is how a door re-encoded its gallery at every
    enrollment unnoticed (the operator's commands used another state folder than the service)."""
    if (str(path), stored) in _announced:
        log.debug("%s: gallery cache still sealed with another key; rebuilding it", path)
        return
    _announced.add((str(path), stored))
    log.warning(
        "%s: gallery cache not sealed by this livecam's key (%s): written with another state folder (state_dir:"
        " use the service's config for every command), by another user, or edited; rebuilding it",
        path, state / KEY_NAME,
    )  # fmt: skip


def _read_members(path: Path) -> dict[str, np.ndarray]:
    """The cache's arrays, read as an untrusted file: a regular file (a FIFO would hang start-up),
    stored (not deflated: a few hundred KB can inflate to GBs) members of bounded size, no pickles.
    Members are those of this version or earlier ones (read_cache checks the version, then the set)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > MAX_CACHE_BYTES:
            raise ValueError(f"larger than {MAX_CACHE_BYTES >> 20} MB")
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            if len(names) != len(infos) or not {"format.npy", "version.npy"} <= names <= {f"{m}.npy" for m in _MEMBERS}:
                raise ValueError("unexpected members")
            if sum(i.file_size for i in infos) > MAX_CACHE_BYTES or any(
                i.compress_type != zipfile.ZIP_STORED for i in infos
            ):
                raise ValueError("compressed or oversized members")
            arrays = {}
            for info in infos:
                with zf.open(info) as member:
                    arrays[info.filename.removesuffix(".npy")] = np.lib.format.read_array(member, allow_pickle=False)
            return arrays


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:160]


def write_cache(
    path: Path, entries: dict[str, _CacheEntry], settings: EngineSettings, root: Path | None = None
) -> None:
    try:
        key = cache_key(create=True, folder=settings.state_dir)
    except StateError as exc:
        log.warning("%s; gallery cache not written (photos are encoded at every start)", exc)
        return
    assert key is not None
    keys = sorted(entries)
    dimension = spec_of(settings.model).dimension
    zero = np.zeros(dimension, np.float32)
    arrays = {
        "format": np.array(CACHE_FORMAT),
        "version": np.array(CACHE_VERSION),
        "settings": np.array(_settings_tag(settings)),
        "paths": np.array(keys, dtype=str).reshape(-1),
        "sizes": np.array([entries[k].stamp.size for k in keys], np.int64),
        "mtimes": np.array([entries[k].stamp.mtime_ns for k in keys], np.int64),
        "inodes": np.array([entries[k].stamp.ino for k in keys], np.uint64),  # 64-bit inodes (overlayfs) fit
        "ctimes": np.array([entries[k].stamp.ctime_ns for k in keys], np.int64),
        "encodings": np.array(
            [entries[k].encoding if entries[k].encoding is not None else zero for k in keys], np.float32
        ).reshape(-1, dimension),
        "reasons": np.array([entries[k].reason for k in keys], dtype=str).reshape(-1),
    }
    ensure_private_dir(path.parent)
    arrays["mac"] = np.array(_mac(key, root or path.parent, arrays))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
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
    cache = cache_path(root, settings)
    photos = scan_photos(root)
    cached = read_cache(cache, settings, root) if use_cache else {}
    entries: dict[str, _CacheEntry] = {}
    todo: list[Photo] = []
    for photo in photos:
        hit = cached.get(photo.relpath)
        if hit is not None and hit.stamp == photo.stamp:
            entries[photo.relpath] = hit
        else:
            todo.append(photo)
    if todo:
        log.info("encoding %d new or changed gallery photos", len(todo))
        results: list[FileResult] = list(
            encode_files([p.path for p in todo], settings, workers, engine, follow_symlinks=False)
        )
        for photo, result in zip(todo, results, strict=True):
            if result.error:
                reason = result.error.removeprefix(f"{photo.path}: ")
                face = None
            else:
                face, reason = pick_subject(result.faces)
            if reason:
                log.warning("%s: skipped: %s", photo.path, reason)
            entries[photo.relpath] = _CacheEntry(photo.stamp, face.encoding if face else None, reason or "")
    if use_cache and (todo or set(cached) != set(entries)) and root.is_dir():
        try:
            write_cache(cache, entries, settings, root)
        except OSError as exc:
            log.warning("%s: cannot write gallery cache (%s)", cache, exc.strerror or exc)
    return _assemble(photos, entries, encoded_now=len(todo), dimension=spec_of(settings.model).dimension)


def cache_path(root: Path, settings: EngineSettings) -> Path:
    """Each model keeps its own cache beside the photos: switching models back and forth re-encodes nothing.

    With `cache_dir` (doors sharing one gallery folder, or a read-only one), the cache is there
    instead, named after the gallery too: each door keeps its own, and none writes into the shared
    folder (two doors' caches, each sealed with its own key, would replace each other at every start)."""
    name = CACHE_NAME if settings.model == "dlib" else f".livecam-cache-{settings.model}.npz"
    if settings.cache_dir is None:
        return Path(root) / name
    gallery = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]
    return Path(settings.cache_dir) / name.replace(".npz", f"-{gallery}.npz")


def _assemble(photos: list[Photo], entries: dict[str, _CacheEntry], encoded_now: int, dimension: int) -> Gallery:
    names = sorted({p.name for p in photos if entries[p.relpath].encoding is not None})
    index = {n: i for i, n in enumerate(names)}
    rows = [(p, entries[p.relpath]) for p in photos]
    used = [(p, e) for p, e in rows if e.encoding is not None]
    encodings = np.array([e.encoding for _, e in used], np.float32).reshape(-1, dimension)
    labels = np.array([index[p.name] for p, _ in used], np.int64)
    skipped = {p.relpath: e.reason for p, e in rows if e.encoding is None}
    return Gallery(names, encodings, labels, [p.relpath for p, _ in used], skipped, encoded_now)


def gallery_stats(gallery: Gallery) -> str:
    return f"{len(gallery.names)} people, {len(gallery)} photos" + (
        f", {len(gallery.skipped)} skipped" if gallery.skipped else ""
    )
