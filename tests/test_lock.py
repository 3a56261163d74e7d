"""What was tested is what gets installed: the environment is exactly requirements.txt (issue 17)."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        m = PIN.match(line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def installed() -> dict[str, str]:
    """Every distribution in this interpreter's own environment (the venv, not the system's site-packages)."""
    found = {}
    for dist in metadata.distributions(path=[p for p in sys.path if p.startswith(sys.prefix)]):
        found.setdefault(canonicalize_name(dist.metadata["Name"]), dist.version)
    return found


def test_every_pin_has_hashes():
    text = LOCK.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n# The following packages")[0])
    for block in blocks[1:]:
        assert "--hash=sha256:" in block, block.splitlines()[0]
    assert len(locked()) >= 20


def test_the_environment_is_the_lock():
    lock, have = locked(), installed()
    have.pop("livecam", None)
    differ = {n: (lock.get(n), have.get(n)) for n in sorted(lock.keys() | have.keys()) if lock.get(n) != have.get(n)}
    assert not differ, (
        "installed packages differ from requirements.txt (locked, installed): "
        f"{differ}; run `make setup`, or `make lock` for a deliberate upgrade"
    )


def test_the_lock_satisfies_pyproject():
    """Every dependency livecam declares (runtime, dev and bench) is locked at a version it accepts."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    lock = locked()
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is not in requirements.txt: run `make lock`"
        assert req.specifier.contains(lock[name], prereleases=True), f"{req.name}=={lock[name]} is not {req}"


def test_opencv_has_the_reader_facenet_needs():
    """opencv-python 5.1 dropped readNetFromTensorflow and FaceNet crashed on every fresh machine."""
    import cv2

    assert hasattr(cv2.dnn, "readNetFromTensorflow"), cv2.__version__
