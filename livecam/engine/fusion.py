"""Models together: one embedder whose distance weighs each model by its own threshold.

Each face is encoded by every model of the fused spec (`ModelSpec.parts`); the
embedding is their vectors side by side, each divided by its model's
identification threshold. The Euclidean distance between two such embeddings
is then sqrt((d_dlib / 0.45)^2 + (d_facenet / 0.85)^2 + ...): a face at every
part's threshold is at sqrt(number of parts). The matcher, the policy and the
cache need nothing new: a fusion is one more model.

A chip carries every part's chip in one flat uint8 array (the encoder
process's wire protocol moves arrays): a header of int32 (per part: its length
and its shape, up to 3 dimensions, 0 where there are fewer), then the parts'
bytes in order. FaceNet's part is a packed region (facenet.py), which MTCNN
frames in the encoder process.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..models import ALL_MODELS, DLIB_MOBILEFACENET, FUSION, ModelSpec, import_stage, spec_of
from .faces import Box, DlibModels

_FIELDS = 4  # per part in the header: length, then the shape padded with zeros to 3 dimensions


def pack(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Several chips (any shape, uint8) as one flat array."""
    header = []
    for chip in parts:
        shape = list(chip.shape) + [0] * (3 - chip.ndim)
        header += [chip.size, *shape]
    return np.concatenate([np.array(header, np.int32).view(np.uint8)] + [c.reshape(-1) for c in parts])


def unpack(packed: np.ndarray, count: int) -> list[np.ndarray]:
    """The `count` chips of `pack`, each with its shape."""
    head_bytes = count * _FIELDS * 4
    header = np.frombuffer(packed[:head_bytes].tobytes(), np.int32).reshape(count, _FIELDS)
    out, pos = [], head_bytes
    for size, *shape in header.tolist():
        chip = packed[pos : pos + size]
        out.append(np.ascontiguousarray(chip.reshape([d for d in shape if d] or [size])))
        pos += size
    return out


class _FusedAligner:
    """Every part's chip of a face, packed in one flat array."""

    spec: ModelSpec

    def __init__(self, models: DlibModels, models_dir: Path | None = None) -> None:
        self.parts = [import_stage(spec_of(p).aligner)(models, models_dir) for p in self.spec.parts]

    def load(self) -> None:
        for part in self.parts:
            part.load()

    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        per_part = [part.chips(rgb, boxes) for part in self.parts]
        return [pack(chips) for chips in zip(*per_part, strict=True)]


class _FusedEmbedder:
    """Every part's embedding of a face side by side, each in units of its own model's threshold."""

    spec: ModelSpec

    def __init__(self, models_dir: Path | None, models: DlibModels, flip_average: bool = True, jitters: int = 0):
        self.parts = [
            import_stage(spec_of(p).embedder)(models_dir, models, flip_average, jitters) for p in self.spec.parts
        ]

    @property
    def flip_average(self) -> bool:
        return self.parts[0].flip_average

    def load(self) -> None:
        for part in self.parts:
            part.load()

    def with_flip(self, flip_average: bool):
        twin = copy.copy(self)
        twin.parts = [part.with_flip(flip_average) for part in self.parts]
        return twin

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.spec.dimension), np.float32)
        split = [unpack(c, len(self.parts)) for c in chips]
        vectors = [part.encode_chips([s[i] for s in split]) / part.spec.threshold for i, part in enumerate(self.parts)]
        return np.hstack(vectors).astype(np.float32)


# The classes models.py names: one pair per fused spec
class FusedAligner(_FusedAligner):
    spec = FUSION


class FusedEmbedder(_FusedEmbedder):
    spec = FUSION


class DlibMobileFaceNetAligner(_FusedAligner):
    spec = DLIB_MOBILEFACENET


class DlibMobileFaceNetEmbedder(_FusedEmbedder):
    spec = DLIB_MOBILEFACENET


class AllModelsAligner(_FusedAligner):
    spec = ALL_MODELS


class AllModelsEmbedder(_FusedEmbedder):
    spec = ALL_MODELS
