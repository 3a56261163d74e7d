"""The clips of a run and getting each ready: a Job per clip (a generated scene, the Hamilton clip or an
HDTF clip), which jobs a run has (build_jobs), and each clip's preparation: the rendered clip, its ground
truth and its gallery, kept in the job's folder and reused from a --keep folder while current.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from door_clip import write_gallery

from doorbench.people import PhotoBook, photos_of, split_people
from doorbench.render import render_scene
from doorbench.scenes import GALLERY_N, VERSION, Scene, plan_scene
from doorbench.truth import load_truth, mark_detectable, real_truth, save_scene

SIDES = ("livecam", "peer")
HAMILTON = "short_hamilton_clip.mp4"
HAMILTON_PERSON = "Lin_Manuel_Miranda"


@dataclass
class Job:
    """One clip of the run: what it is, where its files are, and (once run) its truth and results per side."""

    name: str  # e.g. report-walkup-0
    scenario: str  # table row
    kind: str  # scene, hamilton or hdtf
    folder: Path
    scene: Scene | None = None
    clip: Path | None = None  # real clips: the data file
    gallery: Path | None = None  # real clips: their gallery folder
    gallery_photos: dict[str, list[Path]] = field(default_factory=dict)  # real clips: what it holds
    results: dict = field(default_factory=dict)
    truth: dict = field(default_factory=dict)
    error: str | None = None


def build_jobs(args: argparse.Namespace, data: Path, root: Path) -> list[Job]:
    book = PhotoBook()
    jobs: list[Job] = []
    if args.real:
        videos = data / "videos"
        folder = root / "real-hamilton"
        lin = {HAMILTON_PERSON: _photos(data / "identities_extra" / HAMILTON_PERSON)}
        jobs.append(
            Job("real-hamilton", "hamilton", "hamilton", folder, None, videos / HAMILTON, folder / "known_faces", lin)
        )
        # HDTF speakers are not enrolled; everyone of the half is, from photos 1..3, in one shared gallery
        half_gallery = {p: photos_of(data, p)[:GALLERY_N] for p in split_people(data)[args.half]}
        shared = root / f"{args.half}-hdtf-gallery"
        ensure_gallery(shared, half_gallery)
        for clip in sorted(videos.glob("hdtf_*.mp4")):
            name = f"{args.half}-real-{clip.stem}"
            jobs.append(Job(name, "hdtf", "hdtf", root / name, None, clip, shared, half_gallery))
    for sc in args.scenarios:
        for layout in range(args.layouts):
            scene = plan_scene(data, args.half, sc, layout, args.seed, book)
            jobs.append(Job(scene.name, sc, "scene", root / scene.name, scene=scene))
    return jobs


# -- preparing clips ---------------------------------------------------------------------------------
def prepare_scene(job: Job, data: Path) -> None:
    """Render the clip, its ground truth and detectability, and its gallery; reuse a --keep folder when current."""
    scene = job.scene
    assert scene is not None
    truth_path = job.folder / "truth.json"
    if truth_path.exists() and (job.folder / "clip.mp4").exists() and (job.folder / "known_faces").is_dir():
        truth = load_truth(truth_path)
        if truth.get("key") == scene.key():
            job.truth = truth
            return
    shutil.rmtree(job.folder, ignore_errors=True)
    job.folder.mkdir(parents=True)
    clip = job.folder / "clip.mp4"
    render_scene(scene, data, clip)
    check = mark_detectable(scene.visits, clip, scene.frames)
    write_gallery({p: [data / q for q in photos] for p, photos in scene.gallery.items()}, job.folder / "known_faces")
    save_scene(scene, truth_path, check)
    job.truth = load_truth(truth_path)


def ensure_gallery(folder: Path, photos: dict[str, list[Path]]) -> None:
    """A known_faces folder holding exactly `photos` (kept when it already does: its encodings cache stays)."""
    listing = folder / ".door-bench-gallery.json"
    want = json.dumps({p: [str(x) for x in ph] for p, ph in sorted(photos.items())})
    if listing.exists() and listing.read_text() == want:
        return
    shutil.rmtree(folder, ignore_errors=True)
    write_gallery(photos, folder)
    listing.write_text(want)


def prepare_real(job: Job, data: Path) -> None:
    """Gallery folder and (for Hamilton) shot labels, kept in the folder like a scene's."""
    job.folder.mkdir(parents=True, exist_ok=True)
    assert job.clip is not None and job.gallery is not None
    if job.gallery.parent == job.folder:  # its own gallery (HDTF clips share one, built by build_jobs)
        ensure_gallery(job.gallery, job.gallery_photos)
    if job.kind != "hamilton":
        job.truth = {"frames": None}
        return
    truth_path = job.folder / "truth.json"
    if truth_path.exists():
        job.truth = json.loads(truth_path.read_text())
        if job.truth.get("version") == VERSION:
            return
    refs = {
        HAMILTON_PERSON: job.gallery_photos[HAMILTON_PERSON],
        "Barack_Obama": _photos(data / "identities_extra/Barack_Obama"),
    }
    job.truth = {**real_truth(job.clip, HAMILTON_PERSON, refs), "version": VERSION}
    truth_path.write_text(json.dumps(job.truth))


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
