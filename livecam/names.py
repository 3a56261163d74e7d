"""People's names: what a folder in `known_faces/` may be called.

A name reaches log lines, events, environment variables of actions and file
names, so it is checked wherever one is read, the gallery scan included: any
script, but no path separator, no control character (a newline forged log
lines and gave a two-line LIVECAM_NAME), not too long for a file name, and not
"unknown", which would make a member look like a stranger.
"""

from __future__ import annotations

import unicodedata

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
