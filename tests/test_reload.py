"""Hot reload of known_faces/ (reload.py)."""

from __future__ import annotations

import shutil
import time

from conftest import photo

from livecam.batch import EngineSettings
from livecam.reload import GalleryWatcher, listing


def test_a_photo_added_while_the_running_gallery_loaded_is_not_missed(make_gallery, data):
    """The watcher used to take its first listing after the models and gallery had loaded: a photo added
    during those seconds was in that listing, never counted as a change, and never reached the loop."""
    root = make_gallery({"Tony_Blair": [1]})
    baseline = listing(root)  # taken before the running gallery was loaded
    shutil.copy(photo(data, "Tony_Blair", 2), root / "Tony_Blair" / "2.jpg")  # arrives while it loads
    watcher = GalleryWatcher(root, EngineSettings(), lambda g: g.matcher(0.45, 0.04), interval=0.05, baseline=baseline)
    try:
        deadline = time.monotonic() + 60
        matcher = None
        while matcher is None and time.monotonic() < deadline:
            matcher = watcher.take()
            time.sleep(0.05)
    finally:
        watcher.close()
    assert matcher is not None and watcher.reloads == 1
