"""Hot reload of known_faces/ (reload.py)."""

from __future__ import annotations

import shutil
import time

from conftest import photo

from livecam.engine.batch import EngineSettings
from livecam.live.reload import GalleryWatcher, gallery_listing


def _first_reload(watcher, seconds: float):
    """The watcher's first new matcher within `seconds` (None if none came); the watcher is closed."""
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            matcher = watcher.take()
            if matcher is not None:
                return matcher
            time.sleep(0.05)
        return watcher.take()
    finally:
        watcher.close()


def test_a_photo_added_while_the_running_gallery_loaded_is_not_missed(make_gallery, data):
    """The watcher used to take its first listing after the models and gallery had loaded: a photo added
    during those seconds was in that listing, never counted as a change, and never reached the loop."""
    root = make_gallery({"Tony_Blair": [1]})
    baseline = gallery_listing(root)  # taken before the running gallery was loaded
    shutil.copy(photo(data, "Tony_Blair", 2), root / "Tony_Blair" / "2.jpg")  # arrives while it loads
    watcher = GalleryWatcher(root, EngineSettings(), lambda g: g.matcher(0.45, 0.04), interval=0.05, baseline=baseline)
    matcher = _first_reload(watcher, 60)
    assert matcher is not None and watcher.reloads == 1


def test_a_stranger_swapped_for_the_person_with_size_and_mtime_forged_reaches_the_running_loop(tmp_path, data, engine):
    """The attack of test_gallery's test on a running door: the watcher listed (path, size, mtime), saw
    nothing when the photos were swapped, and the loop went on naming the stranger Bill_Clinton."""
    from test_gallery import PERSON, STRANGER, _forge_all, _name_of, _plant_stranger

    from livecam.engine.gallery import load_gallery

    root, folder = _plant_stranger(tmp_path, data)
    probe = data / "identities" / STRANGER / "3.jpg"
    baseline = gallery_listing(root)
    running = load_gallery(root, EngineSettings(), 1, engine)  # what the door started with
    assert _name_of(running.matcher(0.45, 0.04), engine, probe) == PERSON
    watcher = GalleryWatcher(root, EngineSettings(), lambda g: g.matcher(0.45, 0.04), interval=0.05, baseline=baseline)
    _forge_all(folder, data)
    matcher = _first_reload(watcher, 30)
    assert matcher is not None, "the swap was never seen"
    assert _name_of(matcher, engine, probe) is None
