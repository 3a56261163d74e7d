"""How the live loop spends a CPU budget: a small board may give it a quarter of one core.

Spent in this order, from CPU time measured as the run goes (`Governor`):

1. every frame shown: decoding, tracking, outputs (`Costs.frame_ms`); frames that do not fit are dropped,
   never queued;
2. first looks: the encodings that decide a new face's name or answer a doubt (`FIRST_LOOKS_PER_SECOND`
   are kept for them, at most `FIRST_LOOKS_SHARE` of the budget, and they are never refused for re-checks);
3. detection: as often as `live.detect_every` allows; when that does not fit, fewer rounds down to
   `MIN_DETECT_HZ`, then on a smaller copy (a larger `min_face_px`, up to `MAX_FACE_PX_FACTOR` times
   the configured one) before new faces would wait for their first looks;
4. what is left: re-checks of named faces and second looks at strangers (`EncodeAllowance.spare`).

Every safety rule stays with the recognizer: fewer re-checks mean a name is questioned less often, never
that a name is shown without an encoding that matches.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..cpu import CpuShare, cpu_share
from .detection import detection_scale

log = logging.getLogger(__name__)

HEADROOM = 0.75  # share of the budget planned for: the rest absorbs bursts (two faces at once, the window)
FIRST_LOOKS_PER_SECOND = 4.0  # kept for new faces: two people a second, two agreeing looks each...
FIRST_LOOKS_SHARE = 0.4  # ...or this share of the budget where encodings are slow (a board's dlib: ~250 ms a face)
MIN_DETECT_HZ = 3.0  # fewest detection rounds a second before the detection copy shrinks (found within ~10 frames)
MAX_FACE_PX_FACTOR = 2.0  # min_face_px is raised to at most this multiple of the configured one
REPLAN_SECONDS = 1.0  # how often costs are measured and the plan made again
REREAD_BUDGET_SECONDS = 10.0  # how often the cgroup quota and affinity are read again
BURST = 6.0  # encodings the allowance may save up (faces arrive in groups)
RESERVE = FIRST_LOOKS_PER_SECOND / 2  # re-checks leave half a second's first looks in hand


@dataclass(frozen=True)
class Costs:
    """CPU milliseconds (CPU time, not wall time: under a quota wall time includes the waits)."""

    frame_ms: float  # per frame shown: decoding (dropped frames' too), gray copy, tracking, outputs
    detect_ms: float  # one detection round at `detect_face_px`
    encode_ms: float  # one face encoding, landmarks and alignment included
    detect_face_px: int  # the min_face_px `detect_ms` was measured at

    def describe(self) -> str:
        return (
            f"CPU measured: {self.frame_ms:.1f} ms a frame, {self.detect_ms:.1f} ms a detection round"
            f" (min face {self.detect_face_px} px), {self.encode_ms:.1f} ms an encoding"
        )

    def detect_at(self, min_face_px: int) -> float:
        """A round's cost at another min_face_px: HOG's work follows the pixels of the detection copy."""
        return self.detect_ms * _pixels(min_face_px) / _pixels(self.detect_face_px)


@dataclass(frozen=True)
class Plan:
    """What the loop does with its budget; `describe()` is what the summary and `livecam bench` print."""

    cores: float  # the budget planned for, in cores
    fps: float  # frames a second it expects to show
    detect_every: int  # frames between detection rounds
    min_face_px: int  # detection copy's scale
    first_looks: float  # encodings a second kept for new faces and doubts
    spare_looks: float  # encodings a second left for re-checks of named faces and strangers
    fits: bool = True  # False: even the fewest rounds on the smallest copy do not fit (fewer frames shown)

    def describe(self) -> str:
        cores = f"{self.cores:.2f} of a core" if self.cores <= 1 else f"{self.cores:.2f} cores"
        text = (
            f"plan for {cores}: {self.fps:.0f} fps, detection every {self.detect_every} frames"
            f" (min face {self.min_face_px} px), {self.first_looks:.1f} first looks/s kept,"
            f" {self.spare_looks:.1f} re-checks/s"
        )
        return text if self.fits else text + " (does not fit: frames will be dropped)"


def plan(cores: float, fps: float, costs: Costs, detect_every: int, min_face_px: int, pressure: float = 1.0) -> Plan:
    """The plan for `cores` (0.25: a quarter of one core) at a source of `fps` frames a second.

    `detect_every` and `min_face_px` are the config's: the most often and the finest the loop detects.
    `pressure` (0-1) scales the budget down when frames were dropped although the plan fit
    (another process on the same core, a board that throttles).
    """
    available = max(cores, 0.01) * 1000.0 * HEADROOM * pressure  # CPU ms a second
    first = min(FIRST_LOOKS_PER_SECOND * costs.encode_ms, FIRST_LOOKS_SHARE * available)
    first_looks = first / max(costs.encode_ms, 0.01)
    fewest_rounds = min(MIN_DETECT_HZ, fps / detect_every) * costs.detect_at(round(min_face_px * MAX_FACE_PX_FACTOR))
    # frames first, but never so many that new faces could not be found and looked at
    shown = min(fps, max(1.0, (available - first - fewest_rounds) / max(costs.frame_ms, 0.01)))
    rest = available - shown * costs.frame_ms - first
    # detection runs on one thread and encoding in one process: neither can use more than one core
    rounds, face_px, fits = _detection(min(rest, 1000.0), costs, fps / detect_every, min_face_px)
    every = max(1, math.ceil(shown / rounds)) if rounds > 0 else 10**6
    detect_cost = shown / every * costs.detect_at(face_px)
    encoder_room = max(0.0, 1000.0 / max(costs.encode_ms, 0.01) - first_looks)
    spare = min(encoder_room, max(0.0, rest - detect_cost) / max(costs.encode_ms, 0.01))
    fits = fits and shown >= fps
    return Plan(cores * pressure, shown, every, face_px, first_looks, spare, fits)


def _detection(rest: float, costs: Costs, most: float, min_face_px: int) -> tuple[float, int, bool]:
    """(rounds a second, min_face_px, fits) within `rest` CPU ms a second: `most` rounds (the config's
    rate) if they fit, then fewer down to MIN_DETECT_HZ, then on a smaller copy (up to MAX_FACE_PX_FACTOR)."""
    round_ms = costs.detect_at(min_face_px)
    if round_ms <= 0 or rest >= most * round_ms:
        return most, min_face_px, True
    rest = max(rest, 0.0)
    fewest = min(most, MIN_DETECT_HZ)
    if rest / round_ms >= fewest:
        return rest / round_ms, min_face_px, True
    biggest = round(min_face_px * MAX_FACE_PX_FACTOR)
    wanted_ms = rest / fewest  # a round's cost that fits at the fewest rounds
    if costs.detect_at(biggest) <= wanted_ms:
        face_px = math.ceil(min_face_px * math.sqrt(round_ms / wanted_ms))
        return fewest, min(face_px, biggest), True
    return rest / costs.detect_at(biggest), biggest, False


class EncodeAllowance:
    """A token bucket of encodings: first looks always go (they may run it into debt, down to -BURST);
    re-checks go only while they leave RESERVE in hand."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic, saved: float = BURST) -> None:
        self.per_second = per_second
        self._clock = clock
        self._tokens = saved
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(BURST, self._tokens + (now - self._at) * self.per_second)
        self._at = now

    def first_look(self) -> bool:
        self._refill()
        if self._tokens <= -BURST:
            return False  # a crowd: the next frame's first looks wait
        self._tokens -= 1
        return True

    def spare(self) -> bool:
        self._refill()
        if self._tokens - 1 < RESERVE:
            return False
        self._tokens -= 1
        return True


class Governor:
    """Measures what the live loop spends and plans again every REPLAN_SECONDS (budget.plan).

    The loop reports CPU time: `detected()` from the detector thread (its thread CPU time),
    `encoded()` from the encoder process (or from the loop's own thread when it encodes there);
    the rest of the process's CPU time per frame is `Costs.frame_ms`. Frames dropped while the
    plan fit raise the `pressure`: something the quota does not show takes the CPU.
    """

    def __init__(
        self,
        fps: float,
        detect_every: int,
        min_face_px: int,
        share: Callable[[], CpuShare] = cpu_share,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.fps, self.every, self.min_face_px = fps, detect_every, min_face_px
        self._share, self._clock, self._cpu_clock = share, clock, cpu_clock
        self.budget = share()
        self._budget_at = self._window_at = clock()
        self._cpu_at = cpu_clock()
        self.window = _Spent()  # since the last plan
        self.run = _Spent()  # since the start (livecam bench)
        self.pressure = 1.0
        self.detecting = False  # a detection round is running (set by the live schedule and the detector thread)
        # until measured: roughly this machine's costs (MobileFaceNet, 640x480), so the first seconds plan sanely
        self.costs = Costs(frame_ms=3.0, detect_ms=13.0, encode_ms=14.0, detect_face_px=min_face_px)
        self.plan = self._make_plan()
        self.allowance = EncodeAllowance(self.plan.first_looks + self.plan.spare_looks, clock)

    def detected(self, cpu_ms: float, min_face_px: int) -> None:
        """A detection round's thread CPU time at `min_face_px` (called from the detector thread)."""
        at_config = cpu_ms * _pixels(self.min_face_px) / _pixels(min_face_px)
        for spent in (self.window, self.run):
            spent.detect_ms += cpu_ms
            spent.detect_ms_at_config += at_config
            spent.rounds += 1

    def encoded(self, faces: int, cpu_ms: float, in_process: bool = False) -> None:
        """`faces` encodings that took `cpu_ms` of CPU (`in_process`: on this process's own threads)."""
        for spent in (self.window, self.run):
            spent.encodes += faces
            spent.encode_ms += cpu_ms
            spent.encode_ms_here += cpu_ms if in_process else 0.0

    def frame(self, dropped: int = 0) -> Plan | None:
        """Called once per frame shown (`dropped`: the source's total so far); the new plan when one is made."""
        self.window.frames += 1
        self.run.frames += 1
        now = self._clock()
        if now - self._window_at < REPLAN_SECONDS:
            return None
        cpu = self._cpu_clock()
        self.window.cpu_ms = (cpu - self._cpu_at) * 1000.0
        self.run.cpu_ms += self.window.cpu_ms
        measured = self.window.costs(self.costs, self.min_face_px)
        c = self.costs
        self.costs = Costs(
            _ease(c.frame_ms, measured.frame_ms),
            _ease(c.detect_ms, measured.detect_ms),
            _ease(c.encode_ms, measured.encode_ms),
            self.min_face_px,
        )
        dropped_now = dropped - self.window.dropped_at
        if dropped_now > 0.1 * (self.window.frames + dropped_now) and self.plan.fits:
            self.pressure = max(0.4, self.pressure * 0.85)
        elif dropped_now == 0:
            self.pressure = min(1.0, self.pressure * 1.05)
        if now - self._budget_at >= REREAD_BUDGET_SECONDS:
            budget, self._budget_at = self._share(), now
            if budget.cpus != self.budget.cpus:
                log.info("CPU budget changed: %s", budget.describe())
            self.budget = budget
        self._window_at, self._cpu_at = now, cpu
        self.window = _Spent(dropped_at=dropped)
        before, self.plan = self.plan, self._make_plan()
        self.allowance.per_second = self.plan.first_looks + self.plan.spare_looks
        if (before.detect_every, before.min_face_px) != (self.plan.detect_every, self.plan.min_face_px):
            log.debug("%s", self.plan.describe())
        return self.plan

    def finish(self) -> Costs:
        """The whole run's costs (livecam bench): CPU time since the start, per frame, round and encoding."""
        self.run.cpu_ms += (self._cpu_clock() - self._cpu_at) * 1000.0
        self._cpu_at = self._cpu_clock()
        return self.run.costs(self.costs, self.min_face_px)

    def encode_limit(self) -> int | None:
        """Faces the loop may hand the encoder now; None: as the config says. Under one core a detection round
        and an encoding at once only share the core and run into the quota together (every thread then waits
        out the period and frames are dropped): one heavy job at a time, one face at a time."""
        if self.plan.cores >= 1:
            return None
        return 0 if self.detecting else 1

    def _make_plan(self) -> Plan:
        return plan(self.budget.cpus, self.fps, self.costs, self.every, self.min_face_px, self.pressure)


@dataclass
class _Spent:
    frames: int = 0
    cpu_ms: float = 0.0  # the process's CPU time
    detect_ms: float = 0.0
    detect_ms_at_config: float = 0.0  # the same rounds, as they would cost at the configured min_face_px
    rounds: int = 0
    encode_ms: float = 0.0
    encode_ms_here: float = 0.0  # encodings run on this process's threads (in cpu_ms)
    encodes: int = 0
    dropped_at: int = 0

    def costs(self, before: Costs, min_face_px: int) -> Costs:
        """Costs measured here; where nothing was measured (no face, no round), `before`'s."""
        frame_ms = max(0.1, (self.cpu_ms - self.detect_ms - self.encode_ms_here) / max(self.frames, 1))
        detect_ms = self.detect_ms_at_config / self.rounds if self.rounds else before.detect_ms
        encode_ms = self.encode_ms / self.encodes if self.encodes else before.encode_ms
        return Costs(frame_ms, detect_ms, encode_ms, min_face_px)


def _pixels(min_face_px: int) -> float:
    """The share of a frame's pixels a detection round scans at `min_face_px` (detection.Detector.scale)."""
    return detection_scale(min_face_px) ** 2


def _ease(old: float, new: float) -> float:
    """Costs move halfway to each new window's: one busy window does not swing the plan."""
    return 0.5 * old + 0.5 * new
