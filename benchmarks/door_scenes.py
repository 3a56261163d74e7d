"""Scripted door scenes built from LFW photos, with per-frame ground truth (used by door_bench.py).

A scene is one short 640x480 30 fps clip: real LFW photos (centre crop, soft
elliptical mask, as in door_clip.py) moving and scaling over a background.
Every frame records, for every face in view, the ground-truth box of the
*inner face* (what dlib's HOG detector returns, not the pasted square), how
much of that box is visible, and whose face it is.

The people of identities/ are split once, with a fixed seed, into a "tune"
half and a "report" half, so that settings tuned on one half are reported on
people they never saw. Enrolled people are enrolled from photos 1..k and
appear in clips only in other photos.
"""

from __future__ import annotations

import functools
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from door_clip import CROP, FPS, HEIGHT, WIDTH, Visit, _soft_mask

SPLIT_SEED = 20261127  # fixed: the tune/report split must never move
PHOTO = 250  # LFW deep-funneled photos are 250x250
CROP_OFF = (PHOTO - CROP) // 2
# dlib's HOG (upsample 1) finds the face of 99 % of deep-funneled LFW photos (measured on 300 of them),
# mostly as a 109x108 px box centred near (121, 133): the inner ~44 % of the photo. Each photo's own box
# is the ground truth (PhotoBook); photos where it is missing or odd are not used.
# Calibration: on rendered clips the live loop's detector (0.8 scale, upsample 0) puts its box a little
# right of and below the photo's own HOG box (median +3.5 % and +2.5 % of the width, 860 detections
# over the ten scenarios); the ground truth is moved by that much so that the two agree on average.
GT_SHIFT = (0.035, 0.025)
VERSION = 4  # bump when generation changes, so that --keep folders are rebuilt

# scenario -> (family, options). Scenarios of one family share their layouts (same people, photos and
# motion for a layout index), so that handover0/2/5 and enroll1/5 differ only in what their name says.
SCENARIOS: dict[str, tuple[str, dict]] = {
    "walkup": ("walkup", {}),
    "handover0": ("handover", {"gap": 0}),
    "handover2": ("handover", {"gap": 2}),
    "handover5": ("handover", {"gap": 5}),
    "crossing": ("crossing", {}),
    "tailgate": ("tailgate", {}),
    "cut": ("cut", {}),
    "degraded": ("degraded", {}),
    "enroll1": ("enroll", {"gallery_n": 1}),
    "enroll5": ("enroll", {"gallery_n": 5}),
}
GALLERY_N = 3  # gallery photos per enrolled person, except enroll1/enroll5
ENROLLED_PER_CLIP = 4
DEGRADATIONS = ("blur", "dim", "jpeg", "scarf")
FRAME_EFFECTS = ("blur", "dim", "jpeg")  # applied to the whole frame while that visit is in view


# -- people and photos -----------------------------------------------------------------------
def split_people(data: Path) -> dict[str, list[str]]:
    people = sorted(d.name for d in (data / "identities").iterdir() if d.is_dir())
    random.Random(SPLIT_SEED).shuffle(people)
    half = len(people) // 2
    return {"tune": people[:half], "report": people[half:]}


def photos_of(data: Path, person: str) -> list[Path]:
    return sorted((data / "identities" / person).glob("*.jpg"), key=lambda p: int(p.stem))


class _Hog:
    """dlib's frontal HOG detector, one per thread (the detector object is not documented as thread-safe)."""

    _local = threading.local()

    @classmethod
    def get(cls):
        if not hasattr(cls._local, "detector"):
            import dlib

            cls._local.detector = dlib.get_frontal_face_detector()
        return cls._local.detector


class PhotoBook:
    """Which photos can be pasted as a face, and where their face box is.

    A photo is used in a clip only when HOG (upsample 1) finds its face near the
    centre and no second face inside the pasted crop: a clip must not contain
    faces the ground truth does not know about. The photo's own HOG box is the
    ground truth box, so ground truth and detector agree on what "the face" is.
    """

    def __init__(self) -> None:
        self._boxes: dict[Path, tuple[float, float, float, float] | None] = {}
        self._lock = threading.Lock()

    def face(self, photo: Path) -> tuple[float, float, float, float] | None:
        with self._lock:
            if photo in self._boxes:
                return self._boxes[photo]
        box = self._measure(photo)
        with self._lock:
            self._boxes[photo] = box
        return box

    @staticmethod
    def _measure(photo: Path) -> tuple[float, float, float, float] | None:
        gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
        if gray is None or gray.shape != (PHOTO, PHOTO):
            return None
        rects = list(_Hog.get()(gray, 1))
        boxes = [(r.top(), r.right(), r.bottom(), r.left()) for r in rects]
        inside = [b for b in boxes if CROP_OFF < (b[1] + b[3]) / 2 < PHOTO - CROP_OFF]
        inside = [b for b in inside if CROP_OFF < (b[0] + b[2]) / 2 < PHOTO - CROP_OFF]
        if len(inside) != 1:
            return None  # no face, or a second face that would be pasted too
        t, r, b, le = inside[0]
        cx, cy = (le + r) / 2, (t + b) / 2
        if abs(cx - 125) > 25 or abs(cy - 130) > 25 or not 80 <= r - le <= 140:
            return None  # an odd alignment: the crop would cut the face
        return float(t), float(r), float(b), float(le)

    def pick(self, photos: list[Path], rng: random.Random) -> tuple[Path, tuple[float, float, float, float]]:
        order = list(photos)
        rng.shuffle(order)
        for p in order:
            box = self.face(p)
            if box is not None:
                return p, box
        raise RuntimeError(f"no usable photo among {[str(p) for p in photos]}")


# -- scene description -----------------------------------------------------------------------
@dataclass
class SceneVisit(Visit):
    """One appearance of one person. `boxes` are inner-face boxes, clipped to the frame."""

    vid: int = 0
    note: str = ""  # e.g. the degradation of this visit
    visible: dict[int, float] = field(default_factory=dict)  # frame -> visible fraction of the face box
    detectable: list[int] = field(default_factory=list)  # frames where live-loop HOG finds this face


@dataclass
class Actor:
    """How a visit moves: frame -> (face centre x, face centre y, face width in px)."""

    vid: int
    photo: Path
    face: tuple[float, float, float, float]  # face box in photo pixels (top, right, bottom, left)
    path: dict[int, tuple[float, float, float]]
    z: int = 0  # paste order: higher is in front
    effect: str | None = None
    scarf_bgr: tuple[int, int, int] = (40, 35, 35)


@dataclass
class Background:
    kind: str  # image, plain or gradient
    image: str = ""  # negatives/ file name
    crop: tuple[float, float, float] = (0.0, 0.0, 1.0)  # x, y (0..1 of the slack) and size (0..1) of a 4:3 crop
    flip: bool = False
    gain: float = 1.0
    colours: tuple[tuple[int, int, int], ...] = ((128, 128, 128),)
    vertical: bool = True


@dataclass
class Scene:
    half: str
    scenario: str
    layout: int
    seed: int
    frames: int
    visits: list[SceneVisit]
    gallery: dict[str, list[str]]  # enrolled person -> photos to enroll (relative to the data folder)
    actors: list[Actor] = field(default_factory=list, repr=False)
    backgrounds: list[Background] = field(default_factory=list, repr=False)
    background_at: list[int] = field(default_factory=list, repr=False)  # frame -> index into backgrounds
    noise_seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.half}-{self.scenario}-{self.layout}"

    def key(self) -> str:
        """What the clip depends on: a --keep folder with another key is rebuilt."""
        return f"v{VERSION}:{self.half}:{self.scenario}:{self.layout}:{self.seed}"


# -- planning ----------------------------------------------------------------------------------
class _Plan:
    """Collects visits and actors while a scenario script runs."""

    def __init__(self, data: Path, book: PhotoBook, rng: random.Random, clip_from: int) -> None:
        self.data, self.book, self.rng = data, book, rng
        self.clip_from = clip_from  # enrolled people appear in photos numbered above this
        self.visits: list[SceneVisit] = []
        self.actors: list[Actor] = []

    def add(
        self,
        person: str,
        enrolled: bool,
        path: dict[int, tuple[float, float, float]],
        z: int = 0,
        effect: str | None = None,
    ) -> Actor:
        photos = photos_of(self.data, person)
        if enrolled:
            photos = [p for p in photos if int(p.stem) > self.clip_from]  # never a gallery photo
        photo, face = self.book.pick(photos, self.rng)
        vid = len(self.visits)
        rel = str(photo.relative_to(self.data))
        frames = sorted(path)
        self.visits.append(SceneVisit(person, rel, enrolled, frames[0], frames[-1], {}, vid=vid, note=effect or ""))
        scarf = tuple(self.rng.randint(15, 60) for _ in range(3))
        actor = Actor(vid, photo, face, path, z, effect, scarf)  # type: ignore[arg-type]
        self.actors.append(actor)
        return actor


def _perspective(s0: float, s1: float, p: float) -> float:
    """Apparent size at progress p of a walk at constant speed from size s0 to s1 (size ~ 1/distance)."""
    return 1.0 / (1.0 / s0 + (1.0 / s1 - 1.0 / s0) * p)


def _walkup(rng: random.Random, start: int) -> tuple[dict[int, tuple[float, float, float]], int]:
    """A walk from far (~50 px face) to near (~160 px), then out of the frame sideways. Returns (path, end)."""
    length = rng.randint(60, 90)
    s0, s1 = rng.uniform(46, 54), rng.uniform(150, 166)
    x0, y0 = rng.uniform(110, 530), rng.uniform(150, 250)
    x1, y1 = rng.uniform(230, 410), rng.uniform(210, 270)
    bob, phase = rng.uniform(1.0, 3.0), rng.uniform(0, 6.28)
    path: dict[int, tuple[float, float, float]] = {}
    for i in range(length):
        size = _perspective(s0, s1, i / (length - 1))
        q = (size - s0) / (s1 - s0)  # the face drifts towards the door as it grows
        cx = x0 + (x1 - x0) * q
        cy = y0 + (y1 - y0) * q + bob * np.sin(phase + i * 0.45) * size / 100  # walking bob
        path[start + i] = (cx, cy, size)
    cx, cy, size = path[start + length - 1]
    direction = -1 if cx < WIDTH / 2 else 1
    leave = rng.randint(6, 10)
    for j in range(1, leave + 1):  # out of the frame through the nearer side
        path[start + length - 1 + j] = (cx + direction * j * (WIDTH / 2 + size) / leave, cy, size)
    return path, start + length - 1 + leave


def _mix(rng: random.Random, enrolled: list[str], strangers: list[str], n_enrolled: int, n_strangers: int):
    people = [(p, True) for p in enrolled[:n_enrolled]] + [(p, False) for p in strangers[:n_strangers]]
    rng.shuffle(people)
    return people


def _script_walkups(plan: _Plan, people: list[tuple[str, bool]], effects: list[str | None] | None = None) -> int:
    rng = plan.rng
    f = rng.randint(3, 8)
    for i, (person, enrolled) in enumerate(people):
        path, end = _walkup(rng, f)
        plan.add(person, enrolled, path, effect=effects[i] if effects else None)
        f = end + 1 + rng.randint(10, 20)  # 10-20 empty frames between people
    return f


def _script_handover(plan: _Plan, people: list[tuple[str, bool]], gap: int) -> int:
    rng = plan.rng
    cx, cy, size = rng.uniform(200, 440), rng.uniform(190, 290), rng.uniform(110, 150)
    stays = [rng.randint(30, 45) for _ in people]
    wobble = [(rng.uniform(0, 6.28), rng.uniform(0, 6.28), rng.uniform(-3, 3)) for _ in people]
    f = 5
    for (person, enrolled), stay, (px, py, ds) in zip(people, stays, wobble, strict=True):
        path = {}
        for i in range(stay):  # the same spot and size, give or take a few pixels
            path[f + i] = (cx + 3 * np.sin(px + i * 0.2), cy + 2 * np.sin(py + i * 0.17), size + ds)
        plan.add(person, enrolled, path)
        f += stay + gap
    return f - gap + 10


def _script_crossing(plan: _Plan, pairs: list[tuple[tuple[str, bool], tuple[str, bool]]]) -> int:
    rng = plan.rng
    f = 5
    for a, b in pairs:
        length = rng.randint(80, 120)
        y = rng.uniform(180, 290)
        dy = rng.uniform(-20, 20)
        sa = rng.uniform(100, 140)
        sb = sa * rng.uniform(0.85, 1.15)
        lag = rng.randint(-8, 8)  # they need not be exactly mid-frame together
        front = rng.random() < 0.5
        for (person, enrolled), size, yy, l2r, delay, z in (
            (a, sa, y, True, 0, int(front)),
            (b, sb, y + dy, False, lag, int(not front)),
        ):
            x0, x1 = (-size * 0.4, WIDTH + size * 0.4) if l2r else (WIDTH + size * 0.4, -size * 0.4)
            path = {}
            for i in range(length):
                p = i / (length - 1)
                path[f + delay + i] = (x0 + (x1 - x0) * p, yy + 2 * np.sin(i * 0.4), size)
            plan.add(person, enrolled, path, z=z)
        f += length + abs(lag) + rng.randint(15, 25)
    return f


def _script_tailgate(plan: _Plan, pairs: list[tuple[str, str]]) -> int:
    """An enrolled person walks up to the door; a stranger steps in beside/behind them; the enrolled one leaves."""
    rng = plan.rng
    f = 5
    for member, stranger in pairs:
        door_x, door_y, near = rng.uniform(260, 380), rng.uniform(210, 270), rng.uniform(130, 150)
        side = rng.choice((-1, 1))  # where the stranger stands, relative to the member
        from_x = door_x - side * rng.uniform(120, 200)
        approach, stay, leave = rng.randint(25, 35), rng.randint(40, 55), rng.randint(12, 18)
        a: dict[int, tuple[float, float, float]] = {}
        for i in range(approach):
            p = i / (approach - 1)
            a[f + i] = (from_x + (door_x - from_x) * p, door_y + 10 * (1 - p), _perspective(85, near, p))
        for i in range(stay):
            a[f + approach + i] = (door_x + 2 * np.sin(i * 0.3), door_y + 1.5 * np.sin(i * 0.23), near)
        t_leave = f + approach + stay
        for i in range(1, leave + 1):  # away from the stranger and out of the frame
            a[t_leave - 1 + i] = (door_x - side * i * (WIDTH / 2 + near) / leave, door_y, near)
        plan.add(member, True, a, z=1)

        # the stranger: slightly smaller (a step behind), partly hidden by the member
        b: dict[int, tuple[float, float, float]] = {}
        t_in = f + approach + rng.randint(5, 15)
        bsize = near * rng.uniform(0.75, 0.88)
        bx, by = door_x + side * near * rng.uniform(0.55, 0.75), door_y - near * rng.uniform(0.0, 0.15)
        emerge = rng.random() < 0.5  # from behind the member, or in from the side of the frame
        sx = door_x if emerge else (WIDTH + bsize * 0.4 if side > 0 else -bsize * 0.4)
        steps = rng.randint(10, 15)
        for i in range(steps):
            p = (i + 1) / steps
            b[t_in + i] = (sx + (bx - sx) * p, door_y + (by - door_y) * p, bsize)
        for t in range(t_in + steps, t_leave + leave):
            b[t] = (bx + 1.5 * np.sin(t * 0.27), by, bsize)
        t = t_leave + leave
        move = rng.randint(12, 20)
        for i in range(move):  # then takes the member's place at the door
            p = (i + 1) / move
            b[t + i] = (bx + (door_x - bx) * p, by + (door_y - by) * p, bsize + (near - bsize) * p)
        t += move
        for i in range(rng.randint(20, 30)):
            b[t + i] = (door_x + 2 * np.sin(i * 0.3), door_y, near)
        t = max(b) + 1
        for i in range(1, 9):
            b[t - 1 + i] = (door_x + side * i * (WIDTH / 2 + near) / 8, door_y, near)
        plan.add(stranger, False, b, z=0)
        f = max(b) + 1 + rng.randint(15, 25)
    return f


def _script_cut(plan: _Plan, people: list[tuple[str, bool]], new_background: Callable[[], int]) -> tuple[int, list]:
    """Shots of one person each; at every cut the whole frame (background too) switches to the next person."""
    rng = plan.rng
    f = 0
    cx, cy, size = rng.uniform(200, 440), rng.uniform(190, 290), rng.uniform(105, 150)
    background_at: list[int] = []
    for k, (person, enrolled) in enumerate(people):
        if k:  # a nearby spot, a similar size
            cx = float(np.clip(cx + rng.choice((-1, 1)) * rng.uniform(10, 40), 140, 500))
            cy = float(np.clip(cy + rng.choice((-1, 1)) * rng.uniform(5, 30), 170, 310))
            size = float(np.clip(size * rng.uniform(0.9, 1.1), 100, 160))
        shot = rng.randint(30, 45)
        vx, vy = rng.uniform(-1, 1), rng.uniform(-0.5, 0.5)
        path = {f + i: (cx + vx * i, cy + vy * i, size + 0.1 * i) for i in range(shot)}
        plan.add(person, enrolled, path)
        background_at += [new_background()] * shot
        f += shot
    return f, background_at


def _random_background(rng: random.Random, data: Path) -> Background:
    kind = rng.choices(("image", "plain", "gradient"), weights=(3, 1, 1))[0]
    if kind == "image":
        names = sorted(p.name for p in (data / "negatives").iterdir() if p.suffix.lower() in (".jpg", ".png"))
        return Background(
            "image",
            image=rng.choice(names),
            crop=(rng.random(), rng.random(), rng.uniform(0.6, 1.0)),
            flip=rng.random() < 0.5,
            gain=rng.uniform(0.5, 1.0),
        )
    colours = tuple(tuple(rng.randint(30, 220) for _ in range(3)) for _ in range(1 if kind == "plain" else 2))
    return Background(kind, colours=colours, vertical=rng.random() < 0.5)  # type: ignore[arg-type]


def plan_scene(data: Path, half: str, scenario: str, layout: int, seed: int, book: PhotoBook) -> Scene:
    family, options = SCENARIOS[scenario]
    rng = random.Random(f"{seed}:{family}:{layout}")  # per family, so that its scenarios share layouts
    pool = split_people(data)[half]
    gallery_n = options.get("gallery_n", GALLERY_N)
    clip_from = 5 if family == "enroll" else GALLERY_N  # enroll1 and enroll5 show the same photos
    # an enrolled person needs at least two photos beyond the gallery to choose from
    candidates = [p for p in pool if len(photos_of(data, p)) >= clip_from + 2]
    enrolled = rng.sample(candidates, ENROLLED_PER_CLIP)
    strangers = [p for p in pool if p not in enrolled]
    rng.shuffle(strangers)
    plan = _Plan(data, book, rng, clip_from)
    backgrounds = [_random_background(rng, data)]
    background_at: list[int] = []

    if family == "walkup":
        n = rng.choice((2, 3))
        frames = _script_walkups(plan, _mix(rng, enrolled, strangers, n, 5 - n))
    elif family == "enroll":
        frames = _script_walkups(plan, _mix(rng, enrolled, strangers, 4, 2))
    elif family == "degraded":
        # each degradation once on an enrolled person (is the name still found?) and once on a
        # stranger (does the worse face match someone enrolled?)
        people = [(p, True) for p in enrolled] + [(p, False) for p in strangers[:4]]
        effects: list[str | None] = list(DEGRADATIONS) + list(DEGRADATIONS)
        order = list(range(8))
        rng.shuffle(order)
        frames = _script_walkups(plan, [people[i] for i in order], [effects[i] for i in order])
    elif family == "handover":
        frames = _script_handover(plan, _mix(rng, enrolled, strangers, 4, 4), options["gap"])
    elif family == "crossing":
        # three crossings, each with an enrolled person; the other is enrolled or a stranger
        others = [(enrolled[3], True), (strangers[0], False), (strangers[1], False), (strangers[2], False)]
        rng.shuffle(others)
        frames = _script_crossing(plan, [((enrolled[i], True), others[i]) for i in range(3)])
    elif family == "tailgate":
        frames = _script_tailgate(plan, [(enrolled[i], strangers[i]) for i in range(3)])
    elif family == "cut":

        def new_background() -> int:
            backgrounds.append(_random_background(rng, data))
            return len(backgrounds) - 1

        frames, background_at = _script_cut(plan, _mix(rng, enrolled, strangers, 4, 4), new_background)
    else:
        raise ValueError(family)
    frames = max(frames, max(max(a.path) for a in plan.actors) + 1)
    background_at += [len(backgrounds) - 1] * (frames - len(background_at))
    gallery = {
        p: [str(q.relative_to(data)) for q in photos_of(data, p)[:gallery_n]] for p in enrolled
    }  # photos 1..k: never shown in a clip
    return Scene(
        half,
        scenario,
        layout,
        seed,
        frames,
        plan.visits,
        gallery,
        plan.actors,
        backgrounds,
        background_at,
        noise_seed=rng.randrange(2**31),
    )


# -- rendering ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _negative(path: str) -> np.ndarray:
    return cv2.imread(path, cv2.IMREAD_COLOR)


def render_background(bg: Background, data: Path) -> np.ndarray:
    if bg.kind == "image":
        img = _negative(str(data / "negatives" / bg.image))
        h, w = img.shape[:2]
        cw = min(w, h * 4 / 3) * bg.crop[2]
        ch = cw * 3 / 4
        x, y = int((w - cw) * bg.crop[0]), int((h - ch) * bg.crop[1])
        out = cv2.resize(img[y : y + int(ch), x : x + int(cw)], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        if bg.flip:
            out = out[:, ::-1]
        return np.clip(out.astype(np.float32) * bg.gain, 0, 255).astype(np.uint8)
    if bg.kind == "plain":
        return np.full((HEIGHT, WIDTH, 3), bg.colours[0], np.uint8)
    n = HEIGHT if bg.vertical else WIDTH
    ramp = np.linspace(0, 1, n, dtype=np.float32)[:, None]
    line = (1 - ramp) * np.array(bg.colours[0], np.float32) + ramp * np.array(bg.colours[1], np.float32)
    if bg.vertical:
        return np.repeat(line[:, None, :], WIDTH, axis=1).astype(np.uint8)
    return np.repeat(line[None, :, :], HEIGHT, axis=0).astype(np.uint8)


@functools.lru_cache(maxsize=512)
def _mask(size: int) -> np.ndarray:
    return _soft_mask(size)


def _sprite_source(actor: Actor) -> np.ndarray:
    photo = cv2.imread(str(actor.photo), cv2.IMREAD_COLOR)
    crop = photo[CROP_OFF : CROP_OFF + CROP, CROP_OFF : CROP_OFF + CROP].copy()
    if actor.effect == "scarf":
        # a dark band over the lower third of the face (mouth, chin) and below, as a scarf or a mask would
        t, r, b, le = (v - CROP_OFF for v in actor.face)
        h, w = b - t, r - le
        band = np.zeros(crop.shape[:2], np.float32)
        y0, y1 = int(t + 0.64 * h), int(min(CROP, b + 0.5 * h))
        band[y0:y1, max(0, int(le - 0.2 * w)) : min(CROP, int(r + 0.2 * w))] = 1.0
        band = cv2.GaussianBlur(band, (0, 0), 2.0)[..., None]
        cloth = np.empty_like(crop)
        cloth[:] = actor.scarf_bgr
        stripes = (np.arange(CROP)[:, None] % 6 < 3).astype(np.int16) * 10  # a knit texture
        cloth = np.clip(cloth.astype(np.int16) + stripes[..., None], 0, 255).astype(np.uint8)
        crop = (band * cloth + (1 - band) * crop).astype(np.uint8)
    return crop


def _place(actor: Actor, cx: float, cy: float, size: float) -> tuple[int, int, int, list[float]]:
    """Sprite side and top-left for a face of width `size` centred at (cx, cy), and the unclipped face box."""
    t, r, b, le = actor.face
    s = size / (r - le)
    side = max(8, round(CROP * s))
    s = side / CROP
    fx, fy = ((le + r) / 2 - CROP_OFF) * s, ((t + b) / 2 - CROP_OFF) * s
    top, left = round(cy - fy), round(cx - fx)
    dx, dy = GT_SHIFT[0] * size, GT_SHIFT[1] * size
    box = [
        top + (t - CROP_OFF) * s + dy,
        left + (r - CROP_OFF) * s + dx,
        top + (b - CROP_OFF) * s + dy,
        left + (le - CROP_OFF) * s + dx,
    ]
    return side, top, left, box


def render_scene(scene: Scene, data: Path, out: Path) -> None:
    """Write the clip to `out` (mp4v) and fill each visit's boxes and visibility."""
    sources = {a.vid: _sprite_source(a) for a in scene.actors}
    backgrounds = [render_background(bg, data) for bg in scene.backgrounds]
    nrng = np.random.default_rng(scene.noise_seed)
    # sensor noise, a few frames of it cycled: a clip of perfectly still pixels is not a camera
    noise = [nrng.normal(0, 2.5, (HEIGHT, WIDTH, 3)).astype(np.float32) for _ in range(7)]
    for v in scene.visits:
        v.boxes, v.visible = {}, {}
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    try:
        for f in range(scene.frames):
            frame = backgrounds[scene.background_at[f]].copy()
            owner = np.full((HEIGHT, WIDTH), -1, np.int16)  # which visit's pixels are on top, for visibility
            present = sorted((a for a in scene.actors if f in a.path), key=lambda a: a.z)
            boxes: dict[int, list[float]] = {}
            for a in present:
                side, top, left, box = _place(a, *a.path[f])
                boxes[a.vid] = box
                y0, y1, x0, x1 = max(top, 0), min(top + side, HEIGHT), max(left, 0), min(left + side, WIDTH)
                if y0 >= y1 or x0 >= x1:
                    continue
                src = sources[a.vid]
                interp = cv2.INTER_AREA if side < CROP else cv2.INTER_LINEAR
                patch = cv2.resize(src, (side, side), interpolation=interp)[y0 - top : y1 - top, x0 - left : x1 - left]
                mask = _mask(side)[y0 - top : y1 - top, x0 - left : x1 - left]
                region = frame[y0:y1, x0:x1].astype(np.float32)
                frame[y0:y1, x0:x1] = (mask * patch + (1 - mask) * region).astype(np.uint8)
                owner[y0:y1, x0:x1][mask[..., 0] > 0.5] = a.vid
            for a in present:
                t, r, b, le = boxes[a.vid]
                area = max((r - le) * (b - t), 1.0)
                ct, cr, cb, cl = max(round(t), 0), min(round(r), WIDTH), min(round(b), HEIGHT), max(round(le), 0)
                if cb <= ct or cr <= cl:
                    continue
                seen = float((owner[ct:cb, cl:cr] == a.vid).sum()) / area
                if seen <= 0.02:
                    continue  # out of the frame or hidden: nobody can see this face
                visit = scene.visits[a.vid]
                visit.boxes[f] = [ct, cr, cb, cl]
                visit.visible[f] = round(min(seen, 1.0), 3)
            effects = {a.effect for a in present if a.effect in FRAME_EFFECTS}
            if "blur" in effects:  # out of focus / motion
                frame = cv2.GaussianBlur(frame, (0, 0), 2.2)
            img = frame.astype(np.float32)
            if "dim" in effects:  # dim light: brightness x0.35
                img *= 0.35
            frame = np.clip(img + noise[f % len(noise)], 0, 255).astype(np.uint8)
            if "jpeg" in effects:  # a starved encoder or a cheap camera
                frame = cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 15])[1], cv2.IMREAD_COLOR)
            writer.write(frame)
    finally:
        writer.release()
    for v in scene.visits:  # first and last frame in view (a visit may start or end off-frame)
        if v.boxes:
            v.start, v.end = min(v.boxes), max(v.boxes)


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


LIVE_SCALE = 0.8  # livecam's live loop: HOG at upsample 0 on gray scaled by 80 / live.min_face_px (100)


def live_detections(gray: np.ndarray) -> list[list[float]]:
    small = cv2.resize(gray, None, fx=LIVE_SCALE, fy=LIVE_SCALE, interpolation=cv2.INTER_AREA)
    return [
        [r.top() / LIVE_SCALE, r.right() / LIVE_SCALE, r.bottom() / LIVE_SCALE, r.left() / LIVE_SCALE]
        for r in _Hog.get()(small, 0)
    ]


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


def draw_truth(image: np.ndarray, visits: list[SceneVisit], f: int, dets: list[list[float]] | None = None) -> None:
    """Ground-truth boxes (green: enrolled, red: stranger) and, if given, detections (yellow) on `image`."""
    for v in visits:
        box = v.boxes.get(f)
        if box is None:
            continue
        t, r, b, le = box
        colour = (0, 200, 0) if v.enrolled else (0, 0, 230)
        cv2.rectangle(image, (le, t), (r, b), colour, 2)
        label = f"{v.vid}:{v.person[:14]} {v.visible.get(f, 1):.2f} {v.note}"
        cv2.putText(image, label, (le, max(12, t - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    for d in dets or []:
        t, r, b, le = (round(x) for x in d)
        cv2.rectangle(image, (le, t), (r, b), (0, 230, 230), 1)


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
            for r in _Hog.get()(np.ascontiguousarray(rgb), upsample)
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
