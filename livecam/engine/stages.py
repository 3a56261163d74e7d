"""The seams between stages, as protocols.

The stages a model is made of (models.py names them; faces.FaceEngine puts
one model's together): a **Detector** (an image in, face boxes out), an
**Aligner** (faces to the network's input, one chip per box) and a
**ChipEmbedder** (chips to vectors, described by its spec). dlib's HOG and CNN
detectors, aligner and ResNet are in faces.py; FaceNet's MTCNN detector,
region aligner and embedder in facenet.py.

Below them, what each consumer asks of an engine, and no more: the live
loop's naming policy (LiveEngine), the batch encoder (PhotoEngine), live
detection (FrameDetector).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..models import ModelSpec
from .faces import Box


class Detector(Protocol):
    """models.DETECTORS: built with dlib's models (faces.DlibModels), which it may ignore."""

    upsamples: bool  # whether a photo with no face found is worth trying again upsampled

    def load(self) -> None: ...

    def detect(self, image: np.ndarray, upsample: int) -> list[Box]: ...


class Aligner(Protocol):
    """ModelSpec.aligner: the crops its embedder wants, one per box (any flat or shaped uint8 array)."""

    def load(self) -> None: ...

    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]: ...


class ChipEmbedder(Protocol):
    """ModelSpec.embedder: its aligner's chips in, (n, spec.dimension) float32 out."""

    spec: ModelSpec
    flip_average: bool

    def load(self) -> None: ...

    def with_flip(self, flip_average: bool) -> ChipEmbedder: ...

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray: ...


class Embedder(Protocol):
    """Faces in, embeddings out: the crops its network wants, then one vector per crop."""

    spec: ModelSpec

    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]: ...

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray: ...  # (n, spec.dimension) float32


class StillDetector(Protocol):
    """Faces in a photo, largest first, with whatever fallbacks the detector allows."""

    def detect_still(
        self, rgb: np.ndarray, upsample: int = 1, max_upsample: int = 2, cnn_fallback: bool = True
    ) -> list[Box]: ...


class FrameDetector(Protocol):
    """Faces in one video frame (grayscale or RGB), at one scale: what the live loop's detector calls."""

    def detect(self, image: np.ndarray, upsample: int = 0, detector: str | None = None) -> list[Box]: ...


class EyeLandmarks(Protocol):
    """68 landmarks of a face, for the blink check."""

    def landmarks68(self, image: np.ndarray, box: Box) -> np.ndarray: ...


class LiveEngine(Embedder, EyeLandmarks, Protocol):
    """What the live loop's naming policy needs of an engine."""


class PhotoEngine(Embedder, StillDetector, Protocol):
    """What encoding photos needs of an engine (batch.py)."""
