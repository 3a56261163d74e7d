"""Matching speed: one face against galleries of 1k to 100k faces (goal: <= 2 ms at 100k).

    .venv/bin/python benchmarks/bench_matching.py

The gallery is synthetic (random vectors at the scale of dlib embeddings): the cost
of matching depends only on the sizes, not on the faces.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livecam.engine.matching import Matcher  # noqa: E402


def main() -> int:
    rng = np.random.default_rng(0)
    print("| gallery faces | people | ms per face (1 query) | ms per face (batch of 8) |")
    print("|---|---|---|---|")
    for n in (1_000, 10_000, 100_000):
        people = n // 5
        enc = rng.normal(0, 0.09, (n, 128)).astype(np.float32)
        labels = rng.integers(0, people, n)
        m = Matcher(enc, labels, [f"p{i}" for i in range(people)])
        q = rng.normal(0, 0.09, (8, 128)).astype(np.float32)
        m.match(q[:1])
        reps = 50
        t = time.perf_counter()
        for i in range(reps):
            m.match(q[i % 8 : i % 8 + 1])
        one = (time.perf_counter() - t) / reps * 1000
        t = time.perf_counter()
        for _ in range(reps // 5):
            m.match(q)
        batch = (time.perf_counter() - t) / (reps // 5) / 8 * 1000
        print(f"| {n:,} | {people:,} | {one:.2f} | {batch:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
