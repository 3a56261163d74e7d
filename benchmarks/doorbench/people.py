"""The people and their photos: the fixed tune/report split of identities/, each person's photos, and which
photos can be pasted into a clip as a face (PhotoBook, with each photo's own face box).

The people of identities/ are split once, with a fixed seed, into a "tune"
half and a "report" half, so that settings tuned on one half are reported on
people they never saw. Enrolled people are enrolled from photos 1..k and
appear in clips only in other photos.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import cv2
from door_clip import CROP

from doorbench.detector import Hog

SPLIT_SEED = 20261127  # fixed: the tune/report split must never move
PHOTO = 250  # LFW deep-funneled photos are 250x250
CROP_OFF = (PHOTO - CROP) // 2


def split_people(data: Path) -> dict[str, list[str]]:
    people = sorted(d.name for d in (data / "identities").iterdir() if d.is_dir())
    random.Random(SPLIT_SEED).shuffle(people)
    half = len(people) // 2
    return {"tune": people[:half], "report": people[half:]}


def photos_of(data: Path, person: str) -> list[Path]:
    return sorted((data / "identities" / person).glob("*.jpg"), key=lambda p: int(p.stem))


# dlib's HOG (upsample 1) finds the face of 99 % of deep-funneled LFW photos (measured on 300 of them),
# mostly as a 109x108 px box centred near (121, 133): the inner ~44 % of the photo. Each photo's own box
# is the ground truth (PhotoBook); photos where it is missing or odd are not used.
class PhotoBook:
    """Which photos can be pasted as a face, and where their face box is.

    A photo is used in a clip only when HOG (upsample 1) finds its face near the
    centre and no second face inside the pasted crop: a clip must not contain
    faces the ground truth does not know about. The photo's own HOG box is the
    ground truth box, so ground truth and detector agree on what "the face" is.
    """

    def __init__(self) -> None:
        self._boxes: dict[Path, tuple[float, float, float, float] | None] = {}
        self._lock = threading.Lock()

    def face(self, photo: Path) -> tuple[float, float, float, float] | None:
        with self._lock:
            if photo in self._boxes:
                return self._boxes[photo]
        box = self._measure(photo)
        with self._lock:
            self._boxes[photo] = box
        return box

    @staticmethod
    def _measure(photo: Path) -> tuple[float, float, float, float] | None:
        gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
        if gray is None or gray.shape != (PHOTO, PHOTO):
            return None
        rects = list(Hog.get()(gray, 1))
        boxes = [(r.top(), r.right(), r.bottom(), r.left()) for r in rects]
        inside = [b for b in boxes if CROP_OFF < (b[1] + b[3]) / 2 < PHOTO - CROP_OFF]
        inside = [b for b in inside if CROP_OFF < (b[0] + b[2]) / 2 < PHOTO - CROP_OFF]
        if len(inside) != 1:
            return None  # no face, or a second face that would be pasted too
        t, r, b, le = inside[0]
        cx, cy = (le + r) / 2, (t + b) / 2
        if abs(cx - 125) > 25 or abs(cy - 130) > 25 or not 80 <= r - le <= 140:
            return None  # an odd alignment: the crop would cut the face
        return float(t), float(r), float(b), float(le)

    def pick(self, photos: list[Path], rng: random.Random) -> tuple[Path, tuple[float, float, float, float]]:
        order = list(photos)
        rng.shuffle(order)
        for p in order:
            box = self.face(p)
            if box is not None:
                return p, box
        raise RuntimeError(f"no usable photo among {[str(p) for p in photos]}")
