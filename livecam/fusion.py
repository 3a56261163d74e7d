"""dlib and FaceNet together: one embedder whose distance weighs each model by its own threshold.

Each face is encoded by both models; the embedding is the two vectors side by
side, each divided by its model's identification threshold. The Euclidean
distance between two such embeddings is then sqrt((d_dlib / 0.45)^2 +
(d_facenet / 0.85)^2): a face at both thresholds is at sqrt(2). The matcher,
the policy and the cache need nothing new: fusion is one more model.

A chip carries both models' chips in one flat array (the encoder process's
wire protocol moves arrays): dlib's aligned 150x150 chip, then FaceNet's
packed region (facenet.py), which MTCNN frames in the encoder process.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .facenet import FaceNetEmbedder, RegionAligner
from .faces import CHIP_SIZE, Box, DlibAligner, DlibEmbedder, DlibModels
from .models import DLIB, FACENET, FUSION

_DLIB_CHIP = (CHIP_SIZE, CHIP_SIZE, 3)
_SPLIT = int(np.prod(_DLIB_CHIP))


class FusedAligner:
    """dlib's aligned chip, then FaceNet's packed region, in one flat array per face."""

    def __init__(self, models: DlibModels, models_dir: Path | None = None) -> None:
        self.dlib = DlibAligner(models, models_dir)
        self.facenet = RegionAligner(models, models_dir)

    def load(self) -> None:
        self.dlib.load()
        self.facenet.load()

    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        pairs = zip(self.dlib.chips(rgb, boxes), self.facenet.chips(rgb, boxes), strict=True)
        return [np.concatenate([a.reshape(-1), b.reshape(-1)]) for a, b in pairs]


class FusedEmbedder:
    """Both embeddings of a face side by side, each in units of its own model's threshold."""

    spec = FUSION

    def __init__(self, models_dir: Path | None, models: DlibModels, flip_average: bool = True, jitters: int = 0):
        self.dlib = DlibEmbedder(models_dir, models, flip_average, jitters)
        self.facenet = FaceNetEmbedder(models_dir, models, flip_average, jitters)

    @property
    def flip_average(self) -> bool:
        return self.dlib.flip_average

    def load(self) -> None:
        self.dlib.load()
        self.facenet.load()

    def with_flip(self, flip_average: bool) -> FusedEmbedder:
        twin = copy.copy(self)
        twin.dlib, twin.facenet = self.dlib.with_flip(flip_average), self.facenet.with_flip(flip_average)
        return twin

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.spec.dimension), np.float32)
        dlib_part = self.dlib.encode_chips([np.ascontiguousarray(c[:_SPLIT].reshape(_DLIB_CHIP)) for c in chips])
        facenet_part = self.facenet.encode_chips([c[_SPLIT:] for c in chips])
        return np.hstack([dlib_part / DLIB.threshold, facenet_part / FACENET.threshold]).astype(np.float32)
