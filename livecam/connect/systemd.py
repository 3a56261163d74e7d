"""Tell systemd that the door is up and still alive (sd_notify, without libsystemd).

Under `Type=notify` (deploy/livecam@.service), systemd passes a datagram
socket in $NOTIFY_SOCKET and, with `WatchdogSec=`, the watchdog interval in
$WATCHDOG_USEC. livecam sends READY=1 once the models and the gallery are
loaded, WATCHDOG=1 from the frame loop itself at half the interval (so a loop
that stalls, on a camera read or a stuck detector, stops the pings and systemd
restarts it), and STOPPING=1 on the way out. Outside systemd, every call is a
no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        # "@name" is a socket in the abstract namespace
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.interval: float | None = None
        usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.interval = int(usec) / 1e6 / 2  # sd_watchdog_enabled(3): ping at half the timeout
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._last_ping = 0.0
        self._failed = False

    @property
    def active(self) -> bool:
        return self._sock is not None

    def notify(self, *assignments: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(assignments).encode(), self.address)
        except OSError as exc:
            if not self._failed:  # once: a socket that went away must not flood the log
                self._failed = True
                log.warning("systemd notify socket %s: %s", self.address.replace("\0", "@"), exc.strerror or exc)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")
        self._last_ping = time.monotonic()

    def alive(self) -> None:
        """From the frame loop, every frame (and while a camera reconnects); sends at most every interval."""
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.interval:
            self._last_ping = now
            self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
