"""The face engine: detectors, aligners and embedders, and dlib's implementations of them.

This is the only module that imports dlib (`DlibModels`). Everything it
returns is plain numpy or the dataclasses below, so dlib types never leak into
the rest of livecam. Models are loaded the first time they are needed, never
at import. A model is a spec (models.py) naming its aligner and embedder
classes; `FaceEngine` puts one model's stages together.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from ..models import DETECTORS, DLIB, ModelSpec, detector_class, import_stage, spec_of

log = logging.getLogger(__name__)

EMBEDDING_SIZE = 128
CHIP_SIZE = 150  # dlib's ResNet takes 150x150 aligned chips
CHIP_PADDING = 0.25  # dlib's default padding around the 5 landmarks

MODEL_FILES = {
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "mmod": "mmod_human_face_detector.dat",
}

# What detection on one photo may cost at most, whatever the photo declares: HOG ~0.15 s
# on 4 MP here; the CNN ~1.5 s and 600 MB of memory on 0.4 MP (1.2 GB on 1 MP: too much
# for a small board). Faces in a photo that big are big: nothing is lost by scaling it.
STILL_DETECT_PIXELS = 4_000_000
CNN_MAX_PIXELS = 400_000


class ModelError(RuntimeError):
    """A model cannot be used: its weights are missing or cannot be loaded. str() is one line."""


class ModelNotFoundError(ModelError):
    """A model weights file is missing; the message says which and how to get it."""


class ModelLoadError(ModelError):
    """A model's weights are there but cannot be loaded (a damaged file, a runtime without its reader)."""


def load_weights(what: str, path: Path, loader):
    """`loader(str(path))`, with any failure turned into one ModelLoadError line naming the file."""
    try:
        return loader(str(path))
    except Exception as exc:  # noqa: BLE001 - dlib and OpenCV raise their own types, with long messages
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelLoadError(f"{path}: cannot load the {what} ({reason})") from None


@dataclass(frozen=True, slots=True)
class Box:
    """A face rectangle in image pixels, in face_recognition's order."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)

    def scaled(self, factor: float) -> Box:
        return Box(
            round(self.top * factor),
            round(self.right * factor),
            round(self.bottom * factor),
            round(self.left * factor),
        )

    def clipped(self, height: int, width: int) -> Box:
        return Box(max(self.top, 0), min(self.right, width), min(self.bottom, height), max(self.left, 0))

    def as_list(self) -> list[int]:
        return [self.top, self.right, self.bottom, self.left]


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face and its embedding (float32, shape (128,))."""

    box: Box
    encoding: np.ndarray


def find_model(key: str, models_dir: Path | None = None) -> Path:
    """Path of a model file: `models_dir` overrides the face-recognition-models package."""
    filename = MODEL_FILES[key]
    if models_dir is not None:
        candidate = Path(models_dir) / filename
        if candidate.is_file():
            return candidate
    package_dir = _package_dir("face_recognition_models")
    if package_dir is not None:
        candidate = package_dir / "models" / filename
        if candidate.is_file():
            return candidate
    where = f"{models_dir}/" if models_dir is not None else "models/"
    raise ModelNotFoundError(
        f"model file {filename} not found in {where} or the face-recognition-models package; "
        f"install it with: pip install face-recognition-models==0.3.0"
    )


def _package_dir(name: str) -> Path | None:
    """Where an installed package's files are, without running its __init__ (face_recognition_models'
    imports pkg_resources, which setuptools 81 removed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def dlib_build_info() -> dict[str, object]:
    """What the imported dlib was built with (BLAS, AVX, version)."""
    dlib = DlibModels().dlib

    return {
        "version": dlib.__version__,
        "blas": bool(getattr(dlib, "DLIB_USE_BLAS", False)),
        "lapack": bool(getattr(dlib, "DLIB_USE_LAPACK", False)),
        "avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        "cuda": bool(getattr(dlib, "DLIB_USE_CUDA", False)),
        # livecam's build (scripts/dlib-release-gil.patch): encoding lets other threads run
        "gil_released": bool(getattr(dlib, "LIVECAM_DESCRIPTOR_RELEASES_GIL", False)),
        "path": getattr(dlib, "__file__", "?"),
    }


# -- dlib's models: the one place livecam imports dlib ----------------------------------------
class DlibModels:
    """dlib's model files, each loaded the first time a stage needs it (never at import)."""

    def __init__(self, models_dir: Path | None = None) -> None:
        self.models_dir = models_dir

    @cached_property
    def dlib(self):
        import dlib

        return dlib

    @cached_property
    def hog(self):
        return self.dlib.get_frontal_face_detector()

    @cached_property
    def cnn(self):
        path = find_model("mmod", self.models_dir)
        return load_weights("CNN face detector", path, self.dlib.cnn_face_detection_model_v1)

    @cached_property
    def shape5(self):
        path = find_model("shape5", self.models_dir)
        return load_weights("5-point landmark model", path, self.dlib.shape_predictor)

    @cached_property
    def shape68(self):
        path = find_model("shape68", self.models_dir)
        return load_weights("68-point landmark model", path, self.dlib.shape_predictor)

    @cached_property
    def resnet(self):
        path = find_model("resnet", self.models_dir)
        return load_weights("face network", path, self.dlib.face_recognition_model_v1)

    def rectangle(self, box: Box):
        return self.dlib.rectangle(box.left, box.top, box.right, box.bottom)

    def shapes5(self, rgb: np.ndarray, boxes: Sequence[Box]):
        shapes = self.dlib.full_object_detections()
        for b in boxes:
            shapes.append(self.shape5(rgb, self.rectangle(b)))
        return shapes


def _rect_to_box(rect, height: int, width: int) -> Box:
    return Box(rect.top(), rect.right(), rect.bottom(), rect.left()).clipped(height, width)


# -- detectors (models.DETECTORS): an image in, face boxes out -------------------------------
class HogDetector:
    """dlib's frontal HOG detector (grayscale or RGB): fast, frontal faces from ~80 px (40 per upsampling)."""

    upsamples = True  # a still photo with no face found is tried again upsampled

    def __init__(self, models: DlibModels) -> None:
        self.models = models

    def load(self) -> None:
        _ = self.models.hog

    def detect(self, image: np.ndarray, upsample: int) -> list[Box]:
        height, width = image.shape[:2]
        return [_rect_to_box(r, height, width) for r in self.models.hog(image, upsample)]


class CnnDetector(HogDetector):
    """dlib's MMOD CNN detector: turned faces too, from ~40 px; ~10x slower than HOG."""

    def load(self) -> None:
        _ = self.models.cnn

    def detect(self, image: np.ndarray, upsample: int) -> list[Box]:
        height, width = image.shape[:2]
        return [_rect_to_box(d.rect, height, width) for d in self.models.cnn(image, upsample)]


# -- dlib's aligner and embedder (the "dlib" model) --------------------------------------------
class DlibAligner:
    """Faces to the network's input: 150x150 RGB chips aligned on dlib's 5 landmarks."""

    def __init__(self, models: DlibModels, models_dir: Path | None = None) -> None:
        self.models = models

    def load(self) -> None:
        _ = self.models.shape5

    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        if not boxes:
            return []
        shapes = self.models.shapes5(rgb, boxes)
        return list(self.models.dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING))


class DlibEmbedder:
    """dlib's ResNet: aligned chips in, 128 floats each out.

    `flip_average` encodes each chip and its mirror image and averages the two
    embeddings: one more pass through the network, a lower error rate on LFW
    (docs/engine.md).
    """

    spec: ModelSpec = DLIB

    def __init__(
        self, models_dir: Path | None, models: DlibModels, flip_average: bool = True, jitters: int = 0
    ) -> None:
        self.models = models
        self.flip_average = flip_average
        self.jitters = jitters
        # dlib's models are not documented as thread-safe: one network call at a time
        self._lock = threading.Lock()

    def load(self) -> None:
        _ = self.models.resnet

    def with_flip(self, flip_average: bool) -> DlibEmbedder:
        twin = copy.copy(self)
        twin.flip_average = flip_average
        return twin

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (n, 128) float32 for aligned chips, batched in one network call."""
        if not chips:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        batch = list(chips)
        if self.flip_average:
            batch += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
        with self._lock:
            vectors = self.models.resnet.compute_face_descriptor(batch, self.jitters)
        out = np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)
        if self.flip_average:
            n = len(chips)
            out = (out[:n] + out[n:]) / 2
        return out


# -- the engine: the stages of one model put together ----------------------------------------
class FaceEngine:
    """Detection, alignment and embedding of one model (models.MODELS), built from its stages.

    The model's spec names its aligner and embedder (and, for photos, its own
    detector); detectors are models.DETECTORS, by name. dlib's landmarks serve
    every model (enrollment's pose check, the blink check). Everything returned
    is plain numpy or the dataclasses above: no dlib type leaves this module.
    """

    def __init__(
        self,
        models_dir: Path | None = None,
        detector: str = "hog",
        flip_average: bool = True,
        jitters: int = 0,
        model: str = DLIB.name,
    ) -> None:
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        self.spec: ModelSpec = spec_of(model)
        self.models_dir = Path(models_dir) if models_dir else None
        self.detector = detector
        self.dlib = DlibModels(self.models_dir)
        self.aligner = import_stage(self.spec.aligner)(self.dlib, self.models_dir)
        self.embedder = import_stage(self.spec.embedder)(self.models_dir, self.dlib, flip_average, jitters)
        self._detectors: dict[str, object] = {}

    @property
    def flip_average(self) -> bool:
        return self.embedder.flip_average

    def with_flip(self, flip_average: bool) -> FaceEngine:
        """The same engine (models shared, not reloaded) with mirror averaging on or off."""
        if flip_average == self.flip_average:
            return self
        twin = copy.copy(self)
        twin.embedder = self.embedder.with_flip(flip_average)
        return twin

    def load(self) -> FaceEngine:
        """Build every model the configured pipeline needs now (e.g. before a live loop)."""
        self._detector(self.detector).load()
        if self.spec.still_detector:
            self._detector(self.spec.still_detector).load()
        self.aligner.load()
        self.embedder.load()
        _ = self.dlib.shape5  # enrollment's pose check
        return self

    def _detector(self, name: str):
        if name not in self._detectors:
            self._detectors[name] = detector_class(name)(self.dlib)
        return self._detectors[name]

    # -- detection --------------------------------------------------------------------
    def detect(self, rgb: np.ndarray, upsample: int = 0, detector: str | None = None) -> list[Box]:
        """Face boxes in `rgb` (HxWx3 uint8, or grayscale for HOG), largest first."""
        boxes = self._detector(detector or self.detector).detect(rgb, upsample)
        boxes = [b for b in boxes if b.width > 0 and b.height > 0]
        return sorted(boxes, key=lambda b: b.area, reverse=True)

    def detect_still(
        self, rgb: np.ndarray, upsample: int = 1, max_upsample: int = 2, cnn_fallback: bool = True
    ) -> list[Box]:
        """Detection for a photo: when nothing is found, upsample more, then try the CNN.

        Bounded whatever the photo: HOG sees at most STILL_DETECT_PIXELS per pass
        (a bigger photo is scaled down, and upsampling stops at the budget: a
        blank 2000x2000 photo cost 27 s and 4.4 GB without it), the CNN at most
        CNN_MAX_PIXELS. A model with its own detector for photos (FaceNet:
        MTCNN, which it was trained on) runs that once.
        """
        height, width = rgb.shape[:2]
        image, scale = _within(rgb, STILL_DETECT_PIXELS)
        if self.spec.still_detector:
            boxes = self.detect(image, 0, detector=self.spec.still_detector)
            return [b.scaled(1 / scale).clipped(height, width) for b in boxes] if scale != 1.0 else boxes
        pixels = image.shape[0] * image.shape[1]
        boxes: list[Box] = []
        first = upsample
        if not self._detector(self.detector).upsamples:
            max_upsample = first  # a detector with no upsampling: once is enough
        while first > 0 and pixels * 4**first > STILL_DETECT_PIXELS:
            first -= 1  # a photo this big has faces big enough without upsampling
        for level in range(first, max(first, max_upsample) + 1):
            if level > first and pixels * 4**level > STILL_DETECT_PIXELS:
                break
            boxes = self.detect(image, level)
            if boxes:
                break
        if not boxes and cnn_fallback and self.detector == "hog":
            # HOG misses turned and tilted faces that the CNN finds; a still can afford
            # it. The CNN finds faces from about 40 px, 20 px with one upsampling.
            level = 1 if height * width * 4 <= CNN_MAX_PIXELS else 0
            image, scale = _within(rgb, CNN_MAX_PIXELS / 4**level)
            boxes = self.detect(image, level, detector="cnn")
        if scale != 1.0:
            boxes = [b.scaled(1 / scale).clipped(height, width) for b in boxes]
        return boxes

    # -- landmarks (dlib's, for every model) ---------------------------------------------------
    def landmarks(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """dlib's 5 landmarks of a face as (x, y) rows: right eye corners (0, 1),
        left eye corners (2, 3), bottom of the nose (4)."""
        shape = self.dlib.shapes5(rgb, [box])[0]
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def landmarks68(self, image: np.ndarray, box: Box) -> np.ndarray:
        """dlib's 68 landmarks (iBUG 300-W; that model is licensed for non-commercial use only)."""
        shape = self.dlib.shape68(image, self.dlib.rectangle(box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    # -- chips and embeddings -------------------------------------------------------------
    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        """The embedder's input for each face (dlib: an aligned 150x150 chip), one per box."""
        return self.aligner.chips(rgb, boxes)

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (n, spec.dimension) float32."""
        return self.embedder.encode_chips(chips)

    def encode(self, rgb: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """Embeddings for the faces at `boxes` in `rgb`."""
        return self.encode_chips(self.chips(rgb, boxes))

    def faces(self, rgb: np.ndarray, upsample: int = 1, max_upsample: int = 2, cnn_fallback: bool = True) -> list[Face]:
        """Every face in a still photo with its embedding, largest first."""
        boxes = self.detect_still(rgb, upsample, max_upsample, cnn_fallback)
        encodings = self.encode(rgb, boxes)
        return [Face(b, e) for b, e in zip(boxes, encodings, strict=True)]


def _within(image: np.ndarray, max_pixels: float) -> tuple[np.ndarray, float]:
    """`image` scaled down (if need be) to at most `max_pixels`, and the scale used."""
    height, width = image.shape[:2]
    if height * width <= max_pixels:
        return image, 1.0
    scale = (max_pixels / (height * width)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between embeddings (broadcasting over leading axes)."""
    return np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32), axis=-1)
