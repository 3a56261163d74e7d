"""Verification accuracy of each model on LFW-style pairs, through `livecam encode` (the CLI contract).

    .venv/bin/python benchmarks/bench_models.py [--data DIR] [--models dlib,facenet,fusion] [--sets 3]
        [--half all|tune|report]

Pairs come from $LIVECAM_TEST_DATA/identities (64 LFW people, 250x250 photos; `--half` keeps the people of
one half of doorbench/people.py's fixed split): per set, 300 same-person and 300 different-person pairs drawn with
a fixed seed. Accuracy is 10-fold: the threshold chosen on 9 folds is scored on the 10th (LFW's protocol).
Photos are encoded once per model with `livecam encode --model M`. Also: of every pair of those photos, the
share of same-person pairs within the distance that 0.1 % of different-person pairs are within (a door's
strict threshold: what it names where it names almost no stranger).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LIVECAM = str(REPO / ".venv" / "bin" / "livecam")
sys.path.insert(0, str(REPO / "benchmarks"))

from doorbench.people import split_people  # noqa: E402


def people_photos(root: Path, people: list[str] | None) -> dict[str, list[Path]]:
    dirs = [p for p in sorted(root.iterdir()) if p.is_dir() and (people is None or p.name in people)]
    return {p.name: sorted(p.glob("*.jpg"), key=lambda x: int(x.stem)) for p in dirs}


def pair_sets(photos: dict[str, list[Path]], sets: int, n: int = 300) -> list[list[tuple[Path, Path, bool]]]:
    multi = [name for name in photos if len(photos[name]) >= 2]
    out = []
    for seed in range(sets):
        rng = random.Random(seed)
        same = [(*rng.sample(photos[rng.choice(multi)], 2), True) for _ in range(n)]
        diff = []
        while len(diff) < n:
            a, b = rng.sample(list(photos), 2)
            diff.append((rng.choice(photos[a]), rng.choice(photos[b]), False))
        out.append(same + diff)
    return out


def encode(model: str, files: list[Path]) -> tuple[dict[Path, np.ndarray | None], float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "enc.jsonl"
        start = time.perf_counter()
        subprocess.run(
            [LIVECAM, "-q", "encode", "--model", model, "--flip", *map(str, files), "-o", str(out)],
            check=False,
            env={**os.environ, "XDG_STATE_HOME": tmp},
        )
        elapsed = time.perf_counter() - start
        records = [json.loads(line) for line in out.read_text().splitlines()]
    enc: dict[Path, np.ndarray | None] = {}
    for r in records:
        faces = r["faces"]
        # LFW's photos are centred on their subject (250x250): the face nearest the centre, as LFW's protocol has it

        def off_centre(f):
            top, right, bottom, left = f["box"]
            return abs((left + right) / 2 - 125) + abs((top + bottom) / 2 - 125)

        best = min(faces, key=off_centre) if faces else None
        enc[Path(r["path"])] = np.array(best["encoding"], np.float32) if best else None
    return enc, elapsed / max(len(files), 1) * 1000


def strict_accept(enc: dict[Path, np.ndarray | None], photos: dict[str, list[Path]], far: float = 0.001) -> float:
    """Of all pairs of the photos: the share of same-person pairs at or within the distance that `far` of
    the different-person pairs are within (a photo without a face: never accepted)."""
    keys = [(name, p) for name, ps in photos.items() for p in ps]
    vectors = np.array([enc[p] if enc.get(p) is not None else np.full_like(_any(enc), np.nan) for _, p in keys])
    labels = np.array([name for name, _ in keys])
    sq = (vectors**2).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * vectors @ vectors.T, 0))
    d = np.where(np.isnan(d), np.inf, d)
    upper = np.triu_indices(len(keys), 1)
    same = labels[:, None] == labels[None, :]
    genuine, impostor = d[upper][same[upper]], np.sort(d[upper][~same[upper]])
    threshold = impostor[int(far * len(impostor))]  # the distance below which `far` of impostor pairs lie
    return float((genuine < threshold).mean())


def _any(enc: dict[Path, np.ndarray | None]) -> np.ndarray:
    return next(e for e in enc.values() if e is not None)


def tenfold(d: np.ndarray, y: np.ndarray) -> float:
    idx = np.arange(len(d))
    np.random.RandomState(0).shuffle(idx)
    folds = np.array_split(idx, 10)
    accs = []
    for k in range(10):
        test = folds[k]
        train = np.concatenate([folds[j] for j in range(10) if j != k])
        best = max(np.unique(d[train]), key=lambda t: ((d[train] <= t) == y[train]).mean())
        accs.append(((d[test] <= best) == y[test]).mean())
    return float(np.mean(accs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("LIVECAM_TEST_DATA", REPO / ".." / "shared" / "data" / "faces")),
    )
    ap.add_argument("--models", default="dlib,facenet,fusion")
    ap.add_argument("--sets", type=int, default=3)
    ap.add_argument("--half", choices=("all", "tune", "report"), default="all", help="people of one half only")
    args = ap.parse_args()
    people = None if args.half == "all" else split_people(args.data)[args.half]
    photos = people_photos(args.data / "identities", people)
    sets = pair_sets(photos, args.sets)
    files = sorted(p for ps in photos.values() for p in ps)
    print(
        f"{len(photos)} people ({args.half}), {len(files)} photos, {args.sets} sets of 300 same + 300 different pairs"
    )
    for model in args.models.split(","):
        enc, ms = encode(model, files)
        accs = []
        for pairs in sets:
            d = np.array(
                [
                    np.linalg.norm(enc[a] - enc[b]) if enc[a] is not None and enc[b] is not None else 99.0
                    for a, b, _ in pairs
                ]
            )
            y = np.array([same for _, _, same in pairs])
            accs.append(tenfold(d, y))
        missing = sum(e is None for e in enc.values())
        print(
            f"{model:8s} 10-fold accuracy {' '.join(f'{a:.2%}' for a in accs)}  mean {np.mean(accs):.2%}"
            f"  accepted at 0.1 % FAR {strict_accept(enc, photos):.2%}"
            f"  ({ms:.0f} ms/photo through livecam encode, {missing} photos without a face)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
