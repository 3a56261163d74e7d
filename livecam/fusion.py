"""dlib and FaceNet together: one embedder whose distance weighs each model by its own threshold.

Each face is encoded by both models; the embedding is the two vectors side by
side, each divided by its model's identification threshold. The Euclidean
distance between two such embeddings is then sqrt((d_dlib / 0.45)^2 +
(d_facenet / 0.86)^2): a face at both thresholds is at sqrt(2). The matcher,
the policy and the cache need nothing new: fusion is one more model.

A chip carries both models' chips in one flat array (the encoder process's
wire protocol moves arrays): dlib's aligned 150x150 chip, then FaceNet's
packed region (facenet.py), which MTCNN frames in the encoder process.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np

from .facenet import FaceNetEngine
from .faces import CHIP_SIZE, Box, FaceEngine
from .models import DLIB, FACENET, FUSION

_DLIB_CHIP = (CHIP_SIZE, CHIP_SIZE, 3)
_SPLIT = int(np.prod(_DLIB_CHIP))


class FusionEngine(FaceEngine):
    """dlib's detection, landmarks and ResNet, plus FaceNet's embedding of the same face."""

    spec = FUSION

    @cached_property
    def _facenet_engine(self) -> FaceNetEngine:
        return FaceNetEngine(self.models_dir, self.detector, self.flip_average, self.jitters)

    def load(self) -> FusionEngine:
        super().load()
        self._facenet_engine.load()
        return self

    def with_flip(self, flip_average: bool) -> FusionEngine:
        twin = super().with_flip(flip_average)
        if twin is not self:
            twin.__dict__.pop("_facenet_engine", None)  # rebuilt with the twin's flip setting (weights reload once)
        return twin

    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        dlib_chips = super().chips(rgb, boxes)
        facenet_chips = self._facenet_engine.chips(rgb, boxes)
        return [np.concatenate([a.reshape(-1), b.reshape(-1)]) for a, b in zip(dlib_chips, facenet_chips, strict=True)]

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.spec.dimension), np.float32)
        dlib_part = super().encode_chips([np.ascontiguousarray(c[:_SPLIT].reshape(_DLIB_CHIP)) for c in chips])
        facenet_part = self._facenet_engine.encode_chips([c[_SPLIT:] for c in chips])
        return np.hstack([dlib_part / DLIB.threshold, facenet_part / FACENET.threshold]).astype(np.float32)
