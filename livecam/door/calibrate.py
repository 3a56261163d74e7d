"""`livecam calibrate`: how far apart this gallery's people are, and which threshold fits it.

Genuine distances are between photos of the same person, impostor distances
between photos of different people. The suggested threshold is the distance
below which only the target share (false-accept rate) of impostor pairs fall.
The histogram is drawn with OpenCV, so no plotting library is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..engine import Gallery
from ..storage import atomic_write_bytes


@dataclass(frozen=True)
class Lookalike:
    a: str  # photo (relative path)
    b: str
    distance: float


@dataclass(frozen=True)
class Calibration:
    genuine: np.ndarray  # distances, same person
    impostor: np.ndarray  # distances, different people
    far: float
    threshold: float  # suggested
    tar: float  # share of genuine pairs accepted at the suggested threshold
    lookalikes: list[Lookalike]


def calibrate(gallery: Gallery, far: float = 0.001, closest: int = 5) -> Calibration:
    if len(gallery.names) < 2:
        raise ValueError("calibration needs at least two enrolled people")
    e = gallery.encodings.astype(np.float64)
    d = np.sqrt(np.maximum((e**2).sum(1)[:, None] + (e**2).sum(1)[None, :] - 2 * e @ e.T, 0))
    iu = np.triu_indices(len(e), 1)
    same = (gallery.labels[:, None] == gallery.labels[None, :])[iu]
    dist = d[iu]
    genuine, impostor = np.sort(dist[same]), np.sort(dist[~same])
    # the largest threshold that keeps the false accepts at or under the target share
    allowed = int(np.floor(far * len(impostor)))
    threshold = float(impostor[allowed] - 1e-6) if allowed < len(impostor) else float(impostor[-1])
    tar = float(np.searchsorted(genuine, threshold, side="right") / len(genuine)) if len(genuine) else float("nan")
    order = np.argsort(dist[~same])[:closest]
    ia, ib = iu[0][~same][order], iu[1][~same][order]
    looks = [Lookalike(gallery.photos[a], gallery.photos[b], float(d[a, b])) for a, b in zip(ia, ib, strict=True)]
    return Calibration(genuine, impostor, far, threshold, tar, looks)


def recommendation(cal: Calibration, current: float, model_threshold: float, few: bool) -> str:
    """The one line `livecam calibrate` and the web page give: the threshold to use, and why.

    A gallery of a few people cannot show the look-alikes a door meets (strangers are not in it): a looser
    threshold than the current one is suggested only when the gallery can show it and the model's own allows it."""
    gallery_only = f"{cal.threshold:.3f} (accepts {cal.tar:.1%} of same-person pairs)"
    if cal.threshold > current and (few or cal.threshold > model_threshold):
        return (
            f"matching.threshold: keep {current:.3f}. This gallery alone would allow {gallery_only} for FAR"
            f" {cal.far:g}, but a looser threshold also names more strangers, who are not in this gallery to be"
            ' counted; the default was chosen with strangers (docs/engine.md, "Choosing the threshold")'
        )
    return f"suggested matching.threshold for FAR {cal.far:g}: {gallery_only}; current: {current:.3f}"


def histogram_png(cal: Calibration, current: float, width: int = 900, height: int = 480) -> bytes:
    """A PNG a person can read: both distributions, the suggested and the current threshold."""
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 60, width - 20, 40, height - 50
    lo, hi = 0.0, max(1.0, float(cal.impostor.max(initial=0)), float(cal.genuine.max(initial=0)))
    bins = np.linspace(lo, hi, 61)
    g, _ = np.histogram(cal.genuine, bins)
    i, _ = np.histogram(cal.impostor, bins)
    # each distribution scaled to its own peak: they have very different pair counts
    g = g / max(g.max(initial=0), 1)
    i = i / max(i.max(initial=0), 1)

    def x(v: float) -> int:
        return int(left + (v - lo) / (hi - lo) * (right - left))

    cv2.line(img, (left, bottom), (right, bottom), (0, 0, 0), 1)
    for k in range(len(bins) - 1):
        x0, x1 = x(bins[k]), x(bins[k + 1])
        for share, colour, offset in ((i[k], (60, 60, 220), 0), (g[k], (60, 170, 60), 0)):
            if share > 0:
                y = int(bottom - share * (bottom - top))
                overlay = img.copy()
                cv2.rectangle(overlay, (x0 + offset, y), (x1 - 1, bottom), colour, cv2.FILLED)
                img = cv2.addWeighted(overlay, 0.55, img, 0.45, 0)
    for value, colour, label in (
        (cal.threshold, (0, 0, 0), f"suggested {cal.threshold:.3f} (FAR {cal.far:g})"),
        (current, (200, 120, 0), f"current {current:.3f}"),
    ):
        cv2.line(img, (x(value), top), (x(value), bottom), colour, 2)
        y = top - 8 if colour == (0, 0, 0) else top + 14
        cv2.putText(img, label, (min(x(value) + 4, width - 260), y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1)
    for t in np.arange(0, hi + 1e-9, 0.1):
        cv2.putText(img, f"{t:.1f}", (x(t) - 10, bottom + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(img, "distance", (width // 2 - 30, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(
        img,
        f"same person ({len(cal.genuine)} pairs)",
        (left + 10, top + 40),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.55,
        (60, 170, 60),
        2,
    )
    cv2.putText(
        img,
        f"different people ({len(cal.impostor)} pairs)",
        (left + 10, top + 64),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.55,
        (60, 60, 220),
        2,
    )
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise OSError("cannot encode PNG")
    return data.tobytes()


def write_plot(cal: Calibration, current: float, path: Path) -> None:
    atomic_write_bytes(Path(path), histogram_png(cal, current), mode=0o644)
