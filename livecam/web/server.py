"""The web page served on a thread of its own (waitress, a production WSGI server): `livecam web`, and beside a
running loop (`livecam run --web`), which it never makes wait."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .auth import PasswordHash, is_loopback, load_password

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8080"


class ListenError(ValueError):
    """An address the page cannot listen on (one line for the CLI)."""


@dataclass(frozen=True)
class Flags:
    """How the command spells its options, for its error lines (`livecam web` and `livecam run --web`)."""

    listen: str = "--listen"
    https_proxy: str = "--https-proxy"


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    password: PasswordHash | None
    https_proxy: bool
    flags: Flags


def web_settings(
    listen: str, state_folder: Path | None, https_proxy: bool = False, flags: Flags = Flags()
) -> WebSettings:
    """Where and how to serve the page, checked before anything loads: ListenError or AuthError (one line)."""
    host, port = parse_listen(listen, flags.listen)
    password = load_password(state_folder)
    check_exposure(host, password is not None, https_proxy, flags)
    return WebSettings(host, port, password, https_proxy, flags)


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets: [::1]:8080) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ListenError(f"{flag} {text!r}: give HOST:PORT, e.g. {DEFAULT_LISTEN}")
    try:
        number = int(port)
    except ValueError:
        raise ListenError(f"{flag} {text!r}: the port is not a number") from None
    if not 1 <= number <= 65535:
        raise ListenError(f"{flag} {text!r}: the port must be 1-65535")
    return host.strip("[]"), number


def check_exposure(host: str, has_password: bool, https_proxy: bool = False, flags: Flags = Flags()) -> None:
    """A page that shows faces, reachable from elsewhere (directly, or through a proxy), needs a password."""
    if https_proxy and not has_password:
        raise ListenError(
            f"{flags.https_proxy}: a proxy makes the page reachable from elsewhere, and no password is set: set one"
            " with `livecam web --set-password`"
        )
    if not is_loopback(host) and not has_password:
        raise ListenError(
            f"{flags.listen} {host}: not a loopback address, and no password is set: set one with"
            " `livecam web --set-password` (or listen on 127.0.0.1)"
        )


RESTART_MIN, RESTART_MAX = 1.0, 30.0  # seconds before the server is started again after a failure (doubling)


class WebServer:
    """`app` served on host:port by waitress, on a daemon thread; `stop()` closes it.

    The thread supervises the server: if waitress's loop ever dies, that is one error line and it serves again
    (on the same port) after a pause that doubles up to RESTART_MAX while it keeps failing. The door goes on."""

    def __init__(self, app, host: str, port: int, threads: int = 4, flag: str = "--listen") -> None:
        from waitress import create_server

        self._create = lambda port: create_server(app, host=host, port=port, threads=threads, ident="livecam")
        try:
            self._server = self._create(port)
        except OSError as exc:
            raise ListenError(f"{flag} {host}:{port}: cannot listen there ({exc.strerror or exc})") from None
        self.port = int(self._server.effective_port)  # port 0: the one the system chose
        self.host = host
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    def _serve(self) -> None:
        pause = RESTART_MIN
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._server.run()
            except Exception as exc:  # noqa: BLE001 - the page fails loudly, the loop goes on, the page comes back
                if self._stopping.is_set():
                    return  # closed by stop()
                log.error("web: the server stopped (%s); serving again in %g s", _one_line(exc), pause)
            else:
                if self._stopping.is_set():
                    return
                log.error("web: the server stopped; serving again in %g s", pause)
            if time.monotonic() - started > 10 * RESTART_MAX:
                pause = RESTART_MIN  # it had served a good while: a new failure starts the pauses afresh
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RESTART_MAX)
            self._server = self._restarted()

    def _restarted(self):
        """A new server on the same port, or the old one again if the port cannot be had back yet."""
        with contextlib.suppress(Exception):
            self._server.close()
        try:
            server = self._create(self.port)
        except OSError as exc:
            log.error("web: cannot listen on %s:%d again (%s); trying later", self.host, self.port, _one_line(exc))
            return _Failed(exc)
        self.restarts += 1
        log.info("web page on http://%s:%d/ again", self.host if ":" not in self.host else f"[{self.host}]", self.port)
        return server

    def start(self) -> WebServer:
        self._thread.start()
        log.info("web page on http://%s:%d/", self.host if ":" not in self.host else f"[{self.host}]", self.port)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(Exception):
            self._server.close()
        self._thread.join(timeout=5)


class _Failed:
    """A server that could not be made: running it fails at once, so the supervisor waits and tries again."""

    def __init__(self, exc: BaseException) -> None:
        self._exc = exc

    def run(self) -> None:
        raise self._exc

    def close(self) -> None:
        pass


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
