"""MTCNN's false faces: what livecam's confidence rule (facenet.likely_faces) keeps and drops.

    .venv/bin/python benchmarks/mtcnn_faces.py [--data DIR]

Every photo of $LIVECAM_TEST_DATA goes through MTCNN once, as `encode --model facenet` sees it (scaled to at
most faces.STILL_DETECT_PIXELS). Counted before (everything MTCNN's last stage passes) and after the rule:
- photos of one person (identities/, identities_extra/, pairs_extra/): photos with no face, and the faces
  beyond the largest ("extra": real faces in the background, or no face at all);
- negatives/: every face is false;
- groups/ with dlib's ground-truth boxes (9 PASCAL VOC photos): faces matched (IoU >= 0.3), false, missed;
  the other 30 group and crowd photos: faces found.
"""

from __future__ import annotations

import argparse
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from livecam.engine.facenet import likely_faces, mtcnn_found
from livecam.engine.faces import STILL_DETECT_PIXELS, Box, _within
from livecam.engine.images import load_image

REPO = Path(__file__).resolve().parents[1]
ONE_PERSON = ("identities", "identities_extra", "pairs_extra")


def iou(a: Box, b: Box) -> float:
    inter = Box(max(a.top, b.top), min(a.right, b.right), min(a.bottom, b.bottom), max(a.left, b.left)).area
    return inter / (a.area + b.area - inter) if inter else 0.0


def ground_truth(root: Path) -> dict[str, list[Box]]:
    boxes: dict[str, list[Box]] = {}
    for xml in sorted((root / "groups" / "dlib_annotations").glob("*.xml")):
        for image in ET.parse(xml).getroot().iter("image"):
            boxes[image.get("file")] = [
                Box(
                    int(b.get("top")),
                    int(b.get("left")) + int(b.get("width")),
                    int(b.get("top")) + int(b.get("height")),
                    int(b.get("left")),
                )
                for b in image.iter("box")
                if b.get("ignore") != "1"
            ]
    return boxes


def count(found: dict[str, list[Box]], truth: dict[str, list[Box]]) -> dict[str, int]:
    keys = ["photos", "no face", "extra", "negatives' faces", "matched", "false", "missed", "other groups' faces"]
    c = dict.fromkeys(keys, 0)
    for rel, boxes in found.items():
        top = rel.split("/")[0]
        if top in ONE_PERSON:
            c["photos"] += 1
            c["no face"] += not boxes
            c["extra"] += max(len(boxes) - 1, 0)
        elif top == "negatives":
            c["negatives' faces"] += len(boxes)
        elif top == "groups" and Path(rel).name in truth:
            left = list(truth[Path(rel).name])
            for b in boxes:
                best = max(left, key=lambda t: iou(b, t), default=None)
                if best is not None and iou(b, best) >= 0.3:
                    left.remove(best)
                    c["matched"] += 1
                else:
                    c["false"] += 1
            c["missed"] += len(left)
        elif top == "groups":
            c["other groups' faces"] += len(boxes)
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LIVECAM_TEST_DATA", REPO / ".." / "shared" / "data" / "faces")
    ap.add_argument("--data", type=Path, default=Path(default))
    args = ap.parse_args()
    root = args.data.resolve()
    before: dict[str, list[Box]] = {}
    after: dict[str, list[Box]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or path.parts[len(root.parts)] == "videos":
            continue
        rgb = load_image(path)
        image, scale = _within(rgb, STILL_DETECT_PIXELS)
        raw = mtcnn_found(image)
        rel = path.relative_to(root).as_posix()
        before[rel] = [b.scaled(1 / scale) for b, _ in raw]
        after[rel] = [b.scaled(1 / scale) for b, _ in likely_faces(raw)]
        if len(raw) != len(likely_faces(raw)):
            dropped = [(b.scaled(1 / scale).as_list(), round(c, 3)) for b, c in raw if (b, c) not in likely_faces(raw)]
            print(f"  {rel}: dropped {dropped}")
    truth = ground_truth(root)
    b, a = count(before, truth), count(after, truth)
    print(f"\n{'':22s} {'before':>8s} {'after':>8s}")
    for key in b:
        print(f"{key:22s} {b[key]:8d} {a[key]:8d}")


if __name__ == "__main__":
    main()
