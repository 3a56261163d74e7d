"""Frame sources: video files (every frame, in order) and live sources (newest frame only).

imutils' threaded VideoStream reads into a shared attribute with no lock and
never releases the camera; `LatestFrameReader` is that small piece done right:
a lock, a condition to wait on, reconnection with backoff, and release on close.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..redact import redact_url

log = logging.getLogger(__name__)

# libav prints its own lines for each damaged frame ("Invalid NAL unit size", 30 of them for one
# damaged stretch) straight to stderr; livecam says it in one line of its own. Read by OpenCV when it
# first opens a video; a user who wants libav's lines sets it (OPENCV_FFMPEG_LOGLEVEL=16).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://")
OPEN_TIMEOUT_MS = 5000
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 8.0
# 8K: the largest camera.width x camera.height the config accepts. A bigger frame (a
# hostile file or stream) costs hundreds of MB to decode and seconds to look at.
MAX_FRAME_PIXELS = 7680 * 4320
# A damaged stretch of a file makes OpenCV's reads fail a few times (7 to 20 for 20-50 KB of a
# 600 KB clip), then frames come again. Failed reads are skipped until the frame count the file
# declares, and at most this many in a row: past it the file is taken as ended (a truncated file,
# or a count that was wrong). A failed read costs microseconds, so the bound is generous.
MAX_BAD_READS = 500


class SourceError(RuntimeError):
    """A source that cannot be opened; str() is one line."""


@dataclass(frozen=True, slots=True)
class Frame:
    index: int  # 0-based index of the frame in its source
    t: float  # source time in seconds (file: index / fps; live: since start)
    image: np.ndarray  # BGR uint8


def parse_source(src: str | int) -> int | str:
    if isinstance(src, int):
        return src
    return int(src) if src.strip().isdigit() else src


def is_live(src: int | str) -> bool:
    return isinstance(src, int) or src.lower().startswith(URL_SCHEMES)


def _open_capture(src: int | str, width: int, height: int, fps: float) -> cv2.VideoCapture:
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        OPEN_TIMEOUT_MS,
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        OPEN_TIMEOUT_MS,
    ]
    cap = cv2.VideoCapture(src, cv2.CAP_ANY, params)
    if cap.isOpened() and isinstance(src, int):
        # A late frame is worth nothing: keep the driver's queue as short as it allows.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_FPS, fps)
    return cap


def frame_too_large(width: float, height: float) -> str | None:
    """Why frames of this size are refused, or None."""
    if width * height > MAX_FRAME_PIXELS:
        return f"frames are {int(width)}x{int(height)}, more than 8K (7680x4320)"
    return None


def _declared_too_large(cap: cv2.VideoCapture) -> str | None:
    return frame_too_large(cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))


class FileFrames:
    """The frames of one open video file with their indices in it, read past damaged stretches.

    After failed reads OpenCV's own count (CAP_PROP_POS_FRAMES) carries on from the last good
    frame, so a frame's index is taken from its timestamp there: the frames lost keep their place
    in time (--log-json's `frame` and `t`), and `skipped` counts them.
    """

    def __init__(self, cap: cv2.VideoCapture, name: str, fps: float, warn: bool = True) -> None:
        self.cap, self.name, self.fps = cap, name, fps
        declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.declared = int(declared) if declared and declared > 0 else None
        self.next = 0  # index of the next frame, when nothing is lost
        self.skipped = 0  # frames lost to damage
        self._origin_ms: float | None = None  # the first frame's timestamp
        self._warn = warn  # one warning per source: the summary has the count

    def read(self) -> tuple[int, np.ndarray] | None:
        """(index, image) of the next decodable frame; None at the end of the file."""
        failed = 0
        while True:
            try:
                ok, image = self.cap.read()
            except cv2.error:
                ok, image = False, None
            if ok and image is not None and image.size:
                break
            failed += 1
            if (self.declared is not None and self.next >= self.declared) or failed >= MAX_BAD_READS:
                # (no frame at all: the caller says "no video frames in it")
                if failed >= MAX_BAD_READS and self.next and self.declared is not None and self.next < self.declared:
                    log.warning(
                        "%s: no frame could be decoded after frame %d of the %d it declares; it ends there",
                        self.name,
                        self.next - 1,
                        self.declared,
                    )
                return None
        ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
        if self._origin_ms is None:
            self._origin_ms = ms
        index = self.next
        if failed:
            index = max(index, round((ms - self._origin_ms) * self.fps / 1000))
            lost = index - self.next
            self.skipped += max(lost, 1)  # a timestamp that says nothing was lost: at least the failed read
            if self._warn:
                self._warn = False
                log.warning(
                    "%s: frames %d-%d (%.1f s in) are damaged: skipped (the summary counts all damaged frames)",
                    self.name,
                    self.next,
                    max(index - 1, self.next),
                    self.next / self.fps,
                )
        self.next = index + 1
        return index, image


class FileSource:
    """Every frame of a video file, in order, as fast as it decodes; damaged frames are skipped (FileFrames)."""

    live = False

    def __init__(self, path: str, loop: bool = False) -> None:
        self.name = path
        self._loop = loop
        if not Path(path).is_file():
            raise SourceError(f"{path}: no such video file")
        self._cap = cv2.VideoCapture(path)
        if not self._cap.isOpened():
            raise SourceError(f"{path}: cannot open as a video")
        too_large = _declared_too_large(self._cap)
        if too_large:
            self._cap.release()
            raise SourceError(f"{path}: {too_large}")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 30.0
        self._frames = FileFrames(self._cap, path, self.fps)
        first = self._frames.read()
        if first is None:
            self._cap.release()
            raise SourceError(f"{path}: no video frames in it (not a video, or damaged)")
        too_large = frame_too_large(first[1].shape[1], first[1].shape[0])
        if too_large:
            self._cap.release()
            raise SourceError(f"{path}: {too_large}")
        self._first: tuple[int, np.ndarray] | None = first
        self._base = 0  # --loop: the frame indices of earlier plays
        self._skipped_before = 0
        self.status = "ok"
        self.dropped = 0

    @property
    def skipped(self) -> int:
        """Frames lost to damage (a damaged stretch in the file), over every play."""
        return self._skipped_before + self._frames.skipped

    def read(self, timeout: float | None = None) -> Frame | None:
        if self._first is not None:  # read when the file was checked
            got, self._first = self._first, None
        else:
            got = self._frames.read()
        if got is None and self._loop and self._frames.next:
            self._cap.release()
            self._base += self._frames.next
            self._skipped_before += self._frames.skipped
            self._cap = cv2.VideoCapture(self.name)
            self._frames = FileFrames(self._cap, self.name, self.fps, warn=False)
            got = self._frames.read()
        if got is None:
            self.status = "ended"
            return None
        index, image = got
        index += self._base
        too_large = frame_too_large(image.shape[1], image.shape[0])
        if too_large:  # the size changed mid-file
            log.error("%s: frame %d: %s; stopping", self.name, index, too_large)
            self.status = "ended"
            return None
        return Frame(index, index / self.fps, image)

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    def close(self) -> None:
        self._cap.release()


class LatestFrameReader:
    """Reads a source on its own thread and keeps only the newest frame.

    `pace_fps` plays a file in real time (frames that the consumer is too slow
    for are dropped, as with a camera), past damaged stretches (FileFrames); a
    file then ends. Its clock starts at the first read(), not when it is opened:
    the models load in between, and a file paced meanwhile lost its first
    seconds. A live source that fails is reopened with exponential backoff,
    forever, until close().
    """

    live = True

    def __init__(
        self,
        opener: Callable[[], cv2.VideoCapture],
        name: str,
        first: cv2.VideoCapture | None = None,
        pace_fps: float | None = None,
        fps: float = 30.0,
        loop: bool = False,
    ) -> None:
        self.name = name
        self._loop = loop
        self.fps = pace_fps or fps
        self._opener = opener
        self._pace = pace_fps
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._frame: Frame | None = None
        self._returned = -1
        self._read = 0
        self._delivered = 0
        self._skipped_before = 0
        self._frames: FileFrames | None = None  # the file being played (pace_fps)
        self._go = threading.Event()  # a file waits for the first read() (a camera's frames are now anyway)
        if not pace_fps:
            self._go.set()
        self.status = "ok" if first is not None else "connecting"
        self.reconnects = 0
        self._thread = threading.Thread(target=self._run, args=(first,), name="frame-reader", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return max(self._read - self._delivered, 0)

    @property
    def skipped(self) -> int:
        """Frames of a paced file lost to damage."""
        frames = self._frames
        return self._skipped_before + (frames.skipped if frames is not None else 0)

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    def _set_status(self, status: str) -> None:
        with self._cond:
            self.status = status
            self._cond.notify_all()

    def _run(self, cap: cv2.VideoCapture | None) -> None:
        self._go.wait()
        delay = BACKOFF_START_S
        index = 0
        started = time.monotonic()
        replaying = False  # a --loop file starting over is not a reconnection
        while not self._stop.is_set():
            if cap is None:
                try:
                    cap = self._opener()
                except cv2.error as exc:  # some backends raise instead of failing quietly
                    log.debug("open failed: %s", exc)
                    cap = None
                if cap is None or not cap.isOpened():
                    cap = None
                    self._set_status("reconnecting")
                    log.warning("%s: unavailable; retrying in %.1f s", self.name, delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, BACKOFF_MAX_S)
                    continue
                if replaying:
                    log.debug("%s: playing again from the start", self.name)
                elif self.status != "connecting":
                    self.reconnects += 1
                    log.warning("%s: reconnected", self.name)
                replaying = False
            delay = BACKOFF_START_S
            self._set_status("ok")
            file_start = time.monotonic()
            play_start = index  # a file's frame indices carry on over --loop plays
            if self._pace:
                if self._frames is not None:
                    self._skipped_before += self._frames.skipped
                self._frames = FileFrames(cap, self.name, self._pace, warn=self._frames is None)
            while not self._stop.is_set():
                if self._frames is not None:
                    got = self._frames.read()
                    if got is None:
                        break
                    file_index, image = got
                else:
                    try:
                        ok, image = cap.read()
                    except cv2.error:
                        ok, image = False, None
                    if not ok or image is None or image.size == 0:
                        break
                too_large = frame_too_large(image.shape[1], image.shape[0])
                if too_large:  # treated as a failed source: reopened with backoff
                    log.error("%s: %s; not used", self.name, too_large)
                    break
                if self._pace:
                    wait = file_start + file_index / self._pace - time.monotonic()
                    if wait > 0:
                        self._stop.wait(wait)
                    index = play_start + file_index
                    # source time carries on over --loop plays, as the index does: a time that went back
                    # to 0 at each play held every door decision (cooldowns, waits) after the first one
                    t = index / self._pace
                else:
                    t = time.monotonic() - started
                with self._cond:
                    self._frame = Frame(index, t, image)
                    self._read += 1
                    self._cond.notify_all()
                index += 1
            cap.release()
            cap = None
            if self._pace and not self._loop:  # a file played in real time ends
                self._set_status("ended")
                return
            if self._pace:  # --loop: play the file again, frame indices carry on
                replaying = True
                continue
            if not self._stop.is_set():
                self._set_status("reconnecting")
                log.warning("%s: stream lost; reconnecting", self.name)

    def read(self, timeout: float | None = 1.0) -> Frame | None:
        """The newest frame not yet returned; None on timeout or when a file has ended."""
        self._go.set()  # a paced file's clock starts now
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._frame
                if frame is not None and frame.index > self._returned:
                    self._returned = frame.index
                    self._delivered += 1
                    return frame
                if self.status == "ended" or self._stop.is_set():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def close(self) -> None:
        self._stop.set()
        self._go.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)


def open_source(
    src: str | int,
    realtime: bool = False,
    width: int = 640,
    height: int = 480,
    fps: float = 30.0,
    loop: bool = False,
) -> FileSource | LatestFrameReader:
    """Open a camera index, stream URL or video file; SourceError (one line) if it cannot be opened."""
    src = parse_source(src)
    if is_live(src):
        first = _open_capture(src, width, height, fps)
        what = f"camera {src}" if isinstance(src, int) else redact_url(src)
        if not first.isOpened():
            first.release()
            raise SourceError(f"{what}: cannot open (is it connected, and not in use by another program?)")
        too_large = _declared_too_large(first)
        if too_large:
            first.release()
            raise SourceError(f"{what}: {too_large}")
        got = first.get(cv2.CAP_PROP_FPS)
        return LatestFrameReader(
            lambda: _open_capture(src, width, height, fps),
            what,
            first=first,
            fps=got if 1 <= got <= 240 else fps,
        )
    source = FileSource(src, loop=loop)
    if not realtime:
        return source
    source.close()
    return LatestFrameReader(lambda: cv2.VideoCapture(src), src, pace_fps=source.fps, loop=loop)
