"""One frame at a time: detections in, named tracks out (the naming policy).

Detections come from `detection.Detector`; live, encodings come back from
`encoder.EncoderProcess` a frame or more late. Encodings are spent on tracks, not frames: while a track is new or
undecided (every frame, so a known face is named within a few frames), then
only every `recheck_seconds`, when the face has grown, or when what is in its
box has changed somewhat.

This module is the bookkeeping: stepping the tracker, cutting chips and sending them to the encoder, applying
what comes back to the tracks it was for, and reporting each frame. What the encodings decide (when a face is
looked at, what breaks a claim, how a name is given, why none is shown) is naming.py's policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..config import DoorConfig, LiveConfig
from ..engine import Box, LiveEngine, Matcher
from ..identity import Identity
from .budget import EncodeAllowance
from .capture import Frame
from .encoder import EncoderProcess
from .liveness import BlinkDetector, eye_aspect_ratios
from .naming import FIRST_LOOK, NamingPolicy
from .tracking import Track, Tracker, VotingRule, iou

log = logging.getLogger(__name__)

OVERLAP_ENDS = 0.2  # tracks whose boxes come to overlap this much (IoU) end: flow may have swapped them


@dataclass(frozen=True)
class LiveSettings:
    """The live loop's settings; every default is the config's (config.py is their only source)."""

    min_face_px: int = LiveConfig.min_face_px
    detect_every: int = LiveConfig.detect_every
    recheck_seconds: float = LiveConfig.recheck_seconds
    max_encodes_per_frame: int = LiveConfig.max_encodes_per_frame
    max_faces: int = LiveConfig.max_faces
    voting: VotingRule = field(default_factory=VotingRule)
    liveness: bool = False  # door.liveness: blink (68 landmarks per named face per frame until it blinks)
    unknown_wait_seconds: float = DoorConfig.unknown_wait_seconds  # unknown faces are looked at more often meanwhile


@dataclass(frozen=True, slots=True)
class TrackedFace:
    box: Box  # source-frame pixels
    track: int
    identity: Identity  # what is shown: a person, a stranger, or undecided (also while in doubt)
    distance: float | None
    alive: bool | None = None  # blinked (None: liveness is off)
    nearest: str | None = None  # the nearest person of the pooled match, named or not
    nearest_distance: float | None = None
    reason: str | None = None  # why no name is shown (a Reason), None when named

    @property
    def name(self) -> str | None:
        """The contracts' form (--log-json, the overlay): a name, "unknown", or None."""
        return self.identity.label


@dataclass(frozen=True, slots=True)
class FrameResult:
    frame: Frame
    faces: list[TrackedFace]
    detected: bool  # a detection round was applied on this frame
    encoded: int  # faces encoded on this frame
    ms: dict[str, float]  # milliseconds per stage on this frame
    updates: list[TrackUpdate] = field(default_factory=list)  # tracks whose evidence changed on this frame
    ended: int = 0  # tracks that ended on this frame (their face left or may have changed)


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """A track's standing after new evidence (an encoding, a blink, its end): what the door reads."""

    track: int
    identity: Identity  # decided: a person, a stranger, or undecided
    distance: float  # pooled (mean-embedding) distance to the nearest person
    margin: float  # pooled margin to the second-nearest person
    agreeing: int  # recent encodings whose nearest person is `name`
    box: Box
    crop: np.ndarray | None  # the best (largest) view of the face so far, BGR
    alive: bool | None = None  # blinked since it was named (None: liveness is off)
    t: float = 0.0  # source time of the frame, seconds
    encodings: int = 0  # encodings the track has had
    embedding: np.ndarray | None = None  # mean of its recent encodings (to tell whether two tracks are one person)
    ended: bool = False  # the track is over: no more updates will come for it
    frame: int = 0  # index of the frame in its source
    nearest: str | None = None  # the nearest enrolled person of its pooled match (who a stranger looked like)

    @property
    def name(self) -> str | None:
        """The contracts' form: a name, "unknown", or None."""
        return self.identity.label


class Recognizer:
    """Tracks faces across frames and decides their names by agreement."""

    def __init__(
        self,
        engine: LiveEngine,
        matcher: Matcher,
        settings: LiveSettings,
        fps: float = 30.0,
        encoder: EncoderProcess | None = None,
    ) -> None:
        self.engine = engine
        self.encoder = encoder  # None: encode on this thread (files: same result every run)
        self.matcher = matcher  # replaced whole when the gallery changes
        self.settings = settings
        self.fps = fps
        spec = engine.spec
        self.policy = NamingPolicy(
            settings.voting,
            settings.detect_every,
            max(1, round(settings.recheck_seconds * fps)),
            settings.unknown_wait_seconds * fps,
            spec.unknown_gap,
            spec.unknown_eager_within,
            spec.same_face_distance,
        )
        self.tracker = Tracker(settings.max_faces)
        self._updates: list[TrackUpdate] = []
        self._ended: list[Track] = []
        self._t = 0.0
        self._frame = 0
        self.allowance: EncodeAllowance | None = None  # live on a budget: re-checks only with what is left
        self.encode_limit: Callable[[], int | None] | None = None  # live on a budget: faces to encode now
        self.encoded_here = 0  # faces encoded on this thread (no encoder process)...
        self.encode_cpu_ms = 0.0  # ...and their CPU time

    def encoding(self) -> bool:
        """Is the encoder process working on a request of this loop?"""
        return self.encoder is not None and self.encoder.in_flight > 0

    def set_matcher(self, matcher: Matcher) -> None:
        """A new gallery: every name is checked against it by the next encoding (someone may be gone)."""
        self.matcher = matcher
        for track in self.tracker.tracks:
            track.doubts += 1

    def step(
        self, frame: Frame, gray: np.ndarray, detections: list[Box] | None, found_on: int | None = None
    ) -> FrameResult:
        """One frame; `detections`, if any, were found on frame `found_on` (live: frames ago; default this one)."""
        ms: dict[str, float] = {}
        self._t = frame.t
        self._frame = frame.index
        t0 = time.perf_counter()
        self._ended.extend(self.tracker.follow(gray, frame.index))
        if detections is not None:
            _, gone = self.tracker.update(detections, gray, frame.index, found_on)
            self._ended.extend(gone)
        self._end_overlapping()
        t1 = time.perf_counter()
        ms["track"] = (t1 - t0) * 1000
        encoded = self._encode_due(frame)
        t2 = time.perf_counter()
        ms["encode"] = (t2 - t1) * 1000
        if self.settings.liveness:
            self._watch_blinks(gray)
            ms["liveness"] = (time.perf_counter() - t2) * 1000
        ended, self._ended = self._ended, []
        for track in ended:
            self._log_end(track)
            self._updates.append(self._update(track, ended=True))
        faces = [self._face(t) for t in self.tracker.tracks]
        updates, self._updates = self._updates, []
        return FrameResult(frame, faces, detections is not None, encoded, ms, updates, len(ended))

    def close(self) -> list[TrackUpdate]:
        """End every track (the source ended or the run stops): their last updates."""
        return [self._update(t, ended=True) for t in self.tracker.end(list(self.tracker.tracks))]

    def _end_overlapping(self) -> None:
        """Where two boxes come to overlap, flow may carry one onto the other face: end both."""
        tracks = self.tracker.tracks
        crossing = {id(t): t for t in tracks for o in tracks if o is not t and iou(t.box, o.box) > OVERLAP_ENDS}
        if crossing:
            self._ended.extend(self.tracker.end(list(crossing.values())))

    def _face(self, track: Track) -> TrackedFace:
        pooled = track.pooled
        shown = self.policy.shown(track)
        return TrackedFace(
            track.box,
            track.id,
            shown,
            track.distance if shown.decided else None,
            self._alive(track),
            pooled.nearest if pooled else None,
            pooled.distance if pooled else None,
            self._reason(track),
        )

    def _reason(self, track: Track) -> str | None:
        return self.policy.reason(track, self.matcher, self._alive(track))

    def _alive(self, track: Track) -> bool | None:
        return (track.blink is not None and track.blink.alive) if self.settings.liveness else None

    def _watch_blinks(self, gray: np.ndarray) -> None:
        """Eye aspect ratios of named faces that have not blinked yet; a blink is news for the door.

        Watching starts when the track is named: only a blink of the face that was
        named, after the encodings that named it, counts."""
        for track in self.tracker.tracks:
            if track.blink is None or track.blink.alive:
                continue
            if track.blink.update(eye_aspect_ratios(self.engine.landmarks68(gray, track.box))):
                self._updates.append(self._update(track))

    def _update(self, track: Track, ended: bool = False) -> TrackUpdate:
        """The track's standing for the door."""
        recent = list(track.votes)[-self.settings.voting.window :]
        agreeing = sum(1 for m in recent if track.identity.is_person and m.nearest == track.identity.person)
        pooled = track.pooled
        distance = pooled.distance if pooled else float("inf")
        margin = pooled.margin if pooled else float("inf")
        if track.identity.is_person and track.distance is not None:
            distance = track.distance
        return TrackUpdate(
            track.id,
            track.identity,
            distance,
            margin,
            agreeing,
            track.box,
            track.best_crop,
            self._alive(track),
            self._t,
            len(track.encodings),
            track.embedding,
            ended,
            self._frame,
            pooled.nearest if pooled else None,
        )

    def _encode_due(self, frame: Frame) -> int:
        if self.encoder is not None:
            self._collect(frame.index)
        h, w = frame.image.shape[:2]
        needs = {id(t): self.policy.need(t, frame.index, self.matcher) for t in self.tracker.tracks if not t.pending}
        due = [t for t in self.tracker.tracks if needs.get(id(t)) and _inside(t.box, h, w)]
        if not due:
            return 0
        # doubted tracks first, then faces never encoded (a fair share: a crowd's newcomers are not
        # starved by faces already looked at), then undecided ones, then those waiting longest
        due.sort(key=lambda t: (not t.doubt, bool(t.encodings), t.identity.decided, t.last_encoded))
        limit = self.encode_limit() if self.encode_limit is not None else None
        most = self.settings.max_encodes_per_frame
        due = due[: most if limit is None else min(limit, most)]
        if self.allowance is not None:  # on a budget: first looks before re-checks, re-checks from what is left
            allowance = self.allowance
            due = [t for t in due if (allowance.first_look() if needs[id(t)] == FIRST_LOOK else allowance.spare())]
        if not due:  # (an empty request would read as the encoder's stop message)
            return 0
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        chips = self.engine.chips(rgb, [t.box for t in due])
        for track in due:
            track.last_encoded = frame.index
            track.encoded_area = track.box.area
            track.chip_doubts = track.doubts
            if track.box.area > track.best_area:
                track.best_area = track.box.area
                track.best_crop = _crop(frame.image, track.box)
        if self.encoder is None:
            start = time.thread_time()
            encodings = self.engine.encode_chips(chips)
            self.encode_cpu_ms += (time.thread_time() - start) * 1000.0
            self.encoded_here += len(due)
            self._apply(due, encodings, frame.index)
        elif self.encoder.submit([t.id for t in due], chips):
            for track in due:
                track.pending = True
        return len(due)

    def _collect(self, index: int) -> None:
        """Apply the encodings the worker process has finished since the last frame.
        Those of tracks that have ended since are dropped: they belong to another claim."""
        assert self.encoder is not None
        by_id = {t.id: t for t in self.tracker.tracks}
        results = self.encoder.results()
        for i in self.encoder.take_lost():
            if i in by_id:
                by_id[i].pending = False
        for ids, encodings in results:
            live = [(by_id[i], e) for i, e in zip(ids, encodings, strict=True) if i in by_id]
            for track, _ in live:
                track.pending = False
            if live:
                self._apply([t for t, _ in live], np.array([e for _, e in live]), index)

    def _apply(self, tracks: list[Track], encodings: np.ndarray, index: int) -> None:
        for track, encoding, match in zip(tracks, encodings, self.matcher.match(encodings), strict=True):
            broken = self.policy.breaks_claim(track, encoding, match, self.matcher)
            if broken:
                log.debug("track %d ends: %s (nearest %s %.3f)", track.id, broken, match.nearest, match.distance)
                self._ended.append(track)
                track = self.tracker.restart(track, index)
                # this encoding is the new claim's first; its best view (crop) comes with its next look,
                # never from the face before it
                track.last_encoded, track.encoded_area = index, track.box.area
            if self.policy.vote(track, encoding, match, self.matcher):
                self._log_decision(track)
            if self.settings.liveness and track.blink is None and track.identity.is_person:
                track.blink = BlinkDetector(self.fps)
            self._updates.append(self._update(track))

    def _log_decision(self, track: Track) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        pooled = track.pooled
        if track.identity.is_stranger and pooled is not None:
            log.debug(
                "track %d: unknown after %d encodings: nearest %s at %.3f (%s; threshold %.2f, margin %.3f)",
                track.id,
                len(track.encodings),
                pooled.nearest,
                pooled.distance,
                self._reason(track),
                self.matcher.threshold,
                pooled.margin,
            )
        elif track.identity.is_person:
            log.debug(
                "track %d: %s at %.3f after %d encodings",
                track.id,
                track.identity.person,
                track.distance or 0.0,
                len(track.encodings),
            )

    def _log_end(self, track: Track) -> None:
        if log.isEnabledFor(logging.DEBUG) and not track.identity.is_person:
            pooled = track.pooled
            nearest = f"nearest {pooled.nearest} at {pooled.distance:.3f}" if pooled else "never encoded"
            log.debug("track %d ended unnamed (%s; %s)", track.id, self._reason(track), nearest)


def _crop(image: np.ndarray, box: Box, pad: float = 0.25) -> np.ndarray:
    h, w = image.shape[:2]
    dx, dy = int(box.width * pad), int(box.height * pad)
    b = Box(box.top - dy, box.right + dx, box.bottom + dy, box.left - dx).clipped(h, w)
    return image[b.top : b.bottom, b.left : b.right].copy()


def _inside(box: Box, h: int, w: int) -> bool:
    """Mostly inside the frame: a face cut by the edge aligns badly and would cast a bad vote."""
    c = box.clipped(h, w)
    return box.area > 0 and c.area >= 0.8 * box.area
