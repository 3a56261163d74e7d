"""The encoder process: the network in a process of its own, and its pickle-free wire protocol.

dlib's encoding holds the GIL (~12 ms a face; less with the project's patch,
but FaceNet through OpenCV DNN and older dlib builds hold it): on a thread it
would still stall the frame loop. The live loop hands chips to this process
and takes encodings back a frame or more later (`recognizer.Recognizer`).
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time

import numpy as np

# EncoderError and the pipe's wire format live in batch.py: the photo encoding pool uses them too
from ..engine import PEER_GONE, EncoderError, EngineSettings
from ..engine import recv_arrays as _recv_arrays
from ..engine import send_arrays as _send_arrays

log = logging.getLogger(__name__)


ENCODER_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds before restarting a dead encoder process, doubling
ENCODER_MAX_DEATHS = 5  # deaths in a row (no request finished between them): give up, exit non-zero


class _EncoderWorker:
    """One encoder process and its two pipes; started without waiting for its models."""

    def __init__(self, settings: EngineSettings) -> None:
        ctx = multiprocessing.get_context("spawn")
        child_requests, self.requests = ctx.Pipe(duplex=False)
        self.results, child_results = ctx.Pipe(duplex=False)
        # sends happen on a thread: a chip is bigger than a pipe's buffer, and the
        # frame loop must not wait for the worker to read it
        self.outbox: queue.SimpleQueue[tuple[list[int], list[np.ndarray]] | None] = queue.SimpleQueue()
        previous = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            args = (settings, child_requests, child_results)
            self.process = ctx.Process(target=_encoder_main, args=args, name="livecam-encoder", daemon=True)
            self.process.start()
        finally:
            if previous is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = previous
        child_requests.close()  # the child has its own copies now
        child_results.close()
        self.started = time.monotonic()
        self.ready = False
        self.sender = threading.Thread(target=self._send_loop, name="encoder-sender", daemon=True)

    def poll_ready(self, wait: float = 0.0) -> bool:
        """True once the worker has loaded its models; raises EOFError/OSError if it died meanwhile."""
        if not self.ready and self.results.poll(wait):
            _recv_arrays(self.results)  # the ready message
            self.ready = True
            self.sender.start()
        return self.ready

    def _send_loop(self) -> None:
        while True:
            item = self.outbox.get()
            try:
                if item is None:
                    _send_arrays(self.requests, [], [])  # the stop request
                    return
                _send_arrays(self.requests, *item)
            except OSError:  # the worker died; the supervisor notices
                return

    def close(self, timeout: float = 5.0) -> None:
        if self.ready:
            self.outbox.put(None)
        deadline = time.monotonic() + timeout
        while self.ready and self.process.is_alive() and time.monotonic() < deadline:
            try:  # drain, so the worker can write its last results and exit
                while self.results.poll():
                    _recv_arrays(self.results)
            except (EOFError, OSError):
                break
            self.process.join(timeout=0.05)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        if self.sender.is_alive():
            self.sender.join(timeout=1)
        self.requests.close()
        self.results.close()


class EncoderProcess:
    """The network in a process of its own, so that live display never waits for it.

    dlib's encoding holds the GIL (~12 ms a face): on a thread it would still
    stall the frame loop. At most `capacity` requests are in flight; when the
    worker is behind, new requests are dropped (and counted), never queued up.

    A worker that dies (killed, out of memory) is noticed on the next frame:
    what it had in flight is lost (`take_lost` names the tracks, so they ask
    again), an error is logged, and a new worker starts after a backoff without
    stalling the loop. After ENCODER_MAX_DEATHS deaths in a row, EncoderError:
    the run exits non-zero, for a service manager to restart.

    Chips and encodings cross as raw array bytes over two pipes, not through
    multiprocessing queues: nothing is pickled, and there are no named
    semaphores, whose cleanup at exit raced with the resource tracker and
    left "leaked semaphore" warnings after Ctrl-C now and then.
    """

    def __init__(self, settings: EngineSettings, capacity: int = 2, ready_timeout: float = 120.0) -> None:
        self.settings = settings
        self.capacity = capacity
        self.ready_timeout = ready_timeout
        self.dropped = 0
        self.restarts = 0
        self.encoded = 0  # faces encoded so far...
        self.cpu_ms = 0.0  # ...and the worker's CPU time for them (budget.Governor)
        self._deaths_in_a_row = 0
        self._in_flight: collections.deque[list[int]] = collections.deque()
        self._lost: list[int] = []
        self._restart_at = 0.0
        self._worker: _EncoderWorker | None = _EncoderWorker(settings)
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Block until the first worker has loaded its models. Until then every request would wait
        (seconds on a small board): the first faces of a run went unnamed, and requests
        made meanwhile were dropped, doubted tracks included."""
        worker = self._worker
        assert worker is not None
        deadline = time.monotonic() + timeout
        try:
            while not worker.poll_ready(0.1):
                if not worker.process.is_alive():
                    worker.process.join(timeout=5)
                    raise EOFError
                if time.monotonic() > deadline:
                    worker.close(timeout=0)
                    raise EncoderError(f"the encoder process did not load its models within {timeout:.0f} s")
        except (EOFError, OSError):  # the pipe closed: the worker died while loading
            worker.process.join(timeout=5)
            raise EncoderError(
                f"the encoder process exited during start-up (exit code {worker.process.exitcode})"
            ) from None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def submit(self, ids: list[int], chips: list[np.ndarray]) -> bool:
        worker = self._worker
        if worker is None or not worker.ready or len(self._in_flight) >= self.capacity:
            self.dropped += 1
            return False
        self._in_flight.append(ids)
        worker.outbox.put((ids, chips))
        return True

    def results(self) -> list[tuple[list[int], np.ndarray]]:
        """Encodings finished since the last call; notices a dead worker and restarts it."""
        out: list[tuple[list[int], np.ndarray]] = []
        worker = self._worker
        if worker is None:
            if time.monotonic() >= self._restart_at:
                self.restarts += 1
                log.warning("starting encoder process again (restart %d)", self.restarts)
                self._worker = _EncoderWorker(self.settings)
            return out
        try:
            if not worker.poll_ready():
                if not worker.process.is_alive():
                    raise EOFError
                if time.monotonic() - worker.started > self.ready_timeout:
                    self._died(f"it did not load its models within {self.ready_timeout:.0f} s")
                return out
            while worker.results.poll():
                ids, arrays = _recv_arrays(worker.results)
                out.append((ids, arrays[0]))
                self.encoded += len(ids)
                self.cpu_ms += float(arrays[1][0]) if len(arrays) > 1 else 0.0
                self._in_flight.popleft()
                self._deaths_in_a_row = 0
            if not worker.process.is_alive():
                raise EOFError
        except (EOFError, OSError):
            worker.process.join(timeout=1)
            self._died(f"exit code {worker.process.exitcode}")
        return out

    def _died(self, why: str) -> None:
        assert self._worker is not None
        self._worker.close(timeout=0)
        self._worker = None
        lost = [i for ids in self._in_flight for i in ids]
        self._lost.extend(lost)
        self._in_flight.clear()
        self._deaths_in_a_row += 1
        if self._deaths_in_a_row >= ENCODER_MAX_DEATHS:
            raise EncoderError(f"the encoder process died {self._deaths_in_a_row} times in a row ({why}); giving up")
        delay = ENCODER_BACKOFF[min(self._deaths_in_a_row, len(ENCODER_BACKOFF)) - 1]
        self._restart_at = time.monotonic() + delay
        log.error(
            "the encoder process died (%s): %d encoding requests lost; restarting it in %.0f s", why, len(lost), delay
        )

    def take_lost(self) -> list[int]:
        """Track ids whose requests died with a worker (they may ask again)."""
        lost, self._lost = self._lost, []
        return lost

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None


def _encoder_main(settings: EngineSettings, requests, results) -> None:
    # Ctrl-C reaches the whole process group: the parent shuts this worker down in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engine = settings.build().load()
    try:
        _send_arrays(results, [], [])  # ready: the parent starts its loop only now
        while True:
            ids, chips = _recv_arrays(requests)
            if not ids:
                return
            start = time.process_time()
            encodings = engine.encode_chips(chips)
            cpu_ms = np.array([(time.process_time() - start) * 1000.0])  # the loop's CPU budget counts it
            _send_arrays(results, ids, [encodings, cpu_ms])
    except PEER_GONE:  # the parent is gone (kill -9): end quietly, no BrokenPipe traceback
        return
