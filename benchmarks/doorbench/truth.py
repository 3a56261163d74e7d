"""Ground truth: which ground-truth face a drawn or detected box belongs to (attribute), the faces of each
frame, which frames of a visit the live loop's detector can find, truth.json (saved and loaded), and the
real clips' truth (shots, and whether the enrolled person is in each), told by dlib on its own.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from doorbench.detector import Hog, live_detections
from doorbench.scenes import Scene, SceneVisit


# -- ground truth helpers ------------------------------------------------------------------------
def iou(a: list[float], b: list[float]) -> float:
    top, bottom = max(a[0], b[0]), min(a[2], b[2])
    left, right = max(a[3], b[3]), min(a[1], b[1])
    inter = max(0.0, bottom - top) * max(0.0, right - left)
    union = (a[2] - a[0]) * (a[1] - a[3]) + (b[2] - b[0]) * (b[1] - b[3]) - inter
    return inter / union if union > 0 else 0.0


MIN_VISIBLE = 0.5  # a face less visible than this is only matched when no well-visible face is


def attribute(box: list[float], truth: list[tuple[int, list[int], float]]) -> int | None:
    """The ground-truth visit a drawn/detected box belongs to: best IoU >= 0.3, or its centre inside the gt box.

    Well-visible faces are tried first, so that a box on the face in front during a
    crossing goes to that face and not to the one hidden behind it.
    """
    cx, cy = (box[1] + box[3]) / 2, (box[0] + box[2]) / 2
    for pass_visible in (True, False):
        best, best_key = None, None
        for vid, gt, visible in truth:
            if (visible >= MIN_VISIBLE) != pass_visible:
                continue
            overlap = iou(box, gt)
            inside = gt[3] <= cx <= gt[1] and gt[0] <= cy <= gt[2]
            if overlap < 0.3 and not inside:
                continue
            key = (overlap, -(((gt[1] + gt[3]) / 2 - cx) ** 2) - ((gt[0] + gt[2]) / 2 - cy) ** 2)
            if best_key is None or key > best_key:
                best, best_key = vid, key
        if best is not None:
            return best
    return None


def truth_by_frame(visits: list[SceneVisit], frames: int) -> list[list[tuple[int, list[int], float]]]:
    out: list[list[tuple[int, list[int], float]]] = [[] for _ in range(frames)]
    for v in visits:
        for f, box in v.boxes.items():
            if f < frames:
                out[f].append((v.vid, box, v.visible.get(f, 1.0)))
    return out


def mark_detectable(visits: list[SceneVisit], clip: Path, frames: int) -> dict:
    """Which frames of each visit the live loop's detector can find (on the decoded clip, as livecam sees it).

    Returns a check of the ground truth itself: how many detections matched a
    gt face and how well they overlap it (IoU), and detections matching none.
    """
    truth = truth_by_frame(visits, frames)
    by_vid = {v.vid: v for v in visits}
    for v in visits:
        v.detectable = []
    cap = cv2.VideoCapture(str(clip))
    ious: list[float] = []
    stray: list[int] = []
    f = 0
    try:
        while f < frames:
            ok, image = cap.read()
            if not ok:
                break
            if truth[f] or f % 10 == 0:  # empty frames: a sample is enough to catch stray detections
                for det in live_detections(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)):
                    vid = attribute(det, truth[f])
                    if vid is None:
                        stray.append(f)
                        continue
                    by_vid[vid].detectable.append(f)
                    gt = next(b for i, b, _ in truth[f] if i == vid)
                    ious.append(iou(det, gt))
            f += 1
    finally:
        cap.release()
    for v in visits:
        v.detectable = sorted(set(v.detectable))
    return {
        "detections_matched": len(ious),
        "median_iou": round(float(np.median(ious)), 3) if ious else None,
        "iou_below_0.5": int(sum(i < 0.5 for i in ious)),
        "stray_detections": len(stray),
        "stray_frames": stray[:20],
    }


def save_scene(scene: Scene, path: Path, check: dict) -> None:
    data = {
        "key": scene.key(),
        "name": scene.name,
        "half": scene.half,
        "scenario": scene.scenario,
        "layout": scene.layout,
        "frames": scene.frames,
        "gallery": scene.gallery,
        "check": check,
        "visits": [asdict(v) for v in scene.visits],
    }
    path.write_text(json.dumps(data))


def load_truth(path: Path) -> dict:
    """truth.json with its visits as SceneVisit (frame keys back to int)."""
    data = json.loads(path.read_text())
    visits = []
    for v in data["visits"]:
        v["boxes"] = {int(k): b for k, b in v["boxes"].items()}
        v["visible"] = {int(k): x for k, x in v["visible"].items()}
        visits.append(SceneVisit(**v))
    data["visits"] = visits
    return data


# -- real clips --------------------------------------------------------------------------------------
CUT_DIFF = 15.0  # mean |difference| of consecutive 64x36 gray thumbnails above this: a scene cut
SAME_PERSON = 0.6  # dlib's usual same-person distance, for labelling shots (not for the systems compared)


class _Encoder:
    """dlib's 5-point landmarks + ResNet, straight from face_recognition_models (independent of livecam's code)."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def faces(self, rgb: np.ndarray, upsample: int = 1) -> list[np.ndarray]:
        return [
            np.array(self._net.compute_face_descriptor(rgb, self._shape(rgb, r)))
            for r in Hog.get()(np.ascontiguousarray(rgb), upsample)
        ]


def real_truth(clip: Path, person: str, references: dict[str, list[Path]], step: int = 3) -> dict:
    """Shots of a real clip and whether `person` is in each, told by dlib distances to reference photos.

    A shot is "present" when a face in it is within 0.6 of `person`'s photos,
    "absent" when faces were found and none is, "unseen" when no face was
    found (a profile close-up, say): there a name cannot be judged. Other
    people of `references` found in a shot are listed (e.g. Barack_Obama).
    Detectable frames are those of "present" shots where the live loop's
    detector finds a face.
    """
    encoder = _Encoder()
    refs = {}
    for name, photos in references.items():
        encs = []
        for p in photos:
            image = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if image is not None:
                encs += encoder.faces(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))[:1]
        refs[name] = encs
    cap = cv2.VideoCapture(str(clip))
    starts, thumbs_prev = [0], None
    sampled: dict[int, list[dict[str, float]]] = {}
    live: set[int] = set()
    f = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(gray, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
        if thumbs_prev is not None and float(np.abs(thumb - thumbs_prev).mean()) > CUT_DIFF:
            starts.append(f)
        thumbs_prev = thumb
        if live_detections(gray):
            live.add(f)
        if (f - starts[-1]) % step == 0:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            sampled[f] = [
                {n: float(min(np.linalg.norm(e - r) for r in rs)) for n, rs in refs.items() if rs}
                for e in encoder.faces(rgb)
            ]
        f += 1
    cap.release()
    shots = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 1 if i + 1 < len(starts) else f - 1
        faces = [d for g in range(start, end + 1) for d in sampled.get(g, [])]
        # a face is someone only when it is within 0.6 of their photos *and* nearer to them than to anyone else
        # (Lin's own face comes within 0.6 of an Obama photo now and then)
        who = Counter(min(d, key=d.__getitem__) for d in faces if d and min(d.values()) <= SAME_PERSON)
        if not faces:
            label = "unseen"
        elif who[person]:
            label = "present"
        else:
            label = "absent"
        near = {n: round(min(d[n] for d in faces if n in d), 3) for n in refs if any(n in d for d in faces)}
        others = sorted(n for n in who if n != person)
        shots.append({"start": start, "end": end, "faces": len(faces), "nearest": near, "label": label, "also": others})
    present = {g for s in shots if s["label"] == "present" for g in range(s["start"], s["end"] + 1)}
    return {"frames": f, "person": person, "shots": shots, "detectable": sorted(live & present)}
