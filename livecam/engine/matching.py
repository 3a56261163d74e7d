"""Matching embeddings against the gallery: one vectorized pass, a per-person decision.

Decision rule (documented thresholds, see docs/engine.md, "Choosing the threshold"):
a face is named P when the distance to P's nearest photo is at most
`threshold` AND the next-nearest *other* person is at least `margin` further
away. Anything else is unknown: a stranger who sits between two enrolled
people is not given either name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..models import DLIB

# dlib's ResNet was trained so that 0.6 separates people on LFW (99.38 %).
# A door must not name strangers, so livecam's default is stricter: on LFW
# identification (48 people enrolled, 16 strangers, 420 stranger photos) 0.45
# names no stranger and 0.50 names 5.7 % (docs/engine.md, "Choosing the threshold").
DEFAULT_THRESHOLD = DLIB.threshold
DEFAULT_MARGIN = DLIB.margin


@dataclass(frozen=True, slots=True)
class Match:
    """The decision for one face."""

    name: str | None  # None: unknown
    distance: float  # to the nearest person's nearest photo (inf for an empty gallery)
    margin: float  # second-nearest person's distance minus `distance` (inf if none)
    nearest: str | None  # the nearest person even when not accepted

    @property
    def known(self) -> bool:
        return self.name is not None


class Matcher:
    """Nearest-person search over a gallery of embeddings, built once per gallery."""

    def __init__(
        self,
        encodings: np.ndarray,
        labels: np.ndarray,
        names: list[str],
        threshold: float = DEFAULT_THRESHOLD,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        encodings = np.asarray(encodings, np.float32)
        self.dimension = encodings.shape[-1] if encodings.ndim == 2 else 128  # (0, d) for an empty gallery
        encodings = encodings.reshape(-1, self.dimension)
        labels = np.asarray(labels, np.int64).reshape(-1)
        if len(encodings) != len(labels):
            raise ValueError("encodings and labels differ in length")
        order = np.argsort(labels, kind="stable")
        gallery = encodings[order]
        self._sq_norms = np.einsum("ij,ij->i", gallery, gallery)
        # Stored as -2 * G^T, (d, N): the product below then reads the gallery
        # once in the layout BLAS streams fastest (matching is memory-bound:
        # 100k faces are 51 MB) and needs no extra pass to scale it.
        self._neg2_gallery_t = np.ascontiguousarray(-2.0 * gallery.T)
        sorted_labels = labels[order]
        # Start of each person's run of rows: np.minimum.reduceat takes the
        # per-person minimum over all of their photos in one call.
        present, self._starts = np.unique(sorted_labels, return_index=True)
        self._names = [names[i] for i in present]
        self.threshold = threshold
        self.margin = margin

    @property
    def names(self) -> list[str]:
        """The people, in the column order of person_distances()."""
        return list(self._names)

    @property
    def people(self) -> int:
        return len(self._names)

    def person_distances(self, queries: np.ndarray) -> np.ndarray:
        """(k, people) distance from each query to each person's nearest photo."""
        q = np.asarray(queries, np.float32).reshape(-1, self.dimension)
        if not self._names:
            return np.zeros((len(q), 0), np.float32)
        # |g - q|^2 = |g|^2 + |q|^2 - 2 g.q : one matrix product instead of a
        # (k, N, 128) difference array.
        sq = q @ self._neg2_gallery_t
        sq += self._sq_norms
        per_person = np.minimum.reduceat(sq, self._starts, axis=1)
        per_person += np.einsum("ij,ij->i", q, q)[:, None]
        return np.sqrt(np.maximum(per_person, 0.0))

    def match(self, queries: np.ndarray) -> list[Match]:
        d = self.person_distances(queries)
        if d.shape[1] == 0:
            return [Match(None, math.inf, math.inf, None) for _ in range(d.shape[0])]
        if d.shape[1] == 1:
            best_idx = np.zeros(len(d), np.int64)
            best = d[:, 0]
            second = np.full(len(d), np.inf, np.float32)
        else:
            two = np.argpartition(d, 1, axis=1)[:, :2]
            rows = np.arange(len(d))
            best_idx = two[:, 0]
            best = d[rows, best_idx]
            second = d[rows, two[:, 1]]
        out = []
        for i in range(len(d)):
            dist, gap = float(best[i]), float(second[i] - best[i])
            nearest = self._names[int(best_idx[i])]
            accepted = dist <= self.threshold and gap >= self.margin
            out.append(Match(nearest if accepted else None, dist, gap, nearest))
        return out

    def distance_to(self, query: np.ndarray, name: str) -> float:
        """Distance from one query to `name`'s nearest photo (inf when `name` is not in the gallery)."""
        try:
            column = self._names.index(name)
        except ValueError:
            return math.inf
        return float(self.person_distances(query)[0, column])

    def match_one(self, query: np.ndarray) -> Match:
        return self.match(np.asarray(query).reshape(1, -1))[0]
