"""The live loop: source -> detection schedule -> recognizer -> log, recording, window.

Concurrency (docs/design.md, "Why this design"): HOG detection releases the GIL, so it
runs on a worker thread while the main thread follows tracks and draws.
Encoding holds the GIL (~12 ms a face) but happens only when a track starts or
is re-checked, a few times per person, not per frame.

* Files: every frame, in order. Detection runs a few frames ahead of the
  frame being shown (a look-ahead queue), so the detector and the main thread
  work in parallel and the result is the same on every run.
* Live sources and --realtime: the newest frame only; a detection round starts
  on the current frame whenever the detector is free ("as the CPU allows") and
  its boxes are applied when it is done, so the display never waits for it.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import cv2
import numpy as np
from imutils.video import FPS

from ..cpu import cpu_share
from ..engine import Box
from ..stopping import StopRequest
from ..storage import ensure_private_dir, open_private
from . import overlay
from .budget import Governor
from .capture import FileSource, Frame, LatestFrameReader
from .detection import Detector
from .recognizer import FrameResult, Recognizer
from .reload import GalleryWatcher

log = logging.getLogger(__name__)

WINDOW = "livecam"


@dataclass
class StageTimes:
    """Running totals of milliseconds per stage, for the corner and the summary."""

    totals: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    recent: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, ms: float) -> None:
        self.totals[stage] = self.totals.get(stage, 0.0) + ms
        self.counts[stage] = self.counts.get(stage, 0) + 1
        old = self.recent.get(stage, ms)
        self.recent[stage] = 0.9 * old + 0.1 * ms

    def mean(self, stage: str) -> float:
        return self.totals.get(stage, 0.0) / max(self.counts.get(stage, 0), 1)


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _timed_detect(detector: Detector, gray: np.ndarray, governor: Governor | None = None) -> tuple[list[Box], float]:
    start, cpu = time.perf_counter(), time.thread_time()
    min_face_px = detector.min_face_px
    try:
        boxes = detector(gray)
    finally:
        if governor is not None:
            governor.detecting = False
    if governor is not None:  # its thread's CPU time: under a quota the wall time includes the waits
        governor.detected((time.thread_time() - cpu) * 1000, min_face_px)
    return boxes, (time.perf_counter() - start) * 1000


def file_schedule(
    source: FileSource,
    detector: Detector,
    every: int,
    pool: ThreadPoolExecutor,
    times: StageTimes,
    governor: Governor | None = None,
) -> Iterator[tuple[Frame, np.ndarray, list[Box] | None, int]]:
    """Every frame in order; detection on every `every`-th frame, computed ahead on `pool`.

    Frames are decoded ahead on a reader thread too (OpenCV releases the GIL while
    decoding), which submits their detection as soon as they are read: the frame
    loop's own thread is left with tracking and encoding.
    """
    reader = ThreadPoolExecutor(1, thread_name_prefix="reader")

    def read_one() -> tuple[Frame, np.ndarray, Future | None, float] | None:
        start = time.perf_counter()
        frame = source.read()
        if frame is None:
            return None
        gray = _gray(frame.image)
        ms = (time.perf_counter() - start) * 1000
        future = pool.submit(_timed_detect, detector, gray, governor) if frame.index % every == 0 else None
        return frame, gray, future, ms

    # one reader thread: reads happen in order, and so do the detections they submit
    pending = deque(reader.submit(read_one) for _ in range(max(2 * every, 4)))
    try:
        while pending:
            item = pending.popleft().result()
            if item is None:
                return
            pending.append(reader.submit(read_one))
            frame, gray, future, ms = item
            times.add("read", ms)
            detections = None
            if future is not None:
                detections, detect_ms = future.result()
                times.add("detect", detect_ms)
            yield frame, gray, detections, frame.index
    finally:
        for f in pending:
            f.cancel()
        reader.shutdown(wait=True)


def live_schedule(
    source: LatestFrameReader,
    detector: Detector,
    every: int,
    pool: ThreadPoolExecutor,
    times: StageTimes,
    governor: Governor | None = None,
    encoding: Callable[[], bool] | None = None,
) -> Iterator[tuple[Frame, np.ndarray, list[Box] | None, int] | None]:
    """Newest frames; detection whenever the detector is free and at most every `every` frames (or as the
    governor's plan says). Yields None while no frame comes, else (frame, its gray copy, boxes of a detection
    round that has just finished or None, the frame they were found on)."""
    future: Future | None = None
    last_submitted = -(10**9)
    while True:
        frame = source.read(timeout=0.5)
        if frame is None:
            if source.ended:
                return
            yield None  # reconnecting: the caller keeps the window alive
            continue
        start = time.perf_counter()
        gray = _gray(frame.image)
        times.add("read", (time.perf_counter() - start) * 1000)
        detections, found_on = None, frame.index
        if future is not None and future.done():
            detections, ms = future.result()
            times.add("detect", ms)
            future, found_on = None, last_submitted
        if governor is not None:
            every = governor.plan.detect_every
            if detector.min_face_px != governor.plan.min_face_px:
                detector.set_min_face_px(governor.plan.min_face_px)
        # under one core a round started beside an encoding only shares the core with it, and the two run
        # into the quota together (every thread waits out the period, frames are dropped): one at a time
        waits = governor is not None and governor.plan.cores < 1 and encoding is not None and encoding()
        if future is None and frame.index - last_submitted >= every and not waits:
            if governor is not None:
                governor.detecting = True
            future = pool.submit(_timed_detect, detector, gray, governor)
            last_submitted = frame.index
        yield frame, gray, detections, found_on


class DoorEvents(Protocol):
    """What the loop feeds the door (door.events.EventSink): the live part knows nothing of the door's decisions."""

    def enrolled(self, people: Sequence[str]) -> None: ...  # the gallery (re)loaded

    def handle(self, result: FrameResult) -> None: ...  # each frame's result

    def take(self, updates: list, now: float, final: bool = False) -> None: ...  # the tracks still open at the end


class FrameSink(Protocol):
    """Where each frame's result goes (the JSON log, a recording, the window); adding an output is one more."""

    needs_drawing: bool  # wants the frame with the overlay drawn on it

    def show(self, result: FrameResult, drawn: np.ndarray | None) -> str | None: ...  # "quit" stops the run

    def idle(self) -> str | None: ...  # the source is reconnecting

    def close(self) -> None: ...


class JsonLog:
    """The --log-json contract: one JSON line per output frame."""

    needs_drawing = False

    def __init__(self, target: str) -> None:
        if target == "-":
            import sys

            self._file: IO[str] = sys.stdout
            self._close = False
        else:
            fd = open_private(target)  # names are personal data: 0600, never through a link
            self._file = os.fdopen(fd, "w", encoding="utf-8")
            self._close = True

    def write(self, result: FrameResult) -> None:
        faces = [
            {
                "box": f.box.as_list(),
                "track": f.track,
                "name": f.name,
                "distance": None if f.distance is None else round(float(f.distance), 4),
            }
            for f in result.faces
        ]
        record = {"frame": result.frame.index, "t": round(result.frame.t, 4), "faces": faces}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def show(self, result: FrameResult, drawn: np.ndarray | None) -> None:
        self.write(result)

    def idle(self) -> None:
        return None

    def close(self) -> None:
        self._file.flush()
        if self._close:
            self._file.close()


class Recording:
    """--record: the annotated frames as a video, 0600, opened on the first frame (its size is known then)."""

    needs_drawing = True

    def __init__(self, path: str, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None

    def show(self, result: FrameResult, drawn: np.ndarray | None) -> None:
        assert drawn is not None
        if self._writer is None:
            self._writer = _open_writer(self.path, drawn, self.fps)
        self._writer.write(drawn)

    def idle(self) -> None:
        return None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class Window:
    """The OpenCV window and its keys: q/Esc quit, f fullscreen, s snapshot, d debug lines.

    `pace`: a video file is shown at its own speed (the key wait is the pause), not as fast as it
    decodes (120-180 fps, which nobody can watch); without a window a file still runs flat out.
    """

    needs_drawing = True

    def __init__(self, outputs: Outputs, pace: bool = False) -> None:
        self.outputs = outputs
        self.fullscreen = outputs.fullscreen
        self.pace = pace
        self._start: tuple[float, float] | None = None  # (wall clock, source time) of the first frame
        self._last: np.ndarray | None = None
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        if self.fullscreen:
            cv2.setWindowProperty(WINDOW, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)

    def show(self, result: FrameResult, drawn: np.ndarray | None) -> str | None:
        self._last = drawn
        cv2.imshow(WINDOW, drawn)
        wait_ms = 1
        if self.pace:
            now = time.monotonic()
            if self._start is None:
                self._start = (now, result.frame.t)
            due = self._start[0] + (result.frame.t - self._start[1])
            wait_ms = max(1, int((due - now) * 1000))
        return self._key(cv2.waitKey(wait_ms))

    def idle(self) -> str | None:
        if self._last is None:
            return None
        cv2.imshow(WINDOW, overlay.draw_status(self._last.copy(), "reconnecting..."))
        return self._key(cv2.waitKey(30))

    def _key(self, key: int) -> str | None:
        action = _handle_key(key, self._last, self.outputs)
        if action == "debug":
            self.outputs.debug = not self.outputs.debug
        elif action == "fullscreen":
            self.fullscreen = not self.fullscreen
            mode = cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL
            cv2.setWindowProperty(WINDOW, cv2.WND_PROP_FULLSCREEN, mode)
        return "quit" if action == "quit" else None

    def close(self) -> None:
        cv2.destroyWindow(WINDOW)


class WhyLog:
    """--debug without a window: the `d` key's line (overlay.why_line) for each face shown without a
    name, logged once per track and reason, with the threshold it was measured against."""

    needs_drawing = False

    def __init__(self, threshold: Callable[[], float]) -> None:
        self._threshold = threshold  # the matcher's: a hot reload may bring another matcher
        self._said: dict[int, set[str]] = {}  # track -> reasons already logged

    def show(self, result: FrameResult, drawn: np.ndarray | None) -> None:
        said: dict[int, set[str]] = {}
        for face in result.faces:
            reasons = said[face.track] = self._said.get(face.track, set())
            # "not encoded yet" has no nearest person to report, and every new face passes through it
            if face.nearest is None or face.reason is None or face.reason in reasons:
                continue
            reasons.add(face.reason)
            why = overlay.why_line(face)
            log.info("track %d shows no name: %s (threshold %.2f)", face.track, why, self._threshold())
        self._said = said  # a track that has ended never comes back: forget it

    def idle(self) -> None:
        return None

    def close(self) -> None:
        return None


def frame_sinks(
    outputs: Outputs, fps: float, live: bool = True, threshold: Callable[[], float] | None = None
) -> list[FrameSink]:
    sinks: list[FrameSink] = []
    if outputs.log_json:
        sinks.append(JsonLog(outputs.log_json))
    if outputs.record:
        sinks.append(Recording(outputs.record, fps))
    if outputs.window:
        sinks.append(Window(outputs, pace=not live))
    elif outputs.debug and threshold is not None:
        sinks.append(WhyLog(threshold))
    return sinks + list(outputs.extra)


@dataclass
class Outputs:
    window: bool = False
    fullscreen: bool = False
    record: str | None = None
    log_json: str | None = None
    snapshots: Path = Path("snapshots")
    debug: bool = False  # why unnamed faces are not named, under their boxes ('d' toggles it)
    extra: list[FrameSink] = field(default_factory=list)  # more sinks (the web page's live view)


@dataclass
class Summary:
    frames: int
    seconds: float
    fps: float
    dropped: int
    stage_ms: dict[str, float]
    encodings: int
    detect_round_ms: float = 0.0
    peak_rss_mb: float = 0.0
    damaged: int = 0  # frames of a file skipped because they could not be decoded
    budget: str = ""  # the CPU time the run could use, read at its end (cpu.CpuShare.describe)
    plan: str = ""  # how it was spent (live: budget.Plan.describe, the last plan)

    def lines(self) -> list[str]:
        stages = "  ".join(f"{k} {v:.1f} ms" for k, v in self.stage_ms.items())
        return [
            f"{self.frames} frames in {self.seconds:.1f} s: {self.fps:.1f} fps"
            + (f", {self.dropped} frames dropped (live)" if self.dropped else "")
            + (f", {self.damaged} damaged frames skipped" if self.damaged else ""),
            f"per frame: {stages}; {self.encodings} encodings; peak RSS {self.peak_rss_mb:.0f} MB"
            + (f"; {self.budget}" if self.budget else ""),
        ] + ([self.plan] if self.plan else [])


def run_loop(
    source: FileSource | LatestFrameReader,
    recognizer: Recognizer,
    detector: Detector,
    outputs: Outputs,
    stop_after: int | None = None,
    watcher: GalleryWatcher | None = None,
    events: DoorEvents | None = None,
    stop: StopRequest | None = None,
    alive: Callable[[], None] | None = None,
    governor: Governor | None = None,
) -> Summary:
    """Frames from `source` through the recognizer to the door (`events`) and the outputs.

    `alive` is called on every turn of the loop, frames or a reconnecting camera alike (systemd's
    watchdog): a loop that stops turning stops calling it. A live source is run within its CPU
    budget (budget.Governor, made here unless one is given); a file read offline is not governed
    unless `governor` is given, and then only measured (livecam bench)."""
    times = StageTimes()
    every = recognizer.settings.detect_every
    fps_counter = FPS().start()
    started = time.perf_counter()
    frames = encodings = 0
    last_t = 0.0
    sinks = frame_sinks(outputs, source.fps, live=source.live, threshold=lambda: recognizer.matcher.threshold)
    draw = any(sink.needs_drawing for sink in sinks)
    pool = ThreadPoolExecutor(1, thread_name_prefix="detector")
    live = isinstance(source, LatestFrameReader)
    if governor is None and live:
        governor = Governor(source.fps, every, detector.min_face_px)
    if live and governor is not None:
        recognizer.allowance = governor.allowance
        recognizer.encode_limit = governor.encode_limit
    spent = _EncodeMeter(recognizer)
    schedule = (
        live_schedule(source, detector, every, pool, times, governor, recognizer.encoding)
        if live
        else file_schedule(source, detector, every, pool, times, governor)
    )
    try:
        for item in schedule:
            if alive is not None:
                alive()
            if stop is not None and stop.requested:
                break
            if item is None:  # a live source is reconnecting
                if any(sink.idle() == "quit" for sink in sinks):
                    break
                continue
            frame, gray, detections, found_on = item
            if watcher is not None and (matcher := watcher.take()) is not None:
                recognizer.set_matcher(matcher)
                if events is not None:
                    events.enrolled(matcher.names)
            result = recognizer.step(frame, gray, detections, found_on)
            last_t = frame.t
            if events is not None:
                events.handle(result)
            for stage, ms in result.ms.items():
                times.add(stage, ms)
            frames += 1
            encodings += result.encoded
            fps_counter.update()
            if governor is not None:
                spent.report(governor)
                governor.frame(source.dropped)
            drawn = None
            if draw:
                start = time.perf_counter()
                stats = _stats_lines(times, frames, started, governor if live else None) if outputs.window else ()
                drawn = overlay.render(frame.image, result.faces, stats, debug=outputs.debug)
                times.add("draw", (time.perf_counter() - start) * 1000)
            if [sink.show(result, drawn) for sink in sinks].count("quit"):
                break
            if stop_after is not None and frames >= stop_after:
                break
        if events is not None:  # the tracks still open end with the run; waiting unknowns are decided
            events.take(recognizer.close(), last_t, final=True)
    finally:
        schedule.close()
        pool.shutdown(wait=True)
        fps_counter.stop()
        for sink in sinks:
            sink.close()
    elapsed = max(fps_counter.elapsed(), 1e-9)
    stage_ms = {
        k: times.totals[k] / max(frames, 1)
        for k in ("read", "detect", "track", "encode", "liveness", "draw")
        if k in times.totals
    }
    return Summary(
        frames,
        elapsed,
        frames / elapsed,
        source.dropped,
        stage_ms,
        encodings,
        times.mean("detect"),
        peak_rss_mb(),
        source.skipped,
        cpu_share().describe(),
        f"{governor.plan.describe()}; {governor.costs.describe()}" if live and governor is not None else "",
    )


class _EncodeMeter:
    """Hands the governor the encodings done since the last frame, wherever they ran."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self._seen = (0, 0.0, 0, 0.0)

    def report(self, governor: Governor) -> None:
        r, e = self.recognizer, self.recognizer.encoder
        now = (r.encoded_here, r.encode_cpu_ms, e.encoded if e else 0, e.cpu_ms if e else 0.0)
        here, here_ms, there, there_ms = (a - b for a, b in zip(now, self._seen, strict=True))
        self._seen = now
        if here:
            governor.encoded(int(here), here_ms, in_process=True)
        if there:
            governor.encoded(int(there), there_ms)


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ru_maxrss: Linux carries that over from the parent through fork and exec,
    so a run started by a big process (a test runner, a supervisor) would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stats_lines(times: StageTimes, frames: int, started: float, governor: Governor | None = None) -> list[str]:
    elapsed = time.perf_counter() - started
    rate = frames / elapsed if elapsed > 0 else 0.0
    stages = " ".join(f"{k} {v:.1f}" for k, v in times.recent.items())
    lines = [f"{rate:.1f} fps", f"ms: {stages}"]
    if governor is not None:  # the budget and what the loop chose to do with it
        p = governor.plan
        lines.append(f"CPU {p.cores:.2f}: detect every {p.detect_every}, min face {p.min_face_px} px")
    return lines


def _open_writer(path: str, image: np.ndarray, fps: float) -> cv2.VideoWriter:
    # OpenCV opens the file by name: make it first, 0600 and never through a link, then let it write there
    os.close(open_private(path))
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"{path}: cannot write video")
    return writer


def _handle_key(key: int, drawn: np.ndarray | None, outputs: Outputs) -> str | None:
    key &= 0xFF
    if key in (ord("q"), 27):
        return "quit"
    if key == ord("f"):
        return "fullscreen"
    if key == ord("d"):
        return "debug"
    if key == ord("s") and drawn is not None:
        folder = ensure_private_dir(outputs.snapshots)
        path = folder / time.strftime("snapshot-%Y%m%d-%H%M%S.jpg")
        ok, data = cv2.imencode(".jpg", drawn)
        if ok:
            from ..storage import atomic_write_bytes

            atomic_write_bytes(path, data.tobytes())
            log.info("snapshot saved: %s", path)
        return "snapshot"
    return None
