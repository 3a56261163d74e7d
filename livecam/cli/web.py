"""`livecam web`: the door's web page for a gallery folder (no camera): unknown visitors, the gallery, events."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from ..config import Config, override
from ..stopping import StopRequest
from .common import EXIT_OK, UsageError, _known_faces

log = logging.getLogger("livecam")


def cmd_web(args: argparse.Namespace, cfg: Config) -> int:
    from ..web import AuthError, ListenError, WebServer, create_app, set_password, web_settings

    if args.set_password:
        password = _read_password()
        try:
            path = set_password(password, cfg.state_dir)
        except AuthError as exc:
            raise UsageError(str(exc)) from None
        print(f"password set ({path})")
        return EXIT_OK
    try:
        web = web_settings(args.listen, cfg.state_dir, args.https_proxy)
    except (ListenError, AuthError) as exc:
        raise UsageError(str(exc)) from None
    cfg = override(cfg, known_faces=_known_faces(cfg, args, missing_ok=True))
    if not cfg.known_faces.exists():
        log.warning("%s: no gallery folder yet: the first photo added on the page makes it", cfg.known_faces)
    try:
        app = create_app(cfg, web.password, cfg.state_dir, tls=web.https_proxy)
        server = WebServer(app, web.host, web.port)
    except (ListenError, AuthError) as exc:
        raise UsageError(str(exc)) from None
    with StopRequest() as stop:
        server.start()
        while not stop.wait(0.5):
            pass
    server.stop()
    return EXIT_OK


def _read_password() -> str:
    """From the terminal (asked twice), or one line of standard input (a script, a service's set-up)."""
    if sys.stdin.isatty():
        first = getpass.getpass("new password for the web page: ")
        if getpass.getpass("again: ") != first:
            raise UsageError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def add_parser(sub) -> None:
    from ..web.server import DEFAULT_LISTEN

    p = sub.add_parser("web", help="the door's web page: unknown visitors, the gallery, events (no camera)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument(
        "--https-proxy",
        action="store_true",
        help="served behind a reverse proxy that terminates TLS: Secure cookies, the client's address from"
        " X-Forwarded-For (a password is then required)",
    )
    p.add_argument(
        "--set-password",
        action="store_true",
        help="set the page's password (asked twice, or one line on standard input) and exit",
    )
    p.set_defaults(func=cmd_web)
