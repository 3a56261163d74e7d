"""What one face costs each model in the live loop: the crop (alignment, and for FaceNet its MTCNN search) and
the network, for a probe (no mirror image), one face per call, as the encoder process does it.

    taskset -c 0 .venv/bin/python benchmarks/model_cost.py [--models dlib,mobilefacenet] [--photos 60]

Photos: the first --photos of the report half's people (benchmarks/doorbench/people.py's split), each face found
once by dlib's HOG and the same box given to every model. Prints the median milliseconds per face of each
stage; pin it to one core (taskset) for a one-thread figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from doorbench.people import split_people  # noqa: E402

from livecam.engine.batch import EngineSettings  # noqa: E402
from livecam.engine.images import load_image  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("LIVECAM_TEST_DATA", REPO.parent / "shared/data/faces"))
    )
    ap.add_argument(
        "--models", default="dlib,facenet,fusion,mobilefacenet,dlib+mobilefacenet,dlib+facenet+mobilefacenet"
    )
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3, help="passes over the photos (the median is over all)")
    args = ap.parse_args()
    people = split_people(args.data)["report"]
    photos = [p for n in people for p in sorted((args.data / "identities" / n).glob("*.jpg"))]
    photos = photos[: args.photos]
    finder = EngineSettings(model="dlib").build().load()
    faces = []
    for path in photos:
        rgb = load_image(path)
        boxes = finder.detect(rgb, 1)
        if boxes:
            faces.append((rgb, max(boxes, key=lambda b: b.area)))
    print(
        f"{len(faces)} faces from {len(photos)} photos of the report half; CPUs allowed: {len(os.sched_getaffinity(0))}"
    )
    print("| model | crop ms/face | network ms/face | total ms/face |")
    print("|---|---|---|---|")
    for model in args.models.split(","):
        engine = EngineSettings(model=model, flip_average=False).build().load()
        crop, net = [], []
        for rgb, box in faces[:3]:  # warm-up (lazy loads, first-call allocations)
            engine.encode_chips(engine.chips(rgb, [box]))
        for _ in range(args.repeat):
            for rgb, box in faces:
                t0 = time.perf_counter()
                chips = engine.chips(rgb, [box])
                t1 = time.perf_counter()
                engine.encode_chips(chips)
                t2 = time.perf_counter()
                crop.append(t1 - t0)
                net.append(t2 - t1)
        c, n = np.median(crop) * 1e3, np.median(net) * 1e3
        total = np.median(np.add(crop, net)) * 1e3
        print(f"| {model} | {c:.1f} | {n:.1f} | {total:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
