"""Tracks: boxes that follow faces between detections, and names decided by agreement.

Between detections a track's box moves with the median optical flow (Lucas-
Kanade) of corner points inside it, which costs well under a millisecond per
face. Detections re-anchor tracks by overlap. A track's name comes from its
recent encodings (see `decide`), never from one frame alone unless that frame
is an unmistakable match.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from .faces import Box
from .liveness import BlinkDetector
from .matching import Match

UNKNOWN = "unknown"
SURE_OVERLAP = 0.5  # a detection overlapping its track less than this may be another face


@dataclass(frozen=True)
class VotingRule:
    """How a track's recent matches become a name (documented in config.yaml)."""

    window: int = 5  # recent encodings considered (M), and pooled into one mean embedding
    agree: int = 2  # of them must have the named person as nearest (N of M)
    instant_distance: float = 0.40  # a track's first encoding this close names at once
    unknown_after: int = 2  # encodings before a track that matches nobody is shown as unknown


def decide(recent: list[Match], pooled: Match, rule: VotingRule) -> tuple[str | None, float | None]:
    """(name, distance) for a track: a person, UNKNOWN, or (None, None) while undecided.

    `recent` are the matches of the track's last `window` encodings, one by
    one; `pooled` is the match of their mean embedding, which is steadier than
    any single frame. A person P is named when the pooled match accepts P
    (threshold and margin) and at least `agree` of the recent encodings have P
    as their nearest person - or, for a track's very first encoding, when that
    one encoding is within `instant_distance`, so known people are named at
    once. Unknown needs `unknown_after` encodings and a pooled match that
    accepts nobody. One unlucky frame can therefore neither name a stranger
    nor make a name flicker.
    """
    recent = recent[-rule.window :]
    if not recent:
        return None, None
    if pooled.name is not None:
        agreeing = sum(1 for m in recent if m.nearest == pooled.name)
        first_and_close = (
            len(recent) == 1 and recent[0].name == pooled.name and (recent[0].distance <= rule.instant_distance)
        )
        if agreeing >= rule.agree or first_and_close:
            return pooled.name, pooled.distance
        return None, None
    if len(recent) >= rule.unknown_after:
        return UNKNOWN, pooled.distance
    return None, None


@dataclass
class Track:
    id: int
    box: Box
    born: int  # frame index of its first detection
    last_detected: int
    misses: int = 0  # detection rounds in a row that did not see it
    votes: deque[Match] = field(default_factory=lambda: deque(maxlen=16))
    encodings: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=16))
    name: str | None = None  # a person, UNKNOWN, or None while undecided
    distance: float | None = None
    last_encoded: int = -(10**9)
    encoded_area: int = 0
    points: np.ndarray | None = None  # (n, 1, 2) float32 corners for optical flow
    # Set when a detection re-anchors the track after it was lost or jumped: the
    # face may now be someone else's (people cross, one leaves as another comes),
    # so its next encoding must confirm the identity or the track starts over.
    verify: bool = False
    pending: bool = False  # an encoding is being computed in the worker process
    best_crop: np.ndarray | None = None  # largest view of the face so far (for unknown visitors)
    best_area: int = 0
    blink: BlinkDetector | None = None  # liveness state, when it is on


def iou(a: Box, b: Box) -> float:
    top, bottom = max(a.top, b.top), min(a.bottom, b.bottom)
    left, right = max(a.left, b.left), min(a.right, b.right)
    inter = max(0, bottom - top) * max(0, right - left)
    union = a.area + b.area - inter
    return inter / union if union else 0.0


def _corners(gray: np.ndarray, box: Box) -> np.ndarray | None:
    h, w = gray.shape[:2]
    b = box.clipped(h, w)
    if b.width < 8 or b.height < 8:
        return None
    # the inner part of the box (background at the edges would drag it), searched
    # as a crop: corner detection over the whole frame costs ~10x more
    dx, dy = b.width // 6, b.height // 6
    top, left = b.top + dy, b.left + dx
    roi = gray[top : b.bottom - dy, left : b.right - dx]
    pts = cv2.goodFeaturesToTrack(roi, maxCorners=30, qualityLevel=0.01, minDistance=4)
    if pts is None or len(pts) < 4:
        return None
    return (pts + np.array([left, top], np.float32)).astype(np.float32)


class Tracker:
    """Associates detections with tracks and moves tracks between detections."""

    def __init__(self, iou_threshold: float = 0.3, max_misses: int = 2) -> None:
        self.iou_threshold = iou_threshold
        self.max_misses = max_misses
        self.tracks: list[Track] = []
        self._prev_gray: np.ndarray | None = None
        self._ids = itertools.count(1)

    def follow(self, gray: np.ndarray) -> None:
        """Move every track with the optical flow from the previous frame to `gray`."""
        prev, self._prev_gray = self._prev_gray, gray
        if prev is None or prev.shape != gray.shape:
            return
        moving = [t for t in self.tracks if t.points is not None]
        if not moving:
            return
        # one call for all tracks: the image pyramids are built once per frame
        counts = [len(t.points) for t in moving]
        new, status, _ = cv2.calcOpticalFlowPyrLK(
            prev, gray, np.concatenate([t.points for t in moving]), None, winSize=(15, 15), maxLevel=2
        )
        h, w = gray.shape[:2]
        start = 0
        for track, n in zip(moving, counts, strict=True):
            self._move(track, track.points, new[start : start + n], status[start : start + n], h, w)
            start += n

    @staticmethod
    def _move(track: Track, old: np.ndarray, new: np.ndarray, status: np.ndarray, h: int, w: int) -> None:
        good = status.reshape(-1) == 1
        if good.sum() < 4:
            track.points = None
            return
        old_pts, new_pts = old[good].reshape(-1, 2), new[good].reshape(-1, 2)
        dx, dy = np.median(new_pts - old_pts, axis=0)
        # scale: ratio of spreads around the median point (faces approach the camera)
        spread_old = np.median(np.linalg.norm(old_pts - np.median(old_pts, axis=0), axis=1))
        spread_new = np.median(np.linalg.norm(new_pts - np.median(new_pts, axis=0), axis=1))
        scale = float(np.clip(spread_new / spread_old, 0.8, 1.25)) if spread_old > 1 else 1.0
        b = track.box
        cx, cy = (b.left + b.right) / 2 + dx, (b.top + b.bottom) / 2 + dy
        half_w, half_h = b.width * scale / 2, b.height * scale / 2
        moved = Box(round(cy - half_h), round(cx + half_w), round(cy + half_h), round(cx - half_w))
        if moved.right <= 0 or moved.bottom <= 0 or moved.left >= w or moved.top >= h:
            track.points = None  # left the frame; the next detection round drops it
            return
        track.box = moved
        track.points = new[good].reshape(-1, 1, 2)

    def update(self, detections: list[Box], gray: np.ndarray, frame_index: int) -> list[Track]:
        """Match detections to tracks by overlap; returns the tracks born now."""
        pairs = sorted(
            ((iou(t.box, d), ti, di) for ti, t in enumerate(self.tracks) for di, d in enumerate(detections)),
            reverse=True,
        )
        used_t: set[int] = set()
        used_d: set[int] = set()
        for overlap, ti, di in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            track = self.tracks[ti]
            if track.misses > 0 or overlap < SURE_OVERLAP:
                track.verify = True
            track.box = detections[di]
            track.last_detected = frame_index
            track.misses = 0
            track.points = _corners(gray, track.box)
        kept = []
        for ti, track in enumerate(self.tracks):
            if ti not in used_t:
                track.misses += 1
                if track.misses > self.max_misses:
                    continue
            kept.append(track)
        born = []
        for di, d in enumerate(detections):
            if di not in used_d:
                track = Track(next(self._ids), d, frame_index, frame_index, points=_corners(gray, d))
                kept.append(track)
                born.append(track)
        self.tracks = kept
        self._prev_gray = gray
        return born
