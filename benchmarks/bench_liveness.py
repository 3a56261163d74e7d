"""Blink liveness on real talking heads and on photo attacks.

    .venv/bin/python benchmarks/bench_liveness.py

* Real: every talking-head clip in $LIVECAM_TEST_DATA/videos (HDTF and
  video-retalking, 4-8 s each): does the face blink (pass)?
* Photo attack: the door clip's visitors are still photos moved and scaled
  across the frame (benchmarks/door_clip.py): does any of them "blink"?
Landmarks are taken on every frame of the face, as `livecam run` does for
tracks that still need liveness.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from door_clip import make_clip  # noqa: E402

from livecam.engine.faces import Box, FaceEngine  # noqa: E402
from livecam.live.liveness import BlinkDetector, eye_aspect_ratios  # noqa: E402


def blinks_in_clip(engine: FaceEngine, path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25
    det = BlinkDetector(fps)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        boxes = engine.detect(gray, 0)
        if boxes:
            det.update(eye_aspect_ratios(engine.landmarks68(gray, boxes[0])))
    return det.blinks


def photo_attacks(engine: FaceEngine, data: Path) -> list[tuple[str, int]]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "door.mp4"
        visits, _ = make_clip(data, clip)
        cap = cv2.VideoCapture(str(clip))
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
        for v in visits:
            det = BlinkDetector(30.0)
            for f in range(v.start, v.end + 1):
                t, r, b, left = v.boxes[f]
                boxes = [x for x in engine.detect(frames[f][t:b, left:r], 0)]
                if boxes:
                    bx = boxes[0]
                    box = Box(bx.top + t, bx.right + left, bx.bottom + t, bx.left + left)
                    det.update(eye_aspect_ratios(engine.landmarks68(frames[f], box)))
            out.append((v.person, det.blinks))
    return out


def main() -> int:
    data = Path(os.environ.get("LIVECAM_TEST_DATA", REPO.parent / "shared/data/faces"))
    engine = FaceEngine()
    clips = sorted(p for p in (data / "videos").glob("*.mp4") if p.name.startswith(("hdtf_", "retalking_")))
    real = [(p.name, blinks_in_clip(engine, p)) for p in clips]
    attacks = photo_attacks(engine, data)
    passed = sum(b > 0 for _, b in real)
    rejected = sum(b == 0 for _, b in attacks)
    print("| talking-head clip | blinks found |")
    print("|---|---|")
    for name, b in real:
        print(f"| {name} | {b} |")
    print(f"\nreal faces passing: {passed}/{len(real)} ({passed / len(real):.0%})")
    print(f"photo attacks rejected (no blink): {rejected}/{len(attacks)} ({rejected / len(attacks):.0%})")
    fooled = [f"{p} ({b})" for p, b in attacks if b]
    if fooled:
        print("photos that 'blinked': " + ", ".join(fooled))
    return 0


if __name__ == "__main__":
    sys.exit(main())
