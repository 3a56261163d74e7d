"""Planning a scene: the scenario scripts, who appears (actors and their visits), where and how they move,
and over which backgrounds. Nothing is drawn here (render.py draws a planned scene).

A scene is one short 640x480 30 fps clip: real LFW photos (centre crop, soft
elliptical mask, as in door_clip.py) moving and scaling over a background.
Every frame records, for every face in view, the ground-truth box of the
*inner face* (what dlib's HOG detector returns, not the pasted square), how
much of that box is visible, and whose face it is.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from door_clip import WIDTH, Visit

from doorbench.people import PhotoBook, photos_of, split_people

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
