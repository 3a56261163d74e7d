"""The seams between stages, as protocols: what each stage needs of the one before it.

An engine (dlib's `FaceEngine`, `FaceNetEngine`, `FusionEngine`) is whatever
provides these; the live loop, the encoder process and the batch encoder ask
for no more. A new model need not subclass FaceEngine: it needs a spec, chips
and encodings (and, for the live loop's blink check, 68 landmarks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .faces import Box
from .models import ModelSpec


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
