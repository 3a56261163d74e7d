"""People's names: what a folder in `known_faces/` may be called.

A name reaches log lines, events, environment variables of actions and file
names, so it is checked wherever one is read, the gallery scan included: any
script, but no path separator, no control character (a newline forged log
lines and gave a two-line LIVECAM_NAME), not too long for a file name, and not
"unknown", which would make a member look like a stranger.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 200  # a file name is at most 255 bytes, and shots get "-shot-NNN.jpg" appended
RESERVED_NAMES = ("unknown",)  # what strangers are called


class NameError_(ValueError):
    """A name that cannot be a person's; str() is one line (the name shown escaped)."""


def validate_name(name: str) -> str:
    """`name` normalized (NFC, stripped) if it can be a person's name; NameError_ otherwise."""
    clean = unicodedata.normalize("NFC", name).strip()
    shown = ascii(name)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if not clean:
        raise NameError_("name is empty")
    if clean.startswith("."):
        raise NameError_(f"name {shown} may not start with '.'")
    if any(c in "/\\\x00" or unicodedata.category(c).startswith("C") for c in clean):
        raise NameError_(f"name {shown} contains a path separator or control character")
    if len(clean) > MAX_NAME_CHARS or len(clean.encode("utf-8")) > MAX_NAME_BYTES:
        raise NameError_(f"name {shown} is too long (at most {MAX_NAME_CHARS} characters, {MAX_NAME_BYTES} bytes)")
    if clean.casefold() in RESERVED_NAMES:
        raise NameError_(f"name {shown} is reserved: it is what livecam calls strangers")
    return clean


CAMERA_NAME_CHARS = 64


def camera_name_for(source: str) -> str:
    """A camera name derived from its source: `camera-0`, a video file's stem, a stream's host.

    Only letters, digits, - and _ (config.CAMERA_NAME): the name goes into file
    names, MQTT topics and Home Assistant ids. A stream's credentials never do.
    """
    source = str(source)
    if source.isdigit():
        raw = f"camera-{source}"
    elif "://" in source:
        try:
            parts = urlsplit(source)
            raw = parts.hostname or "stream"
            if parts.port:
                raw += f"-{parts.port}"
        except ValueError:
            raw = "stream"
    else:
        raw = source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "video"
    slug = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in raw).strip("-_")
    return (slug or "camera")[:CAMERA_NAME_CHARS]
