"""Secrets out of what livecam writes: credentials in URLs never reach a log, an event or a webhook."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"


def redact_url(text: str, hide_path: bool = False) -> str:
    """`text` with a URL's user:password and query hidden (and its path, with `hide_path`).

    Camera URLs keep their path (it names the stream); webhook paths are hidden
    because services put their secret there (Home Assistant's /api/webhook/<id>).
    Anything that is not a URL with a host comes back unchanged.
    """
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:  # a malformed URL: show none of it
        return HIDDEN if "://" in text else text
    if not parts.scheme or not parts.netloc or host is None:
        return text
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if "@" in parts.netloc:
        netloc = f"{HIDDEN}@{netloc}"
    path = parts.path
    if hide_path and path not in ("", "/"):
        path = "/" + HIDDEN
    query = HIDDEN if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))
