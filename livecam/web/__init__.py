"""The door's web page: unknown visitors, the gallery, the events (and, beside a run, its live view)."""

from __future__ import annotations

from .app import create_app
from .auth import AuthError, LoginLimiter, load_password, set_password
from .server import (
    DEFAULT_LISTEN,
    Flags,
    ListenError,
    WebServer,
    WebSettings,
    check_exposure,
    parse_listen,
    web_settings,
)

__all__ = [
    "DEFAULT_LISTEN",
    "Flags",
    "WebSettings",
    "web_settings",
    "AuthError",
    "ListenError",
    "LoginLimiter",
    "WebServer",
    "check_exposure",
    "create_app",
    "load_password",
    "parse_listen",
    "set_password",
]
