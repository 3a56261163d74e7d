"""Private, atomic file writes for biometric data (photos, encodings, logs).

Where livecam writes or deletes, it never follows a symlink: a link planted
where a log or a photo goes would make livecam write (or chmod, or delete)
the file it points to. Files are opened with O_NOFOLLOW and made 0600 through
the open descriptor; folders are created one level at a time (never missing
parents nobody asked for), and an existing folder that others can write to is
refused rather than changed under them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


class OutputError(OSError):
    """A place livecam was asked to write cannot be used; str() is one line naming it."""


def ensure_private_dir(path: Path) -> Path:
    """`path` as a private folder: created 0700 if missing (its parent must exist).

    An existing folder must be a real folder (not a symlink), owned by this user
    and not writable by everyone (a shared folder such as /tmp is refused, never
    chmod-ed); one with group or other permissions is made 0700.
    """
    path = Path(path)
    try:
        os.mkdir(path, PRIVATE_DIR)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise OutputError(f"{path}: its folder {path.parent} does not exist") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot create folder ({exc.strerror or exc})") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{path}: is a symbolic link; livecam writes only into real folders")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: exists and is not a folder")
    if st.st_uid != os.getuid():
        raise OutputError(f"{path}: belongs to another user; choose a folder of your own")
    if st.st_mode & 0o002:
        raise OutputError(
            f"{path}: everyone can write into it (mode {stat.S_IMODE(st.st_mode):o}); choose a private folder"
        )
    if st.st_mode & 0o077:
        with contextlib.suppress(OSError):
            os.chmod(path, PRIVATE_DIR, follow_symlinks=False)
    return path


def check_output_dir(path: Path | str) -> Path:
    """Fail now if livecam could not write into folder `path` (or create it: its parent must exist)."""
    path = Path(path)
    if os.path.lexists(path):
        if path.is_symlink() or not path.is_dir():
            raise OutputError(f"{path}: not a folder (symbolic links are not followed)")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: folder is not writable")
    elif not path.parent.is_dir():
        raise OutputError(f"{path}: its folder {path.parent} does not exist")
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {path.parent} is not writable")
    return path


def check_output_file(path: Path | str) -> Path:
    """Fail now, before any work, if `path` cannot be written: one line naming it.

    Its folder must exist (nothing the user did not name is created) and be
    writable; the file itself, if there, must be a regular file, not a symlink.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {parent} is not writable")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{path}: is a symbolic link; livecam does not write through links")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{path}: exists and is not a regular file")
    return path


def open_private(path: Path | str, append: bool = False) -> int:
    """A descriptor for writing `path` (created, or truncated unless `append`), never through a
    symlink, and 0600 even when the file was already there with another mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags, PRIVATE_FILE)
    except OSError as exc:
        why = "is a symbolic link" if exc.errno == 40 else (exc.strerror or str(exc))  # ELOOP
        raise OutputError(f"{path}: cannot write ({why})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{path}: exists and is not a regular file")
        os.set_blocking(fd, True)
        if stat.S_IMODE(st.st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def atomic_write_bytes(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half.

    The temporary file lives in the same folder (same filesystem, so rename is
    atomic), is created 0600 from the start, and is fsynced before the rename.
    A symlink at `path` is replaced, never written through.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_regular(path: Path | str, limit: int, follow_symlinks: bool = False) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (a FIFO or a device is never waited on);
    not through a symlink unless `follow_symlinks`. OSError otherwise; str() names the file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path}: not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path}: larger than {limit} bytes")
    return data
