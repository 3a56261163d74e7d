"""People's names: what a folder in `known_faces/` may be called, and when two names are one.

A name reaches log lines, events, environment variables of actions and file
names, so it is checked wherever one is read, the gallery scan included: any
script, but no path separator, no control character (a newline forged log
lines and gave a two-line LIVECAM_NAME), no invisible filler, not too long for
a file name, and not "unknown", which would make a member look like a stranger.

Names are compared in one normal form, NFC (`validate_name` returns it): macOS
and some tools write `é` as `e` + a combining accent (NFD), and the two
spellings are the same person. Names that merely *look* alike (`Віll_Clinton`
with a Cyrillic В and і, a fullwidth `Ｂｉｌｌ`, a no-break space for the
underscore) are told apart by `skeleton` and `lookalike`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 200  # a file name is at most 255 bytes, and shots get "-shot-NNN.jpg" appended
RESERVED_NAMES = ("unknown",)  # what strangers are called

# Letters that draw as nothing at all, yet are not control or format characters (those are refused by
# category): Hangul fillers, the blank Braille pattern, the combining grapheme joiner, Khmer's inherent
# vowels, Mongolian's variation selectors. `Bill_Clinton` + U+3164 showed as Bill_Clinton.
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f")

# Letters of other scripts drawn like Latin ones (a subset of Unicode's confusables.txt: the Cyrillic,
# Greek and Armenian letters that fonts draw as Latin letters), mapped case by case before casefolding.
CONFUSABLES = str.maketrans(
    {
        **dict(zip("АВЕЅІЈКМНОРСТХҮԚԜӀ", "ABESIJKMHOPCTXYQWI", strict=True)),  # Cyrillic capitals
        **dict(zip("аеѕіјорсухһԁԛԝӏк", "aesijopcyxhdqwlk", strict=True)),  # Cyrillic small letters
        **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),  # Greek capitals
        **dict(zip("αικνορυχγϲϳ", "aikvopuxycj", strict=True)),  # Greek small letters
        **dict(zip("օսհոց", "ouhng", strict=True)),  # Armenian
        **dict(zip("ıȷɑɡ", "ijag", strict=True)),  # Latin letters without their dot or in another form
    }
)
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"


class NameError_(ValueError):
    """A name that cannot be a person's; str() is one line (the name shown escaped)."""


def shown(name: str) -> str:
    """A name for a message: quoted, escaped (`'\\u0412\\u0456ll'` shows what differs), bounded."""
    text = ascii(name)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_name(name: str) -> str:
    """`name` normalized (NFC, stripped) if it can be a person's name; NameError_ otherwise."""
    clean = unicodedata.normalize("NFC", name).strip()
    quoted = shown(name)
    if not clean:
        raise NameError_("name is empty")
    if clean.startswith("."):
        raise NameError_(f"name {quoted} may not start with '.'")
    if any(c in "/\\\x00" or unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") for c in clean):
        raise NameError_(f"name {quoted} contains a path separator or control character")
    if any(c in INVISIBLE or unicodedata.category(c) == "Cf" for c in clean):  # zero-width space, joiners...
        raise NameError_(f"name {quoted} contains an invisible character (a filler, zero-width or format character)")
    if len(clean) > MAX_NAME_CHARS or len(clean.encode("utf-8")) > MAX_NAME_BYTES:
        raise NameError_(f"name {quoted} is too long (at most {MAX_NAME_CHARS} characters, {MAX_NAME_BYTES} bytes)")
    if clean.casefold() in RESERVED_NAMES:
        raise NameError_(f"name {quoted} is reserved: it is what livecam calls strangers")
    return clean


def skeleton(name: str) -> str:
    """What a name looks like: two names with one skeleton are read as one name.

    Compatibility forms folded (fullwidth `Ｂ`, ligatures: NFKC), letters of other
    scripts drawn as Latin ones mapped to them, case ignored, invisible and format
    characters dropped, and spaces, no-break spaces and underscores all one `_`.
    """
    text = unicodedata.normalize("NFKD", name).translate(CONFUSABLES).casefold()
    out: list[str] = []
    for c in text:
        category = unicodedata.category(c)
        if c in INVISIBLE or category in ("Cf", "Cc") or "VARIATION SELECTOR" in unicodedata.name(c, ""):
            continue
        if c.isspace() or c == "_" or category == "Zs":
            c = "_"
        elif c in _DASHES:
            c = "-"
        if c == "_" and (not out or out[-1] == "_"):
            continue  # runs of spaces are one, leading ones none
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out).rstrip("_"))


def lookalike(name: str, enrolled: Iterable[str]) -> str | None:
    """The enrolled name that `name` looks like without being it (None: none does)."""
    clean = unicodedata.normalize("NFC", name).strip()
    mine = skeleton(clean)
    for other in enrolled:
        other_clean = unicodedata.normalize("NFC", other).strip()
        if other_clean != clean and skeleton(other_clean) == mine:
            return other_clean
    return None


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
