"""Live face detection: dlib's HOG on a downscaled grayscale copy of each frame.

The copy's scale follows from `min_face_px`: HOG finds faces from about 80 px
at upsample 0, so a frame whose smallest wanted face is 160 px can be halved
before detection; a 4K frame or bigger is looked at as at most 1920x1080.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from ..engine import Box, FrameDetector

log = logging.getLogger(__name__)

HOG_MIN_FACE_PX = 80  # smallest face dlib's frontal HOG detector finds at upsample 0
MAX_DETECT_PIXELS = 1920 * 1080  # pixels one live detection round looks at, at most (HOG ~75 ms here)


def detection_scale(min_face_px: int) -> float:
    """The detection copy's scale for faces from `min_face_px` (HOG finds them from HOG_MIN_FACE_PX)."""
    return min(1.0, HOG_MIN_FACE_PX / max(min_face_px, 1))


class Detector:
    """HOG on a grayscale copy downscaled so that `min_face_px` faces stay findable.

    Grayscale: dlib's frontal detector was trained on grayscale images, and it
    is ~30 % faster than on colour. Safe to call from a worker thread (dlib
    releases the GIL while detecting).
    """

    def __init__(self, engine: FrameDetector, min_face_px: int) -> None:
        self.engine = engine
        self.set_min_face_px(min_face_px)
        self._capped: tuple[int, int] | None = None

    def set_min_face_px(self, min_face_px: int) -> None:
        """The smallest face wanted; the next round scans a copy scaled for it (a small board's budget.Plan)."""
        self.min_face_px = min_face_px
        self.scale = detection_scale(min_face_px)

    def __call__(self, gray: np.ndarray) -> list[Box]:
        h, w = gray.shape[:2]
        scale = self.scale
        if h * w * scale * scale > MAX_DETECT_PIXELS:  # a 4K or bigger source: bounded cost per round
            scale = (MAX_DETECT_PIXELS / (h * w)) ** 0.5
            if self._capped != (w, h):
                self._capped = (w, h)
                log.warning(
                    "frames are %dx%d: detection runs on %dx%d copies; faces under %d px are not found",
                    w, h, int(w * scale), int(h * scale), int(HOG_MIN_FACE_PX / scale),
                )  # fmt: skip
        if scale < 1.0:
            small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            boxes = self.engine.detect(small, 0)
            return [b.scaled(1 / scale).clipped(h, w) for b in boxes]
        return self.engine.detect(gray, 0)
