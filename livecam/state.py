"""livecam's own state, outside any folder it reads photos from: the key that seals the gallery cache.

Anyone who can write into `known_faces/` can write a cache there too; a cache
is trusted only if it carries a MAC made with a key that lives in livecam's
state folder, 0600 in a 0700 folder: the config's `state_dir` when it names
one, else `$XDG_STATE_HOME/livecam`, by default `~/.local/state/livecam`. A
cache built elsewhere, or edited, does not verify and is rebuilt from the
photos. The commands run by hand for a service (enroll, gallery) must use the
service's state folder, or each of them makes the service re-encode its whole
gallery: `state_dir` in the config they share does that, whatever the user or
environment they run with.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from .storage import PRIVATE_DIR, PRIVATE_FILE

log = logging.getLogger(__name__)

KEY_NAME = "cache-key"
KEY_BYTES = 32


class StateError(OSError):
    """livecam's state folder or key cannot be used; str() is one line."""


class CameraInUse(StateError):
    """Another running livecam holds this camera name; str() is one line."""


def state_dir(configured: Path | None = None) -> Path:
    """livecam's state folder: `configured` (the config's state_dir) if given, else the XDG default."""
    if configured is not None:
        return Path(configured)
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "livecam"


def cache_key(create: bool = True, folder: Path | None = None) -> bytes | None:
    """The secret key in state folder `folder` (default: state_dir()); made on first use.
    None if there is none and `create` is off."""
    folder = state_dir(folder)
    path = folder / KEY_NAME
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            return None
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        if folder.is_symlink() or not folder.is_dir():
            raise StateError(f"{folder}: not a folder")
        with contextlib.suppress(OSError):
            os.chmod(folder, PRIVATE_DIR, follow_symlinks=False)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:  # another livecam made it just now
        return _read_key(path)
    except OSError as exc:
        raise StateError(f"{folder}: cannot keep livecam's key there ({exc.strerror or exc})") from None
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key


def _read_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateError(f"{path}: cannot read livecam's key ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise StateError(f"{path}: livecam's key must be a file of yours that only you can read (0600)")
        key = f.read(KEY_BYTES + 1)
    if len(key) != KEY_BYTES:
        raise StateError(f"{path}: livecam's key is damaged (remove it: the gallery cache is then rebuilt)")
    return key


def seal(key: bytes, *parts: bytes) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(8, "big"))  # unambiguous: no two splits of the bytes give one MAC
        mac.update(part)
    return mac.hexdigest()


class CameraLock:
    """A camera name held by this process: an flock on `camera-<name>.lock` in the state folder.

    Two runs under one name share an MQTT client id (the broker kicks each off in turn) and an
    outbox. The kernel drops the lock when the process ends, however it ends, so a crashed run
    never blocks the next; the file itself stays (removing it would race with a run taking it).
    """

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> CameraLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_camera(name: str, folder: Path | None = None) -> CameraLock:
    """Hold camera `name` (a config.CAMERA_NAME: safe in a file name) in state folder `folder` (default:
    state_dir()) for as long as the lock is open; CameraInUse if another process holds it."""
    folder = state_dir(folder)
    path = folder / f"camera-{name}.lock"
    with contextlib.suppress(OSError):  # a folder that cannot be made is reported by the open below
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if folder.is_symlink():
        raise StateError(f"{folder}: not a folder")
    try:
        # O_CLOEXEC (Python's default, explicit here): a child that outlived us must not keep the lock
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, PRIVATE_FILE)
    except OSError as exc:
        raise StateError(f"{path}: cannot lock the camera name there ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError(f"{path}: not a regular file; remove it")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise CameraInUse(
            f"camera name {name!r} is in use by another livecam run"
            + (f" (pid {holder})" if holder.isdigit() else "")
            + ": give this one another name with --name or camera.name"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    # who holds it, for the message above (read by the next run only while we hold the lock)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return CameraLock(fd, path)
