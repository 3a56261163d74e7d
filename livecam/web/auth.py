"""Who may use the web page: a password kept as a memory-hard hash, CSRF tokens, and a login rate limit.

Nothing here knows Flask: the app (app.py) asks these questions of every request.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..state import cache_key, state_dir
from ..storage import atomic_write_bytes, ensure_private_dir

PASSWORD_FILE = "web_password.json"
MIN_PASSWORD = 10  # characters
# scrypt: 2^15 x 8 x 128 bytes = 32 MiB and ~0.1 s a try here; a stolen file costs an attacker the same per guess
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
LOGIN_TRIES = 5  # failed logins from one address...
LOGIN_WINDOW_S = 300.0  # ...in this long, and that address waits for the oldest to age out


class AuthError(ValueError):
    """A password that cannot be used (one line for the CLI)."""


@dataclass(frozen=True)
class PasswordHash:
    salt: bytes
    digest: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def make(cls, password: str) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(salt, _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(self.digest, _scrypt(password, self.salt, self.n, self.r, self.p))

    def to_json(self) -> bytes:
        record = {"kdf": "scrypt", "n": self.n, "r": self.r, "p": self.p, "salt": self.salt.hex()}
        return json.dumps({**record, "hash": self.digest.hex()}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PasswordHash:
        record = json.loads(data)
        if record.get("kdf") != "scrypt":
            raise ValueError("not an scrypt hash")
        n, r, p = int(record["n"]), int(record["r"]), int(record["p"])
        if not (2**14 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):  # a hostile file must not exhaust memory
            raise ValueError("scrypt parameters out of range")
        return cls(bytes.fromhex(record["salt"]), bytes.fromhex(record["hash"]), n, r, p)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=32)


def password_path(folder: Path | None = None) -> Path:
    return state_dir(folder) / PASSWORD_FILE


def set_password(password: str, folder: Path | None = None) -> Path:
    """Keep `password`'s hash in the state folder (0600 in 0700, written atomically)."""
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"the password must have at least {MIN_PASSWORD} characters")
    path = password_path(folder)
    ensure_private_dir(path.parent)
    atomic_write_bytes(path, PasswordHash.make(password).to_json())
    return path


def load_password(folder: Path | None = None) -> PasswordHash | None:
    """The stored hash; None when no password is set. AuthError if the file cannot be used."""
    path = password_path(folder)
    try:
        data = path.read_bytes() if not path.is_symlink() else b""
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return PasswordHash.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError(
            f"{path}: not a password livecam wrote ({exc}); set it again with livecam web --set-password"
        ) from None


def session_secret(folder: Path | None = None) -> bytes:
    """The key that signs session cookies: derived from livecam's own key, so it outlives a restart."""
    key = cache_key(create=True, folder=folder)
    assert key is not None
    return hmac.new(key, b"livecam web session", hashlib.sha256).digest()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


class LoginLimiter:
    """At most LOGIN_TRIES failed logins per address in LOGIN_WINDOW_S; thread-safe, bounded in memory."""

    def __init__(self, tries: int = LOGIN_TRIES, window: float = LOGIN_WINDOW_S, clock=time.monotonic) -> None:
        self.tries, self.window, self._clock = tries, window, clock
        self._failed: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allowed(self, address: str) -> bool:
        with self._lock:
            return len(self._recent(address)) < self.tries

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address).append(self._clock())
            if len(self._failed) > 10_000:  # many addresses: forget the quiet ones
                for key in [k for k, v in self._failed.items() if not v][:5000]:
                    del self._failed[key]

    def _recent(self, address: str) -> deque[float]:
        times = self._failed.setdefault(address, deque())
        while times and self._clock() - times[0] > self.window:
            times.popleft()
        return times
