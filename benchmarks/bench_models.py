"""Verification accuracy of each model on LFW-style pairs, through `livecam encode` (the CLI contract).

    .venv/bin/python benchmarks/bench_models.py [--data DIR] [--models dlib,facenet,fusion] [--sets 3]

Pairs come from $LIVECAM_TEST_DATA/identities (64 LFW people, 250x250 photos): per set, 300 same-person and
300 different-person pairs drawn with a fixed seed. Accuracy is 10-fold: the threshold chosen on 9 folds
is scored on the 10th (LFW's protocol). Photos are encoded once per model with `livecam encode --model M`.
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


def pair_sets(root: Path, sets: int, n: int = 300) -> list[list[tuple[Path, Path, bool]]]:
    photos = {p.name: sorted(p.glob("*.jpg"), key=lambda x: int(x.stem)) for p in sorted(root.iterdir()) if p.is_dir()}
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
    args = ap.parse_args()
    sets = pair_sets(args.data / "identities", args.sets)
    files = sorted({p for s in sets for a, b, _ in s for p in (a, b)})
    print(f"{len(files)} photos, {args.sets} sets of 300 same + 300 different pairs")
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
            f"  ({ms:.0f} ms/photo through livecam encode, {missing} photos without a face)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
