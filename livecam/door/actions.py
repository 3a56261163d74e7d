"""Door actions: commands and webhooks, run off the video loop.

A door's actions must outlive anything an action can do: every failure of one
action (a server answering garbage, a command that cannot start, one that
hangs or leaves children behind) is logged and the next action runs; a worker
thread that dies anyway is restarted by the next submission. Webhook attempts
have one deadline each (connect, send and the whole answer), redirects are
failures (a POST is never replayed elsewhere as a GET), and URLs are logged
without their secrets. Shutdown waits a bounded time and names what it could
not deliver.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import queue
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from ..redact import redact_url
from .events import EventHandler

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 10.0  # seconds a command may run; then its whole process group is killed
SHUTDOWN_GRACE = 3.0  # seconds close() gives queued actions before naming the rest as not delivered
MAX_BACKOFF = 5.0  # seconds between webhook attempts at most


class ActionFailed(Exception):
    """One attempt of one action failed; str() is one line."""


@dataclass(frozen=True)
class Action:
    command: tuple[str, ...] = ()
    webhook: str = ""


def post_json(url: str, body: bytes, deadline_s: float) -> None:
    """POST `body` to `url`; raises ActionFailed unless the answer is 2xx within `deadline_s` in all."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    kwargs = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
    try:
        conn = connection_class(parts.hostname, parts.port, timeout=deadline_s, **kwargs)
    except (ValueError, http.client.HTTPException) as exc:
        raise ActionFailed(f"bad URL ({type(exc).__name__})") from None
    # A per-read timeout does not bound a server that drips its answer a byte at a time:
    # a timer shuts the socket down when the attempt's deadline passes.
    expired = threading.Event()

    def abort() -> None:
        expired.set()
        with contextlib.suppress(OSError, AttributeError):
            conn.sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline_s, abort)
    timer.daemon = True
    timer.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", target, body=body, headers={"Content-Type": "application/json"})
        status = conn.getresponse().status
        if expired.is_set():  # the socket was shut mid-answer: what was read may be anything
            raise TimeoutError
    except Exception as exc:  # noqa: BLE001 - any answer a server can give must end as one failed attempt
        if expired.is_set():
            raise ActionFailed(f"no complete answer within {deadline_s:.3g} s") from None
        raise ActionFailed(f"{type(exc).__name__}: {_one_line(exc)}") from None
    finally:
        timer.cancel()
        conn.close()
    if 300 <= status < 400:
        raise ActionFailed(f"HTTP {status} (a redirect: not followed)")
    if not 200 <= status < 300:
        raise ActionFailed(f"HTTP {status}")


def run_command(argv: tuple[str, ...], env: dict[str, str], timeout: float) -> None:
    """Run `argv` in its own session; raises ActionFailed on a non-zero exit, or kills its group on timeout.

    Its output is not captured (a child left in the background would hold a pipe
    open and the wait with it): stdout is discarded, stderr is livecam's.
    """
    try:
        proc = subprocess.Popen(
            list(argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
    except (OSError, ValueError) as exc:
        raise ActionFailed(f"cannot start: {_one_line(exc)}") from None
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise ActionFailed(f"still running after {timeout:.3g} s: killed it and its children") from None
    if code:
        raise ActionFailed(f"exited {code}")


def event_env(event) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LIVECAM_EVENT=event.kind,
        LIVECAM_NAME=event.name or "",
        LIVECAM_DISTANCE=f"{event.distance:.4f}" if np.isfinite(event.distance) else "",  # as the JSON's null
        LIVECAM_MARGIN=f"{event.margin:.4f}" if np.isfinite(event.margin) else "",
        LIVECAM_TRACK=str(event.track),
        LIVECAM_TIME=event.time,
        LIVECAM_SNAPSHOT=event.snapshot or "",
        LIVECAM_CAMERA=event.camera or "",
    )
    return env


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def _describe(event) -> str:
    return f"{event.kind} event{' for ' + event.name if event.name else ''} at {event.time}"


class ActionRunner(EventHandler):
    """Runs actions off the video loop; when they fall behind, new ones are dropped and counted."""

    def __init__(
        self,
        actions: dict,
        timeout: float = 3.0,
        retries: int = 2,
        capacity: int = 16,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.actions = actions
        self.timeout = timeout
        self.retries = retries
        self.command_timeout = command_timeout
        self.dropped = 0  # not queued: the queue was full
        self.done = 0  # taken from the queue and tried
        self.failed = 0  # tried, and some part of it failed
        self.undelivered = 0  # still waiting, or cut short, at shutdown
        self.restarts = 0  # worker threads that died and were replaced
        self._queue: queue.Queue = queue.Queue(capacity)
        self._stopping = threading.Event()
        self._deadline = float("inf")  # monotonic time after which nothing more is tried (set by close)
        self._lock = threading.Lock()
        self._thread = self._start_worker()

    def _start_worker(self) -> threading.Thread:
        thread = threading.Thread(target=self._work, name="actions", daemon=True)
        thread.start()
        return thread

    def submit(self, event) -> None:
        action = self.actions.get(event.kind)
        if action is None or not (action.command or action.webhook):
            return
        self.supervise()
        try:
            self._queue.put_nowait((action, event))
        except queue.Full:
            self.dropped += 1
            log.warning(
                "actions are behind: dropped the action for the %s (%d dropped)", _describe(event), self.dropped
            )

    handle = submit  # an EventHandler (events.py)

    def housekeeping(self) -> None:
        self.supervise()

    def supervise(self) -> None:
        """Replace a worker thread that died (nothing in it should let that happen)."""
        with self._lock:
            if self._thread.is_alive() or self._stopping.is_set():
                return
            self.restarts += 1
            log.error("the actions worker died; started a new one (restart %d)", self.restarts)
            self._thread = self._start_worker()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            action, event = item
            try:
                if time.monotonic() >= self._deadline:
                    self._not_delivered(event, "shutting down")
                else:
                    self._perform(action, event)
            except Exception as exc:  # noqa: BLE001 - one action's failure must never stop the next
                self.failed += 1
                log.error("action for the %s failed: %s", _describe(event), _one_line(exc))
            finally:
                self.done += 1

    def _perform(self, action: Action, event) -> None:
        failed = False
        if action.command:
            try:
                run_command(action.command, event_env(event), self._time_left(self.command_timeout))
            except ActionFailed as exc:
                failed = True
                log.warning("action %s for the %s: %s", action.command[0], _describe(event), exc)
        if action.webhook:
            failed = not self._post(action.webhook, event) or failed
        self.failed += failed

    def _post(self, url: str, event) -> bool:
        body = event.to_json().encode("utf-8")
        shown = redact_url(url, hide_path=True)
        reason = ""
        for attempt in range(self.retries + 1):
            if time.monotonic() >= self._deadline:
                self._not_delivered(event, f"webhook {shown}: shutting down{' after ' + reason if reason else ''}")
                return False
            try:
                post_json(url, body, self._time_left(self.timeout))
                return True
            except ActionFailed as exc:
                reason = str(exc)
            if attempt < self.retries:
                self._stopping.wait(min(0.5 * 2**attempt, MAX_BACKOFF))  # cut short by close()
        log.warning("webhook %s failed after %d attempts: %s", shown, self.retries + 1, reason)
        return False

    def _time_left(self, limit: float) -> float:
        return max(0.05, min(limit, self._deadline - time.monotonic()))

    def _not_delivered(self, event, why: str) -> None:
        self.undelivered += 1
        log.warning("not delivered: the action for the %s (%s)", _describe(event), why)

    def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Give queued actions `grace` seconds in all, then log each one that was not delivered."""
        self._deadline = time.monotonic() + grace
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=grace)
        self._thread.join(timeout=max(0.0, self._deadline - time.monotonic()) + 0.5)
        while True:  # a worker stuck past the deadline leaves the rest here
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._not_delivered(item[1], "shutting down")
        if self._thread.is_alive():
            log.warning("an action was still running at shutdown")
