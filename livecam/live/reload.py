"""Hot reload: photos added to or removed from known_faces/ reach a running loop in ~2 s.

A thread polls the folder's listing (each photo's path and `Stamp`: size,
mtime, inode, ctime; cheap), and when it changes, loads the gallery through the
cache - so only new or changed photos are encoded - and hands a new Matcher to
the loop, which swaps it in between two frames.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ..engine import EngineSettings, FaceEngine, Gallery, Matcher, gallery_stats, load_gallery, scan_photos

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


def gallery_listing(root: Path) -> tuple:
    """What the watcher compares: the loader's own notion of a photo's version (Stamp), so that a photo
    swapped for another with its size and mtime forged is a change here as it is to the cache."""
    try:
        return tuple((p.relpath, p.stamp) for p in scan_photos(root))
    except OSError:
        return ()


class GalleryWatcher:
    def __init__(
        self,
        root: Path,
        settings: EngineSettings,
        make_matcher: Callable[[Gallery], Matcher],
        interval: float = POLL_SECONDS,
        baseline: tuple | None = None,
    ) -> None:
        self.root = Path(root)
        self.settings = settings
        self.make_matcher = make_matcher
        self.interval = interval
        self.reloads = 0
        # `baseline`: the listing taken before the running gallery was loaded. Taken here instead,
        # a photo added while the models and gallery loaded (seconds on a small board) was in it
        # already, so it never counted as a change and never reached the loop.
        self._seen = gallery_listing(self.root) if baseline is None else baseline
        self._engine: FaceEngine | None = None  # its own models, built on the first change
        self._ready: Matcher | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gallery-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = gallery_listing(self.root)
            if now == self._seen:
                continue
            self._seen = now
            try:
                if self._engine is None:
                    self._engine = self.settings.build()
                gallery = load_gallery(self.root, self.settings, 1, self._engine)
            except Exception as exc:  # a bad photo or a full disk must not stop the door
                log.warning("%s: gallery reload failed (%s); keeping the previous gallery", self.root, exc)
                continue
            log.info("gallery reloaded: %s (%d photos encoded)", gallery_stats(gallery), gallery.encoded_now)
            with self._lock:
                self._ready = self.make_matcher(gallery)
                self.reloads += 1

    def take(self) -> Matcher | None:
        """The new matcher if the gallery changed since the last call."""
        with self._lock:
            ready, self._ready = self._ready, None
        return ready

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
