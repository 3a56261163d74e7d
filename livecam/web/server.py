"""The web page served on a thread of its own (waitress, a production WSGI server): `livecam web`, and beside a
running loop (`livecam run --web`), which it never makes wait."""

from __future__ import annotations

import logging
import threading
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


class WebServer:
    """`app` served on host:port by waitress, on a daemon thread; `stop()` closes it."""

    def __init__(self, app, host: str, port: int, threads: int = 4, flag: str = "--listen") -> None:
        from waitress import create_server

        try:
            self._server = create_server(app, host=host, port=port, threads=threads, ident="livecam")
        except OSError as exc:
            raise ListenError(f"{flag} {host}:{port}: cannot listen there ({exc.strerror or exc})") from None
        self.port = int(self._server.effective_port)  # port 0: the one the system chose
        self.host = host
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run()
        except OSError:  # closed by stop()
            pass
        except Exception:  # the page fails loudly, the loop goes on
            log.exception("web: the server stopped")

    def start(self) -> WebServer:
        self._thread.start()
        log.info("web page on http://%s:%d/", self.host if ":" not in self.host else f"[{self.host}]", self.port)
        return self

    def stop(self) -> None:
        self._server.close()
        self._thread.join(timeout=5)
