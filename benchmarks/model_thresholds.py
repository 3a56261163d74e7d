"""Choose a model's identification threshold on the tune half: the threshold at which it names
strangers no more often than dlib at its own 0.45, and what it then accepts of enrolled people.

    .venv/bin/python benchmarks/model_thresholds.py [--half tune|report] [--model facenet]

People of one half (benchmarks/doorbench/people.py's fixed split): every other person is enrolled from
their first 3 photos; the rest of their photos are genuine probes; every photo of the others is a
stranger probe. Open-set rule: the nearest person within the threshold, with the margin.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from doorbench.people import split_people  # noqa: E402

from livecam.engine.batch import EngineSettings  # noqa: E402
from livecam.engine.images import load_image  # noqa: E402
from livecam.models import MODELS  # noqa: E402


def embeddings(model: str, photos: list[Path], flip: bool) -> dict[Path, np.ndarray | None]:
    engine = EngineSettings(model=model, flip_average=flip).build().load()
    out = {}
    for p in photos:
        faces = engine.faces(load_image(p))
        out[p] = max(faces, key=lambda f: f.box.area).encoding if faces else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "faces")
    ap.add_argument("--half", default="tune", choices=("tune", "report"))
    ap.add_argument("--model", default="facenet", choices=sorted(MODELS))
    args = ap.parse_args()
    people = split_people(args.data)[args.half]
    enrolled, strangers = people[::2], people[1::2]
    root = args.data / "identities"
    photos = {n: sorted((root / n).glob("*.jpg"), key=lambda p: int(p.stem)) for n in people}
    gallery = [(n, p) for n in enrolled for p in photos[n][:3]]
    genuine = [(n, p) for n in enrolled for p in photos[n][3:]]
    stranger = [(None, p) for n in strangers for p in photos[n]]
    results = {}
    for model in ("dlib", args.model):
        spec = MODELS[model]
        enc = {
            **embeddings(model, [p for _, p in gallery], True),
            **embeddings(model, [p for _, p in genuine + stranger], False),
        }
        g = np.array([enc[p] for _, p in gallery if enc[p] is not None])
        gl = np.array([enrolled.index(n) for n, p in gallery if enc[p] is not None])
        rows = []
        for truth, p in genuine + stranger:
            e = enc[p]
            if e is None:
                continue
            d = np.linalg.norm(g - e, axis=1)
            per = np.array([d[gl == i].min() for i in range(len(enrolled))])
            order = np.argsort(per)
            rows.append((truth, enrolled[order[0]], per[order[0]], per[order[1]] - per[order[0]]))
        results[model] = (spec, rows)

    def rates(rows, threshold, margin):
        named = [(t, n) for t, n, d, m in rows if d <= threshold and m >= margin]
        n_gen = sum(t is not None for t, *_ in rows)
        n_str = sum(t is None for t, *_ in rows)
        right = sum(t == n for t, n in named)
        wrong = sum(t is not None and t != n for t, n in named)
        strangers_named = sum(t is None for t, _ in named)
        return right / n_gen, wrong, strangers_named / n_str, n_gen, n_str

    spec, rows = results["dlib"]
    tar, wrong, far, n_gen, n_str = rates(rows, spec.threshold, spec.margin)
    print(
        f"{args.half} half: {len(enrolled)} enrolled (3 photos each), {n_gen} genuine probes, {n_str} stranger probes"
    )
    print(f"dlib at {spec.threshold}: named right {tar:.1%}, named wrong {wrong}, strangers named {far:.2%}")
    spec, rows = results[args.model]
    ratio = spec.margin / spec.threshold
    # a stranger is named at threshold t when its distance is within t and its margin at least ratio * t
    firsts = [d for t, _, d, m in rows if t is None and d * ratio <= m]
    first = f"the first stranger is named at threshold {min(firsts):.3f}" if firsts else "no stranger is named"
    print(f"{args.model}: {first}")
    for threshold in spec.threshold * np.arange(0.70, 1.25, 0.025):
        tar2, wrong2, far2, *_ = rates(rows, threshold, ratio * threshold)
        mark = " <- spec" if abs(threshold - spec.threshold) < 0.01 * spec.threshold else ""
        print(
            f"{args.model} at {threshold:.2f}: named right {tar2:.1%}, named wrong {wrong2},"
            f" strangers named {far2:.2%}{mark}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
