"""Frame sources: video files (every frame, in order) and live sources (newest frame only).

imutils' threaded VideoStream reads into a shared attribute with no lock and
never releases the camera; `LatestFrameReader` is that small piece done right:
a lock, a condition to wait on, reconnection with backoff, and release on close.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .redact import redact_url

log = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://")
OPEN_TIMEOUT_MS = 5000
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 8.0
# 8K: the largest camera.width x camera.height the config accepts. A bigger frame (a
# hostile file or stream) costs hundreds of MB to decode and seconds to look at.
MAX_FRAME_PIXELS = 7680 * 4320


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


class FileSource:
    """Every frame of a video file, in order, as fast as it decodes."""

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
        ok, first = self._cap.read()
        if not ok or first is None or first.size == 0:
            self._cap.release()
            raise SourceError(f"{path}: no video frames in it (not a video, or damaged)")
        too_large = frame_too_large(first.shape[1], first.shape[0])
        if too_large:
            self._cap.release()
            raise SourceError(f"{path}: {too_large}")
        self._first: np.ndarray | None = first
        self._index = 0
        self.status = "ok"
        self.dropped = 0

    def read(self, timeout: float | None = None) -> Frame | None:
        if self._first is not None:  # read when the file was checked
            image, self._first = self._first, None
            ok = True
        else:
            ok, image = self._cap.read()
        if (not ok or image is None) and self._loop and self._index:
            self._cap.release()
            self._cap = cv2.VideoCapture(self.name)
            ok, image = self._cap.read()
        if not ok or image is None:
            self.status = "ended"
            return None
        too_large = frame_too_large(image.shape[1], image.shape[0])
        if too_large:  # the size changed mid-file
            log.error("%s: frame %d: %s; stopping", self.name, self._index, too_large)
            self.status = "ended"
            return None
        frame = Frame(self._index, self._index / self.fps, image)
        self._index += 1
        return frame

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    def close(self) -> None:
        self._cap.release()


class LatestFrameReader:
    """Reads a source on its own thread and keeps only the newest frame.

    `pace_fps` plays a file in real time (frames that the consumer is too slow
    for are dropped, as with a camera); a file then ends. A live source that
    fails is reopened with exponential backoff, forever, until close().
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
        self.status = "ok" if first is not None else "connecting"
        self.reconnects = 0
        self._thread = threading.Thread(target=self._run, args=(first,), name="frame-reader", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return max(self._read - self._delivered, 0)

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    def _set_status(self, status: str) -> None:
        with self._cond:
            self.status = status
            self._cond.notify_all()

    def _run(self, cap: cv2.VideoCapture | None) -> None:
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
            file_index = 0
            while not self._stop.is_set():
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
                    t = file_index / self._pace
                else:
                    t = time.monotonic() - started
                file_index += 1
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
