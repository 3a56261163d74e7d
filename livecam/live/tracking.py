"""Tracks: boxes that follow faces between detections, and names decided by agreement.

A track is a claim that one face is in its box. Between detections the box
moves with the median optical flow (Lucas-Kanade) of corner points inside
it, which costs well under a millisecond per face. Whatever may have put
another face in the box ends the track at once, before the frame is drawn,
and a new track starts from nothing (no name, no votes, no blink):

* a detection round that does not find it again (a gap in detections);
* a detection that overlaps it only loosely (a jump in position or size);
* a scene cut (the whole frame changes) or a sudden change of what is inside
  the box (another face stepped into the same place);
* an encoding that does not fit the track (see recognizer.py).

A track's name comes from its recent encodings (see `decide`), never from
one frame alone unless that frame is an unmistakable match.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..config import VotingConfig
from ..engine import Box, Match
from ..identity import STRANGER, UNDECIDED, Identity
from ..models import DLIB
from .liveness import BlinkDetector

SAME_FACE_IOU = 0.5  # a detection must overlap its track at least this much to continue it
MAX_SIZE_CHANGE = 1.4  # ...and be at most this much wider or narrower
PATCH_PX = 16  # side of the thumbnail a track's content is compared by
# Normalized cross-correlation of a track's 16x16 thumbnail between two frames
# (docs/door_bench.md): the same face, moving, talking, blinking, stayed above
# 0.64 on every frame of six real clips (1 % below 0.77); two different LFW
# people at the same spot are below 0.45 in ~75 % of pairs and below 0.8 in 99 %.
CONTENT_CUT_NCC = 0.45  # below this the box holds something else: the track ends
CONTENT_DOUBT_NCC = 0.8  # below this the track is encoded again at once
SCENE_CUT_DIFF = 25.0  # mean absolute grey-level change of the whole frame (64x48) that is a cut
FLOW_WIDTH = 320  # optical flow runs on a copy this wide: a face of 100+ px keeps ample texture,
# and the image pyramids cost a quarter of full size at 640 px
MAX_FLOW_SCALE = 1.06  # largest change of a box's size from one frame to the next by flow
MAX_FLOW_JUMP = 0.25  # a flow step larger than this share of the box width in one frame is not the same face
MIN_INSIDE = 0.5  # a box with less than this share inside the frame ends: its content cannot be checked
HISTORY_FRAMES = 64  # boxes a track remembers: a detection round may finish this many frames late (a small board)


@dataclass(frozen=True)
class VotingRule:
    """How a track's recent matches become a name (config.yaml's `voting`; its defaults are the config's)."""

    window: int = VotingConfig.window  # recent encodings considered (M), and pooled into one mean embedding
    agree: int = VotingConfig.agree  # of them must have the named person as nearest (N of M)
    instant_distance: float = DLIB.instant_distance  # a track's first encoding this close names at once
    unknown_after: int = VotingConfig.unknown_after  # encodings before a track matching nobody is shown unknown


def decide(
    recent: list[Match], pooled: Match, rule: VotingRule, unknown_beyond: float = 0.0
) -> tuple[Identity, float | None]:
    """(identity, distance) for a track: a person, a stranger, or (UNDECIDED, None).

    `recent` are the matches of the track's last `window` encodings, one by
    one; `pooled` is the match of their mean embedding, which is steadier than
    any single frame. A person P is named when the pooled match accepts P
    (threshold and margin) and at least `agree` of the recent encodings have P
    as their nearest person - or, for a track's very first encoding, when that
    one encoding is within `instant_distance`, so known people are named at
    once. Unknown needs `unknown_after` encodings and a pooled match that
    accepts nobody and is further than `unknown_beyond` (a face just outside
    the threshold, e.g. a known face turned away, stays undecided rather than
    being called a stranger). One unlucky frame can therefore neither name a
    stranger nor make a name flicker.
    """
    recent = recent[-rule.window :]
    if not recent:
        return UNDECIDED, None
    if pooled.name is not None:
        agreeing = sum(1 for m in recent if m.nearest == pooled.name)
        first_and_close = (
            len(recent) == 1 and recent[0].name == pooled.name and (recent[0].distance <= rule.instant_distance)
        )
        if agreeing >= rule.agree or first_and_close:
            return Identity.of(pooled.name), pooled.distance
        return UNDECIDED, None
    if len(recent) >= rule.unknown_after and pooled.distance > unknown_beyond:
        return STRANGER, pooled.distance
    return UNDECIDED, None


@dataclass
class Track:
    """One face's claim; everything here belongs to it and ends with it."""

    id: int
    box: Box
    born: int  # frame index of its first detection
    last_detected: int
    votes: deque[Match] = field(default_factory=lambda: deque(maxlen=16))
    encodings: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=16))
    identity: Identity = UNDECIDED  # a person, a stranger, or undecided
    distance: float | None = None
    pooled: Match | None = None  # the match of the mean of recent encodings (why a face is not named)
    last_encoded: int = -(10**9)
    encoded_area: int = 0
    points: np.ndarray | None = None  # (n, 1, 2) float32 corners for optical flow
    patch: np.ndarray | None = None  # normalized thumbnail of the box on the last frame
    # Its content changed somewhat `doubts` times; an encoding confirms the doubts raised before its
    # chip was cut (`chip_doubts`), never a later one (live, results come back frames late).
    doubts: int = 0
    chip_doubts: int = 0  # `doubts` when the chip of its latest encoding was cut
    confirmed: int = 0  # doubts that an encoding has answered
    pending: bool = False  # an encoding is being computed in the worker process
    best_crop: np.ndarray | None = None  # largest view of the face so far (for unknown visitors)
    best_area: int = 0
    blink: BlinkDetector | None = None  # liveness, watched from when the track is named
    embedding: np.ndarray | None = None  # mean of its last `window` encodings (what `pooled` matched)
    # (frame index, box) of its recent frames: live, a detection round's boxes arrive frames after the frame
    # they were found on, and are compared with where each track was then (Tracker.update)
    history: deque[tuple[int, Box]] = field(default_factory=lambda: deque(maxlen=HISTORY_FRAMES))

    def box_at(self, index: int) -> Box | None:
        """Its box on frame `index` (the latest it recorded up to then); None if it began after it."""
        for seen, box in reversed(self.history):
            if seen <= index:
                return box
        if self.born > index:
            return None
        return self.history[0][1] if self.history else self.box  # older than it remembers: its oldest

    @property
    def doubt(self) -> bool:
        """No name is shown until an encoding answers the latest change of content."""
        return self.confirmed < self.doubts


def iou(a: Box, b: Box) -> float:
    top, bottom = max(a.top, b.top), min(a.bottom, b.bottom)
    left, right = max(a.left, b.left), min(a.right, b.right)
    inter = max(0, bottom - top) * max(0, right - left)
    union = a.area + b.area - inter
    return inter / union if union else 0.0


def same_face_box(track_box: Box, detection: Box) -> bool:
    """Can `detection` be the face `track_box` followed, with no jump in position or size?"""
    if iou(track_box, detection) < SAME_FACE_IOU:
        return False
    ratio = max(detection.width, 1) / max(track_box.width, 1)
    return 1 / MAX_SIZE_CHANGE <= ratio <= MAX_SIZE_CHANGE


def _carried(detection: Box, then: Box, now: Box) -> Box:
    """`detection`, found where a track's box was `then`, moved and scaled as the track has since (to `now`)."""
    if then == now:
        return detection
    scale = max(now.width, 1) / max(then.width, 1)
    cx = (detection.left + detection.right) / 2 + (now.left + now.right - then.left - then.right) / 2
    cy = (detection.top + detection.bottom) / 2 + (now.top + now.bottom - then.top - then.bottom) / 2
    half_w, half_h = detection.width * scale / 2, detection.height * scale / 2
    return Box(round(cy - half_h), round(cx + half_w), round(cy + half_h), round(cx - half_w))


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


def content_patch(gray: np.ndarray, box: Box) -> np.ndarray | None:
    """The box's content as a zero-mean, unit-norm 16x16 thumbnail (None when too little shows)."""
    h, w = gray.shape[:2]
    b = box.clipped(h, w)
    if b.width < 8 or b.height < 8 or b.area < 0.5 * max(box.area, 1):
        return None
    thumb = cv2.resize(gray[b.top : b.bottom, b.left : b.right], (PATCH_PX, PATCH_PX), interpolation=cv2.INTER_AREA)
    v = thumb.astype(np.float32).reshape(-1)
    v -= v.mean()
    norm = float(np.linalg.norm(v))
    if norm < 1e-3 * PATCH_PX:  # a flat box (a wall, a black frame): nothing to compare
        return np.zeros_like(v)
    return v / norm


def _similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """NCC of two content patches; 1.0 when either is missing (no evidence of a change)."""
    if a is None or b is None:
        return 1.0
    return float(a @ b)


def _scene(small: np.ndarray) -> np.ndarray:
    return cv2.resize(small, (64, 48), interpolation=cv2.INTER_AREA).astype(np.int16)


def _flow_image(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The copy optical flow runs on, and its scale."""
    scale = min(1.0, FLOW_WIDTH / gray.shape[1])
    if scale >= 1.0:
        return gray, 1.0
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


class Tracker:
    """Associates detections with tracks, moves tracks between detections, and ends
    every track whose face may have changed (module docstring)."""

    def __init__(self, max_tracks: int = 10) -> None:
        self.max_tracks = max_tracks  # a crowd (78 faces) must not cost 78 tracks' work per frame
        self.capped = 0  # detections not tracked: over max_tracks
        self.tracks: list[Track] = []
        self._prev_small: np.ndarray | None = None  # the last frame, as flow sees it
        self._prev_scene: np.ndarray | None = None
        self._ids = itertools.count(1)

    def follow(self, gray: np.ndarray, frame_index: int | None = None) -> list[Track]:
        """Move every track with the optical flow from the previous frame to `gray` (frame `frame_index`);
        returns the tracks that ended because what is in their box changed."""
        small, scale = _flow_image(gray)
        prev, self._prev_small = self._prev_small, small
        scene = _scene(small)
        prev_scene, self._prev_scene = self._prev_scene, scene
        if not self.tracks:
            return []
        if prev is None or prev_scene is None or prev.shape != small.shape:
            return self.end(list(self.tracks))
        if float(np.abs(scene - prev_scene).mean()) > SCENE_CUT_DIFF:
            return self.end(list(self.tracks))
        moving = [t for t in self.tracks if t.points is not None]
        if moving:
            # one call for all tracks: the image pyramids are built once per frame
            counts = [len(t.points) for t in moving]
            points = np.concatenate([t.points for t in moving]) * np.float32(scale)
            new, status, _ = cv2.calcOpticalFlowPyrLK(prev, small, points, None, winSize=(15, 15), maxLevel=2)
            new /= np.float32(scale)
            h, w = gray.shape[:2]
            start = 0
            for track, n in zip(moving, counts, strict=True):
                self._move(track, track.points, new[start : start + n], status[start : start + n], h, w)
                start += n
        changed = []
        h, w = gray.shape[:2]
        for track in self.tracks:
            patch = content_patch(gray, track.box)
            similarity = _similarity(track.patch, patch)
            # mostly out of the frame: too little shows to check that it is still the face (a face leaving)
            outside = track.box.clipped(h, w).area < MIN_INSIDE * track.box.area
            if track.box.area == 0 or outside or similarity < CONTENT_CUT_NCC:
                changed.append(track)
                continue
            if similarity < CONTENT_DOUBT_NCC:
                track.doubts += 1
            track.patch = patch
            if frame_index is not None:
                track.history.append((frame_index, track.box))
        return self.end(changed)

    @staticmethod
    def _move(track: Track, old: np.ndarray, new: np.ndarray, status: np.ndarray, h: int, w: int) -> None:
        good = status.reshape(-1) == 1
        if good.sum() < 4:
            track.points = None
            return
        both = np.stack([old[good].reshape(-1, 2), new[good].reshape(-1, 2)])  # (2, n, 2): before, after
        dx, dy = np.median(both[1] - both[0], axis=0)
        b = track.box
        if max(abs(dx), abs(dy)) > MAX_FLOW_JUMP * max(b.width, 1):
            track.box = Box(0, 0, 0, 0)  # no face moves that far in a frame: follow() ends it
            track.points = None
            return
        # scale: ratio of spreads around the median point (faces approach the camera)
        # (one median call per step for both frames: this runs for every face on every frame)
        spread_old, spread_new = np.median(
            np.linalg.norm(both - np.median(both, axis=1, keepdims=True), axis=2), axis=1
        )
        # a face approaching at walking pace grows ~2 % a frame: more is the spread of a
        # talking mouth's points, which would make the box (and its content check) jitter
        scale = float(np.clip(spread_new / spread_old, 1 / MAX_FLOW_SCALE, MAX_FLOW_SCALE)) if spread_old > 1 else 1.0
        cx, cy = (b.left + b.right) / 2 + dx, (b.top + b.bottom) / 2 + dy
        half_w, half_h = b.width * scale / 2, b.height * scale / 2
        moved = Box(round(cy - half_h), round(cx + half_w), round(cy + half_h), round(cx - half_w))
        if moved.right <= 0 or moved.bottom <= 0 or moved.left >= w or moved.top >= h:
            track.points = None  # left the frame; the next detection round ends it
            return
        track.box = moved
        track.points = new[good].reshape(-1, 1, 2)

    def update(
        self, detections: list[Box], gray: np.ndarray, frame_index: int, found_on: int | None = None
    ) -> tuple[list[Track], list[Track]]:
        """Continue tracks with the detections that are plainly the same face; end the rest.

        `detections` were found on frame `found_on` (default: this one). Live, that is frames
        ago: each is compared with where the track was on that frame, and moved on by the
        track's own motion since. Put where the face was, a box lags behind a walking face
        onto whoever walks the other way (two people crossing, on a small board).

        Returns (tracks born now, tracks ended now). A track the detector did not
        find again ends at once: the face may have left, or turned into someone else.
        """
        found_on = frame_index if found_on is None else found_on
        then = [t.box_at(found_on) if found_on < frame_index else t.box for t in self.tracks]
        pairs = sorted(
            ((iou(b, d), ti, di) for ti, b in enumerate(then) if b is not None for di, d in enumerate(detections)),
            reverse=True,
        )
        used_t: set[int] = {ti for ti, b in enumerate(then) if b is None}  # begun since: not this round's to judge
        used_d: set[int] = set()
        for _, ti, di in pairs:
            box_then = then[ti]
            if ti in used_t or di in used_d or box_then is None or not same_face_box(box_then, detections[di]):
                continue
            used_t.add(ti)
            used_d.add(di)
            track = self.tracks[ti]
            track.box = _carried(detections[di], box_then, track.box)
            track.last_detected = frame_index
            track.points = _corners(gray, track.box)
            track.patch = content_patch(gray, track.box)
        ended = [t for ti, t in enumerate(self.tracks) if ti not in used_t]
        self.tracks = [t for ti, t in enumerate(self.tracks) if ti in used_t]
        # new faces, largest (nearest the door) first, while there is room
        new = sorted((d for di, d in enumerate(detections) if di not in used_d), key=lambda d: d.area, reverse=True)
        room = max(0, self.max_tracks - len(self.tracks))
        self.capped += max(0, len(new) - room)
        born = [self._start(d, gray, frame_index) for d in new[:room]]
        if self._prev_small is None:  # a detection before any follow(): flow starts from this frame
            self._prev_small = _flow_image(gray)[0]
        return born, ended

    def restart(self, track: Track, frame_index: int) -> Track:
        """End `track` and start a new, empty one on the same box (its face may be someone else)."""
        self.end([track])
        fresh = Track(next(self._ids), track.box, frame_index, track.last_detected, points=track.points)
        fresh.patch = track.patch
        fresh.history.extend(track.history)  # the same box: a detection found before now still compares with it
        self.tracks.append(fresh)
        return fresh

    def _start(self, box: Box, gray: np.ndarray, frame_index: int) -> Track:
        track = Track(next(self._ids), box, frame_index, frame_index, points=_corners(gray, box))
        track.patch = content_patch(gray, box)
        track.history.append((frame_index, box))
        self.tracks.append(track)
        return track

    def end(self, tracks: list[Track]) -> list[Track]:
        gone = {id(t) for t in tracks}
        self.tracks = [t for t in self.tracks if id(t) not in gone]
        return tracks
