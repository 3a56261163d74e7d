"""dlib's frontal HOG detector, one per thread, and the live loop's way of running it (live_detections)."""

from __future__ import annotations

import threading

import cv2
import numpy as np


class Hog:
    """dlib's frontal HOG detector, one per thread (the detector object is not documented as thread-safe)."""

    _local = threading.local()

    @classmethod
    def get(cls):
        if not hasattr(cls._local, "detector"):
            import dlib

            cls._local.detector = dlib.get_frontal_face_detector()
        return cls._local.detector


LIVE_SCALE = 0.8  # livecam's live loop: HOG at upsample 0 on gray scaled by 80 / live.min_face_px (100)


def live_detections(gray: np.ndarray) -> list[list[float]]:
    small = cv2.resize(gray, None, fx=LIVE_SCALE, fy=LIVE_SCALE, interpolation=cv2.INTER_AREA)
    return [
        [r.top() / LIVE_SCALE, r.right() / LIVE_SCALE, r.bottom() / LIVE_SCALE, r.left() / LIVE_SCALE]
        for r in Hog.get()(small, 0)
    ]
