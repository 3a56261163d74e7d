"""Stop requests: Ctrl-C and SIGTERM end a live run in order, never mid-write.

The signal handler only sets a flag that the frame loop reads once per frame
(a live source yields at least every 0.5 s). Raising KeyboardInterrupt from the
handler instead would land wherever the main thread happens to be, inside a
library or a half-done write, and an exception swallowed there leaves the run
going. A second signal forces KeyboardInterrupt; and if shutdown itself is stuck
for FORCE_EXIT_SECONDS the process exits anyway, since a door unit that cannot
be stopped is worse than one that skips the rest of its cleanup (every file it
writes is already written atomically or line by line).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType, TracebackType

log = logging.getLogger(__name__)

FORCE_EXIT_SECONDS = 20.0
HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Context manager: while inside, SIGINT/SIGTERM set `requested` instead of raising."""

    def __init__(self, force_exit_seconds: float = FORCE_EXIT_SECONDS) -> None:
        self.force_exit_seconds = force_exit_seconds
        self.signum: int | None = None
        self._event = threading.Event()
        self._finished = threading.Event()
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Until a stop is requested (True) or `timeout` seconds pass (False)."""
        return self._event.wait(timeout)

    @property
    def exit_code(self) -> int:
        """130 for Ctrl-C (the shell convention); 0 for SIGTERM, a service stopped as asked."""
        return 130 if self.signum == signal.SIGINT else 0

    def request(self, signum: int = signal.SIGINT) -> None:
        if self._event.is_set():
            return
        self.signum = signum
        self._event.set()
        if self.force_exit_seconds > 0:
            threading.Thread(target=self._force_exit, name="stop-deadline", daemon=True).start()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt  # asked twice: stop now
        self.request(signum)

    def _force_exit(self) -> None:
        if self._finished.wait(self.force_exit_seconds):
            return
        log.error("shutdown did not finish within %.0f s; exiting without the rest of it", self.force_exit_seconds)
        logging.shutdown()
        os._exit(self.exit_code)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._finished.set()  # cleanup is done: no deadline any more
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
