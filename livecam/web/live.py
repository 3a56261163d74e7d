"""The running loop's last drawn frame and numbers, for the web page (`livecam run --web`).

The loop only hands over a reference to the frame it has drawn anyway (no copy, no JPEG): the server's
threads encode it when a browser asks, so a viewer never slows the loop down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

JPEG_QUALITY = 80
STREAM_FPS = 5.0  # frames a second sent to each viewer
MAX_VIEWERS = 3  # streams at once (each holds a server thread)


@dataclass(frozen=True)
class LiveStatus:
    camera: str
    frame: int
    fps: float
    faces: int
    named: int
    plan: str  # how the loop spends its CPU budget (budget.Plan.describe)
    encoder: str  # where encodings run
    broker: str  # the MQTT broker: "connected", "not connected (events wait in the outbox)", or "none configured"


class LiveFeed:
    """A frame sink (live.FrameSink) that keeps the newest drawn frame; thread-safe."""

    needs_drawing = True

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._index = -1
        self._shown: list[float] = []
        self._faces = self._named = 0
        self.plan: Callable[[], str] = lambda: ""  # the loop's budget plan, read when asked
        self.encoder: Callable[[], str] = lambda: "on the loop's thread"
        self.broker: Callable[[], str] = lambda: "none configured"
        self.viewers = 0
        self.closed = False

    # -- the loop's side ---------------------------------------------------------------------------
    def show(self, result, drawn: np.ndarray | None) -> None:
        now = time.monotonic()
        with self._cond:
            self._frame, self._index = drawn, result.frame.index
            self._faces = len(result.faces)
            self._named = sum(1 for f in result.faces if f.identity.is_person)
            self._shown.append(now)
            while self._shown and now - self._shown[0] > 2.0:
                self._shown.pop(0)
            self._cond.notify_all()

    def idle(self) -> None:
        return None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    # -- the server's side -------------------------------------------------------------------------
    def status(self) -> LiveStatus:
        with self._cond:
            span = self._shown[-1] - self._shown[0] if len(self._shown) > 1 else 0.0
            fps = (len(self._shown) - 1) / span if span > 0 else 0.0
            index, faces, named = self._index, self._faces, self._named
        return LiveStatus(self.camera, index, fps, faces, named, self.plan(), self.encoder(), self.broker())

    def jpeg(self, after: int = -1, timeout: float = 2.0) -> tuple[int, bytes] | None:
        """The newest frame newer than `after` as JPEG (waiting up to `timeout`); None if none came."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._index > after or self.closed, timeout) or self._frame is None:
                return None
            frame, index = self._frame, self._index
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return (index, data.tobytes()) if ok else None

    def open_stream(self):
        """A viewer's stream of JPEG parts, or None when MAX_VIEWERS are watching already."""
        with self._cond:
            if self.viewers >= MAX_VIEWERS:
                return None
            self.viewers += 1
        return self._stream()

    def _stream(self):
        """multipart/x-mixed-replace parts at STREAM_FPS until the run ends or the viewer goes."""
        last = -1
        try:
            while not self.closed:
                started = time.monotonic()
                got = self.jpeg(last)
                if got is None:
                    continue
                last, data = got
                yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data) + data + b"\r\n"
                time.sleep(max(0.0, 1 / STREAM_FPS - (time.monotonic() - started)))
        finally:
            with self._cond:
                self.viewers -= 1
