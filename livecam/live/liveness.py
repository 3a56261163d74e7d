"""Blink liveness: a door opens for a face that blinks, not for a photo held up to the camera.

The eye aspect ratio (EAR, Soukupova and Cech 2016) from dlib's 68 landmarks
is about 0.25-0.45 for an open eye and drops towards 0.1 while it closes. Eyes
differ between people, so a blink is judged against the track's own open-eye
level: EAR below CLOSED_RATIO of it for a few frames, then back above
OPEN_RATIO. A still photo moved, tilted or scaled keeps its EAR.

The 68-landmark model (shape_predictor_68_face_landmarks.dat) was trained on
iBUG 300-W, whose licence excludes commercial use: livecam says so when
`liveness: blink` is turned on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

CLOSED_RATIO = 0.75  # eyes count as closing below this share of the track's open-eye EAR
OPEN_RATIO = 0.90  # ...and as open again above this share
MIN_SAMPLES = 6  # frames of open eyes needed before a blink can be judged
MIN_DROP = 0.06  # and the eyes must close by at least this much EAR (open eyes are ~0.25-0.45)
MIN_CLOSED_SECONDS = 0.06  # a blink keeps the eyes closing for 2+ frames at 25-30 fps; jitter lasts one
MAX_CLOSED_SECONDS = 0.5  # longer than this is eyes shut, not a blink
BLINK_LICENCE_NOTE = "liveness: blink uses dlib's 68-landmark model, trained on iBUG 300-W: non-commercial use only"


def eye_aspect_ratios(points68: np.ndarray) -> tuple[float, float]:
    """EAR of each eye (the face's right, then left) from 68 (x, y) landmarks."""

    def one(eye: np.ndarray) -> float:
        width = float(np.linalg.norm(eye[0] - eye[3]))
        if width <= 0:
            return 0.0
        return float(np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])) / (2 * width)

    return one(points68[36:42]), one(points68[42:48])


@dataclass
class BlinkDetector:
    """Per-track state: feed both eyes' EAR per frame, learn whether the face blinked.

    A blink closes both eyes together and by a clear margin; landmark jitter on
    a photo moves one eye's points, or both by little.
    """

    fps: float = 30.0
    history: deque = field(default_factory=lambda: deque(maxlen=90))
    closed_frames: int = 0
    blinks: int = 0

    @property
    def alive(self) -> bool:
        return self.blinks > 0

    def update(self, ears: tuple[float, float]) -> bool:
        """Add a frame's (right, left) EARs; True when this frame completes a blink."""
        ears_arr = np.asarray(ears, np.float64)
        completed = False
        if len(self.history) >= MIN_SAMPLES:
            open_level = np.percentile(np.asarray(self.history), 80, axis=0)  # per eye
            closing = ears_arr < CLOSED_RATIO * open_level
            if closing.all() and float((open_level - ears_arr).mean()) >= MIN_DROP:
                self.closed_frames += 1
                return False  # closed frames do not lower the open-eye level
            if self.closed_frames and (ears_arr > OPEN_RATIO * open_level).all():
                if MIN_CLOSED_SECONDS * self.fps <= self.closed_frames <= MAX_CLOSED_SECONDS * self.fps:
                    self.blinks += 1
                    completed = True
                self.closed_frames = 0
        self.history.append(ears_arr)
        return completed
