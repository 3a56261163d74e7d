from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# livecam's state (the key that seals gallery caches) of the tests, not of the user running them;
# subprocesses inherit it
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="livecam-test-state-")


# A few real photos and one clip, in the large set's layout under the same names (tests/data/README.md):
# what a plain clone tests with.
FIXTURES = REPO / "tests" / "data" / "faces"


def data_dir() -> Path:
    """The large set of real photos and clips (../shared/data/faces, or LIVECAM_TEST_DATA)."""
    return Path(os.environ.get("LIVECAM_TEST_DATA", REPO / ".." / "shared" / "data" / "faces")).resolve()


@pytest.fixture(scope="session")
def data() -> Path:
    """The small set shipped in tests/data/faces: always there."""
    return FIXTURES


@pytest.fixture(scope="session")
def big_data() -> Path:
    """The large set, for tests that need more people or longer clips; skipped where it is absent
    (.ci/run refuses to run without it, so CI never skips these)."""
    d = data_dir()
    if not (d / "identities").is_dir():
        pytest.skip(f"large face data not found at {d} (set LIVECAM_TEST_DATA)")
    return d


@pytest.fixture(scope="session")
def engine():
    from livecam.engine.faces import FaceEngine

    return FaceEngine().load()


def photo(data: Path, person: str, n: int) -> Path:
    return data / "identities" / person / f"{n}.jpg"


@pytest.fixture
def make_gallery(tmp_path, data):
    """known_faces/<Name>/ with copies of real LFW photos: {name: [photo numbers]}."""

    def make(people: dict[str, list[int]], root: Path | None = None) -> Path:
        root = root or tmp_path / "known_faces"
        for name, numbers in people.items():
            (root / name).mkdir(parents=True, exist_ok=True)
            for n in numbers:
                shutil.copy(photo(data, name, n), root / name / f"{n}.jpg")
        return root

    return make


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path, monkeypatch):
    """Each test runs in its own folder: `livecam run` writes events.jsonl and unknown/ beside the config."""
    monkeypatch.chdir(tmp_path)


class Clock:
    """A scripted clock (time.monotonic's stand-in): tests set `now`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto on a free port, for this test only (tests/broker.py)."""
    from broker import Broker  # the helper module, beside this file

    folder = tmp_path / "broker"
    folder.mkdir()
    b = Broker(folder).start()
    yield b
    b.stop()


def read_frames(path: Path, n: int = 10_000) -> list:
    """The first `n` frames of a video file (BGR)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out
