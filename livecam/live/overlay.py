"""Pure drawing functions: a frame and what was recognized in it, in; a drawn frame, out.

Names are drawn with OpenCV 5's built-in Unicode font, so any script renders
(Hershey fonts only have ASCII).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import cv2
import numpy as np

from .recognizer import TrackedFace

KNOWN_COLOUR = (60, 200, 60)  # BGR
UNKNOWN_COLOUR = (40, 40, 220)
UNDECIDED_COLOUR = (200, 200, 200)
TEXT_COLOUR = (255, 255, 255)
LABEL_PX = 18
DEBUG_PX = 14


@cache
def _font() -> cv2.FontFace:
    return cv2.FontFace("uni")


def label_for(face: TrackedFace) -> str | None:
    """The text shown for a face: nothing while undecided."""
    if not face.identity.decided:
        return None
    if face.identity.is_stranger or face.distance is None:
        return face.name
    if face.alive is False:
        return f"{face.name}: blink to enter"
    return f"{face.name} {face.distance:.2f}"


def why_line(face: TrackedFace) -> str | None:
    """Debug mode: why a face shows no name, with its nearest person and distance."""
    if face.reason is None:
        return None
    if face.nearest is None or face.nearest_distance is None:
        return face.reason
    return f"{face.reason}: {face.nearest} {face.nearest_distance:.2f}"


def text_width(text: str, size: int = LABEL_PX) -> int:
    # OpenCV 5's FontFace overload returns the text's rectangle (x, y, w, h)
    return int(cv2.getTextSize((10_000, 10_000), text, (0, size), _font(), size)[2])


def draw_text(
    image: np.ndarray,
    text: str,
    x: int,
    y: int,
    size: int = LABEL_PX,
    colour: tuple[int, int, int] = TEXT_COLOUR,
    background: tuple[int, int, int] | None = None,
) -> None:
    """Draw `text` with its top-left corner at (x, y), on a filled background if given."""
    width = text_width(text, size) + 8
    height = int(size * 1.4)
    if background is not None:
        cv2.rectangle(image, (x, y), (x + width, y + height), background, cv2.FILLED)
    cv2.putText(image, text, (x + 4, y + size), colour, _font(), size)


def draw_faces(image: np.ndarray, faces: Sequence[TrackedFace], debug: bool = False) -> np.ndarray:
    """Boxes and names; with `debug`, a line under each unnamed face saying why (`why_line`)."""
    for face in faces:
        b = face.box
        identity = face.identity
        colour = KNOWN_COLOUR if identity.is_person else UNKNOWN_COLOUR if identity.is_stranger else UNDECIDED_COLOUR
        cv2.rectangle(image, (b.left, b.top), (b.right, b.bottom), colour, 2)
        lines = [(text, LABEL_PX) for text in (label_for(face),) if text]
        if debug and (why := why_line(face)):
            lines.append((why, DEBUG_PX))
        height = sum(int(size * 1.4) for _, size in lines)
        y = b.bottom if b.bottom + height < image.shape[0] else max(b.top - height, 0)
        for text, size in lines:
            draw_text(image, text, b.left, y, size, background=colour if size == LABEL_PX else (0, 0, 0))
            y += int(size * 1.4)
    return image


def draw_stats(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """FPS and per-stage milliseconds in the top-left corner."""
    y = 4
    for line in lines:
        draw_text(image, line, 4, y, size=14, background=(0, 0, 0))
        y += int(14 * 1.4) + 2
    return image


def draw_status(image: np.ndarray, status: str) -> np.ndarray:
    """A banner such as "reconnecting" across the bottom."""
    h, w = image.shape[:2]
    cv2.rectangle(image, (0, h - 34), (w, h), (0, 0, 0), cv2.FILLED)
    draw_text(image, status, 8, h - 30, size=20, colour=(0, 200, 255))
    return image


def render(
    image: np.ndarray,
    faces: Sequence[TrackedFace],
    stats: Sequence[str] = (),
    status: str | None = None,
    debug: bool = False,
) -> np.ndarray:
    """A drawn copy of `image`; the input is left untouched."""
    out = image.copy()
    draw_faces(out, faces, debug)
    if stats:
        draw_stats(out, stats)
    if status:
        draw_status(out, status)
    return out
