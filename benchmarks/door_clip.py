"""A door-like test clip built from real LFW photos, with ground truth.

Each visit is one real photo of a person (not one of their gallery photos)
that slides across a 640x480 scene and grows, as someone walking up to a
door camera would; visits overlap, so two faces are sometimes in view.
Enrolled people are enrolled from *other* photos of theirs; strangers are
never enrolled.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 480, 30
CROP = 170  # the centre of a 250x250 LFW photo: the face (~110 px) and a little around it


@dataclass
class Visit:
    person: str
    photo: str  # path of the photo used in the clip
    enrolled: bool
    start: int  # first frame
    end: int  # last frame (inclusive)
    boxes: dict[int, list[int]]  # frame -> [top, right, bottom, left] of the pasted photo


def gallery_photos(n: int) -> list[int]:
    return list(range(1, n + 1))


def plan(data: Path, enrolled: int, strangers: int, seed: int, gallery_n: int = 5, visit_photo: int = 10):
    people = sorted(d.name for d in (data / "identities").iterdir() if d.is_dir())
    rng = random.Random(seed)
    rng.shuffle(people)
    chosen_enrolled = [p for p in people if (data / "identities" / p / f"{visit_photo}.jpg").exists()][:enrolled]
    rest = [p for p in people if p not in chosen_enrolled]
    chosen_strangers = rest[:strangers]
    visits = [(p, data / "identities" / p / f"{visit_photo}.jpg", True) for p in chosen_enrolled]
    visits += [(p, data / "identities" / p / "1.jpg", False) for p in chosen_strangers]
    rng.shuffle(visits)
    gallery = {p: [data / "identities" / p / f"{i}.jpg" for i in gallery_photos(gallery_n)] for p in chosen_enrolled}
    return visits, gallery


def _background(data: Path) -> np.ndarray:
    scene = cv2.imread(str(data / "negatives" / "dlib_mmod_cars_test_image.jpg"))
    scene = cv2.resize(scene, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return cv2.addWeighted(scene, 0.6, np.full_like(scene, 60), 0.4, 0)


def _soft_mask(size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (int(size * 0.46), int(size * 0.5)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), size * 0.04)[..., None]


def make_clip(
    data: Path,
    out: Path,
    enrolled: int = 8,
    strangers: int = 15,
    seed: int = 7,
    visit_frames: int = 60,
    stride: int = 40,
) -> tuple[list[Visit], dict[str, list[Path]]]:
    """Write the clip to `out` (mp4) and return its visits and the gallery to enroll."""
    visit_list, gallery = plan(data, enrolled, strangers, seed)
    background = _background(data)
    total = stride * (len(visit_list) - 1) + visit_frames + 15
    rng = random.Random(seed + 1)
    visits: list[Visit] = []
    sprites = []
    for i, (person, photo_path, is_enrolled) in enumerate(visit_list):
        photo = cv2.imread(str(photo_path))
        off = (photo.shape[0] - CROP) // 2
        sprite = photo[off : off + CROP, off : off + CROP]
        start = 10 + i * stride
        left_to_right = rng.random() < 0.5
        y_centre = rng.randint(170, 300)
        visits.append(Visit(person, str(photo_path), is_enrolled, start, start + visit_frames - 1, {}))
        sprites.append((sprite, left_to_right, y_centre))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for f in range(total):
        frame = background.copy()
        for visit, (sprite, l2r, yc) in zip(visits, sprites, strict=True):
            if not visit.start <= f <= visit.end:
                continue
            p = (f - visit.start) / max(visit.end - visit.start, 1)
            size = int(CROP * (0.85 + 0.65 * p))  # the face grows from ~95 to ~170 px
            xc = int((0.2 + 0.6 * p if l2r else 0.8 - 0.6 * p) * WIDTH)
            top, left = yc - size // 2, xc - size // 2
            top, left = max(0, min(top, HEIGHT - size)), max(0, min(left, WIDTH - size))
            patch = cv2.resize(sprite, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            mask = _soft_mask(size)
            region = frame[top : top + size, left : left + size].astype(np.float32)
            frame[top : top + size, left : left + size] = (mask * patch + (1 - mask) * region).astype(np.uint8)
            visit.boxes[f] = [top, left + size, top + size, left]
        writer.write(frame)
    writer.release()
    return visits, gallery


def write_gallery(gallery: dict[str, list[Path]], root: Path) -> None:
    """Copy the photos to enroll into `root/<person>/`, a known_faces folder."""
    for person, photos in gallery.items():
        (root / person).mkdir(parents=True)
        for p in photos:
            shutil.copy(p, root / person / p.name)


def save_truth(visits: list[Visit], path: Path) -> None:
    path.write_text(json.dumps([asdict(v) for v in visits]))


def evaluate(visits: list[Visit], records: list[dict], fps: float = FPS) -> dict:
    """Score per-frame records ({"frame", "faces": [{"box", "name"}]}) against the visits.

    A face belongs to the visit whose pasted photo contains its centre.
    """
    by_frame = {r["frame"]: r["faces"] for r in records}
    owner: dict[tuple[int, int], int] = {}  # (frame, face index) -> visit index
    for f, faces in by_frame.items():
        for k, face in enumerate(faces):
            top, right, bottom, left = face["box"]
            cx, cy = (left + right) / 2, (top + bottom) / 2
            best, best_d = None, None
            for vi, v in enumerate(visits):
                box = v.boxes.get(f)
                if box is None or not (box[3] <= cx <= box[1] and box[0] <= cy <= box[2]):
                    continue
                d = ((box[1] + box[3]) / 2 - cx) ** 2 + ((box[0] + box[2]) / 2 - cy) ** 2
                if best_d is None or d < best_d:
                    best, best_d = vi, d
            if best is not None:
                owner[(f, k)] = best
    rows = []
    for vi, v in enumerate(visits):
        first_named = None
        wrong = set()
        seen = False
        for f in range(v.start, v.end + 1):
            for k, face in enumerate(by_frame.get(f, [])):
                if owner.get((f, k)) != vi:
                    continue
                seen = True
                name = face.get("name")
                if name in (None, "unknown"):
                    continue
                if v.enrolled and name == v.person:
                    first_named = f if first_named is None else first_named
                else:
                    wrong.add(name)
        rows.append(
            {
                "person": v.person,
                "enrolled": v.enrolled,
                "seen": seen,
                "named_at": None if first_named is None else first_named - v.start,
                "wrong_names": sorted(wrong),
            }
        )
    enrolled = [r for r in rows if r["enrolled"]]
    strangers = [r for r in rows if not r["enrolled"]]
    latencies = sorted(r["named_at"] for r in enrolled if r["named_at"] is not None)
    return {
        "enrolled": len(enrolled),
        "enrolled_named": sum(r["named_at"] is not None for r in enrolled),
        "enrolled_wrongly_named": sum(bool(r["wrong_names"]) for r in enrolled),
        "strangers": len(strangers),
        "strangers_named": sum(bool(r["wrong_names"]) for r in strangers),
        "median_latency_frames": float(np.median(latencies)) if latencies else None,
        "rows": rows,
    }
