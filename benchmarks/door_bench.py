"""Door benchmark over many generated clips: livecam vs face_recognition's webcam_faster logic.

    .venv/bin/python benchmarks/door_bench.py                       # report half, 3 layouts, + real clips
    .venv/bin/python benchmarks/door_bench.py --half tune --layouts 1 -v --png /tmp/sheets
    .venv/bin/python benchmarks/door_bench.py --half tune --config my.yaml --no-peer --keep /tmp/door
    .venv/bin/python benchmarks/door_bench.py --scenarios handover0,cut --livecam-args="--frames 200"

The photos come from --data (default $LIVECAM_TEST_DATA, else ../shared/data/faces); clips, galleries
and runs go to a temporary folder (or --keep DIR, outside the repository, reused while current).
The peer needs `.venv/bin/python -m pip install --no-deps face_recognition==1.3.0` and pillow (as
`make bench` does). The default run takes ~6-8 minutes on 2 cores; --json writes every figure and
every visit, -v prints each failing visit (who, which frames, what name).

Why: one clip can be tuned to. Here the 64 LFW people of identities/ are split
once (fixed seed) into a "tune" and a "report" half; each scenario below is
generated `--layouts` times from the chosen half with random people, photos,
positions, backgrounds and speeds (benchmarks/door_scenes.py), and every frame
has ground truth. Tune on `--half tune`, report `--half report`.

Scenarios (4 enrolled people per clip, enrolled from 3 photos never shown in the clip; the rest strangers):
  walkup       5 people one at a time walk up (face ~50 -> ~160 px), 10-20 empty frames between
  handover0/2/5  8 people one after another at the same spot and size, 0/2/5 empty frames between
  crossing     3 times two people walk across in opposite directions; their faces overlap mid-frame
  tailgate     3 times: an enrolled person at the door, a stranger steps in beside/behind, the member leaves
  cut          8 shots: at each cut the whole frame switches to another person at a nearby spot
  degraded     8 walk-ups: blur, dim light (x0.35), JPEG quality 15, a scarf over the lower face,
               each once on an enrolled person and once on a stranger
  enroll1/5    6 walk-ups (4 enrolled, 2 strangers); enrolled people have 1 vs 5 gallery photos
  (handover0/2/5 share their layouts, as do enroll1/5: same people, photos and motion.)
Real clips (`--real`, default on): short_hamilton_clip.mp4 with Lin_Manuel_Miranda enrolled (a Lin
label in the audience shot after the cut at frame 211 is wrong), and the HDTF clips (speakers not
enrolled: every name is wrong) with all people of the half enrolled.

Each drawn face is attributed to the ground-truth face it overlaps best (IoU >= 0.3, or its centre
inside the gt box; well-visible faces first). Metrics per scenario, livecam / peer:
  wrong frames      frame-faces with a name that is not the true person's (in brackets: of these,
                    names on a box that matches no face at all, e.g. a box left behind)
  strangers named   stranger visits given any name at any frame / stranger visits
  enrolled named    enrolled visits whose right name appeared at least once / enrolled visits
  latency           frames from the first frame the live detector (HOG, 0.8 scale, upsample 0, as
                    livecam's live loop) finds the face to the first frame with the right name; median
                    and p90 over named visits (negative: named before that detector could see it)
  unknown events    livecam "unknown" events on enrolled visits that were also recognized (in any
                    track); in brackets all unknown events on enrolled visits
  wrong events      livecam "recognized" events naming someone else (a stranger or another person)
  tracks spanning 2 livecam tracks whose boxes were attributed to two or more visits
  fps               offline, each side on its own, `--jobs` clips at a time (so not an isolated figure)
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_live import LIVECAM, records, run_livecam, run_peer  # noqa: E402
from cpu_quota import QuotaUnavailable, cpu_quota  # noqa: E402
from door_clip import write_gallery  # noqa: E402
from door_scenes import (  # noqa: E402
    GALLERY_N,
    SCENARIOS,
    SPLIT_SEED,
    VERSION,
    PhotoBook,
    Scene,
    SceneVisit,
    attribute,
    draw_truth,
    live_detections,
    load_truth,
    mark_detectable,
    photos_of,
    plan_scene,
    real_truth,
    render_scene,
    save_scene,
    split_people,
    truth_by_frame,
)

SIDES = ("livecam", "peer")
HAMILTON = "short_hamilton_clip.mp4"
HAMILTON_PERSON = "Lin_Manuel_Miranda"
NOT_A_NAME = (None, "unknown")


@dataclass
class Job:
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


# -- running both sides ------------------------------------------------------------------------------
_warm_locks: dict[Path, threading.Lock] = defaultdict(threading.Lock)
_CORES: queue.Queue[int] = queue.Queue()  # --cpu-quota: the cores free for a clip (main fills it, one per job)
_warm_guard = threading.Lock()


def _livecam_config(config: Path | None, run_dir: Path) -> None:
    """Put the config to compare into the run folder as ./config.yaml, which livecam reads by default.

    bench_live.run_livecam puts its arguments after `run`, where the global
    --config cannot go; and livecam resolves relative paths against the config's
    folder, so events.jsonl and unknown/ are pointed at the run folder (each clip
    its own), and models_dir is made absolute. Each clip also gets its own camera
    name: two clips run at once would both be "clip", and a camera name is held by
    one run at a time.
    """
    cfg = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}) if config else {}
    base = config.resolve().parent if config else run_dir
    camera = cfg.setdefault("camera", {}) or {}
    camera["name"] = re.sub(r"[^A-Za-z0-9_-]", "-", run_dir.parent.name)[:64]
    cfg["camera"] = camera
    if cfg.get("models_dir"):
        cfg["models_dir"] = str((base / Path(cfg["models_dir"]).expanduser()).resolve())
    cfg.pop("known_faces", None)  # each clip has its own gallery (--known-faces)
    door = cfg.setdefault("door", {}) or {}
    door["events_log"], door["unknown_dir"] = "events.jsonl", "unknown"
    cfg["door"] = door
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def run_sides(job: Job, clip: Path, gallery: Path, args: argparse.Namespace) -> dict:
    run_dir = job.folder / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    # livecam runs in run_dir (bench_live runs it beside the clip): events.jsonl and unknown/ land there
    link = run_dir / ("clip" + clip.suffix)
    link.symlink_to(clip.resolve())
    _livecam_config(args.config, run_dir)
    with _warm_guard:
        lock = _warm_locks[gallery.resolve()]
    with lock:  # encode the gallery once (its cache) before timing, and never twice at once
        empty = run_dir / "warm"
        empty.mkdir()
        subprocess.run(
            [LIVECAM, "-q", "identify", "--known-faces", str(gallery), str(empty)],
            check=False,
            capture_output=True,
            cwd=run_dir,
        )
        empty.rmdir()
    out: dict = {}
    try:
        extra, log = list(args.livecam_args), run_dir / "livecam.jsonl"
        if args.cpu_quota is None:
            out["livecam"] = run_livecam(link, gallery, log, extra)
        else:  # a small board: played at the clip's own speed in a cgroup of its own, pinned to core 0
            # a board runs one livecam: clips played at once get a core each (two on one core would share
            # it beyond their quotas, and each would drop frames the other took)
            core = _CORES.get()
            try:
                name = f"livecam-door-{os.getpid()}-{job.name}"
                with cpu_quota(args.cpu_quota, name=name, core=core) as prefix:
                    out["livecam"] = run_livecam(link, gallery, log, ["--realtime", *extra], prefix=prefix)
            finally:
                _CORES.put(core)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"livecam failed ({exc.returncode}): {exc.stderr.strip()[-800:]}") from None
    out["livecam"]["records"] = records(run_dir / "livecam.jsonl")
    events_path = run_dir / "events.jsonl"
    out["livecam"]["events"] = records(events_path) if events_path.exists() else []
    if not args.no_peer:
        try:
            out["peer"] = run_peer(clip, gallery, run_dir / "peer.jsonl")
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"peer failed ({exc.returncode}): {exc.stderr.strip()[-800:]}") from None
        out["peer"]["records"] = records(run_dir / "peer.jsonl")
    return out


def run_job(job: Job, data: Path, args: argparse.Namespace) -> Job:
    try:
        if job.kind == "scene":
            prepare_scene(job, data)
            clip, gallery = job.folder / "clip.mp4", job.folder / "known_faces"
        else:
            prepare_real(job, data)
            assert job.clip is not None and job.gallery is not None
            clip, gallery = job.clip, job.gallery
        raw = run_sides(job, clip, gallery, args)
        for side, r in raw.items():
            if job.kind == "scene":
                score = score_scene(job.truth["visits"], job.truth["frames"], r["records"], r.get("events"), side)
            else:
                score = score_real(job, r["records"])
            frames = r.get("frames") or len(r["records"])
            score.update(frames=frames, fps=r["fps"], seconds=frames / max(r["fps"], 1e-9))
            job.results[side] = score
            if args.png and side == "livecam" and job.kind == "scene":
                write_sheet(job, clip, r["records"], Path(args.png) / f"{job.name}.png")
    except Exception as exc:  # one broken clip (or a livecam mid-edit) must not lose the whole run
        job.error = f"{type(exc).__name__}: {exc}"
        if args.verbose:
            traceback.print_exc()
    return job


# -- scoring -----------------------------------------------------------------------------------------
def _is_name(name: str | None) -> bool:
    return name not in NOT_A_NAME


def score_scene(visits: list[SceneVisit], frames: int, recs: list[dict], events: list[dict] | None, side: str) -> dict:
    truth = truth_by_frame(visits, frames)
    by_vid = {v.vid: v for v in visits}
    first_right: dict[int, int] = {}
    wrong_by_visit: dict[int, Counter] = defaultdict(Counter)
    wrong_frames_by_visit: dict[int, list[int]] = defaultdict(list)
    named_any: set[int] = set()
    ghosts: list[tuple[int, str]] = []
    wrong = 0
    track_frames: dict[int, dict[int | None, list[int]]] = defaultdict(lambda: defaultdict(list))
    for rec in recs:
        f = rec["frame"]
        gt = truth[f] if 0 <= f < frames else []
        for face in rec["faces"]:
            vid = attribute(face["box"], gt)
            if "track" in face:
                track_frames[face["track"]][vid].append(f)
            name = face.get("name")
            if not _is_name(name):
                continue
            if vid is None:
                wrong += 1
                ghosts.append((f, name))
                continue
            named_any.add(vid)
            v = by_vid[vid]
            if v.enrolled and name == v.person:
                first_right.setdefault(vid, f)
            else:
                wrong += 1
                wrong_by_visit[vid][name] += 1
                wrong_frames_by_visit[vid].append(f)
    rows = []
    latencies = []
    for v in visits:
        first_det = v.detectable[0] if v.detectable else None
        named_at = first_right.get(v.vid)
        latency = named_at - first_det if named_at is not None and first_det is not None else None
        if latency is not None:
            latencies.append(latency)
        rows.append(
            {
                "vid": v.vid,
                "person": v.person,
                "enrolled": v.enrolled,
                "photo": v.photo,
                "note": v.note,
                "start": v.start,
                "end": v.end,
                "first_detectable": first_det,
                "detectable_frames": len(v.detectable),
                "named_at": named_at,
                "latency": latency,
                "wrong_names": dict(wrong_by_visit[v.vid]),
                "wrong_frames": _ranges(wrong_frames_by_visit[v.vid]),
                "named": v.vid in named_any,
            }
        )
    enrolled = [r for r in rows if r["enrolled"]]
    strangers = [r for r in rows if not r["enrolled"]]
    out = {
        "wrong_frames": wrong,
        "ghost_frames": len(ghosts),
        "ghosts": _ghost_summary(ghosts),
        "enrolled": len(enrolled),
        "enrolled_named": sum(r["named_at"] is not None for r in enrolled),
        "enrolled_misnamed": sum(bool(r["wrong_names"]) for r in enrolled),
        "enrolled_undetectable": sum(r["first_detectable"] is None for r in enrolled),
        "strangers": len(strangers),
        "strangers_named": sum(r["named"] for r in strangers),
        "latencies": latencies,
        "visits": rows,
    }
    if side == "livecam":
        out.update(_track_scores(track_frames, by_vid, events or []))
    return out


def _track_scores(track_frames: dict, by_vid: dict[int, SceneVisit], events: list[dict]) -> dict:
    owner: dict[int, int | None] = {}
    spanning = []
    for track, per_vid in track_frames.items():
        counts = {vid: len(fs) for vid, fs in per_vid.items() if vid is not None}
        owner[track] = max(counts, key=lambda k: counts[k]) if counts else None
        if len(counts) >= 2:
            spanning.append(
                {
                    "track": track,
                    "visits": {
                        f"v{vid} {by_vid[vid].person}": _ranges(per_vid[vid]) for vid in sorted(counts, key=str)
                    },
                }
            )
    recognized_right: set[int] = set()
    wrong_events = []
    for e in events:
        if e.get("kind") != "recognized":
            continue
        vid = owner.get(e.get("track"))
        v = by_vid.get(vid) if vid is not None else None
        if v is not None and v.enrolled and e.get("name") == v.person:
            recognized_right.add(v.vid)
        else:
            wrong_events.append({"track": e.get("track"), "name": e.get("name"), "visit": vid})
    unknown_on_enrolled, unknown_on_recognized = [], []
    for e in events:
        if e.get("kind") != "unknown":
            continue
        vid = owner.get(e.get("track"))
        if vid is None or not by_vid[vid].enrolled:
            continue
        unknown_on_enrolled.append({"track": e.get("track"), "visit": vid})
        if vid in recognized_right:
            unknown_on_recognized.append({"track": e.get("track"), "visit": vid})
    return {
        "tracks": len(track_frames),
        "tracks_spanning_two": len(spanning),
        "spanning": spanning,
        "recognized_events": sum(e.get("kind") == "recognized" for e in events),
        "recognized_visits": len(recognized_right),
        "wrong_recognized_events": len(wrong_events),
        "wrong_events": wrong_events,
        "unknown_events_enrolled": len(unknown_on_recognized),
        "unknown_events_on_enrolled": len(unknown_on_enrolled),
        "unknown_events": unknown_on_enrolled,
    }


def score_real(job: Job, recs: list[dict]) -> dict:
    """Real clips have no boxes in their ground truth: names are judged per frame (see real_truth)."""
    wrong_items: list[tuple[int, str]] = []
    if job.kind == "hamilton":
        person = job.truth["person"]
        label = {}
        for s in job.truth["shots"]:
            for f in range(s["start"], s["end"] + 1):
                label[f] = s["label"]
        first_right = None
        absent_named = False
        for rec in recs:
            f = rec["frame"]
            for face in rec["faces"]:
                name = face.get("name")
                if not _is_name(name):
                    continue
                if name == person and label.get(f) == "present":
                    first_right = f if first_right is None else first_right
                elif name == person and label.get(f) == "unseen":
                    continue  # no face dlib could check: cannot be judged
                else:
                    wrong_items.append((f, name))
                    absent_named = absent_named or label.get(f) == "absent"
        det = job.truth["detectable"]
        latency = first_right - det[0] if first_right is not None and det else None
        return {
            "wrong_frames": len(wrong_items),
            "ghost_frames": 0,
            "wrong_detail": _ghost_summary(wrong_items),
            "enrolled": 1,
            "enrolled_named": int(first_right is not None),
            "enrolled_misnamed": 0,
            "enrolled_undetectable": int(not det),
            "strangers": sum(s["label"] == "absent" for s in job.truth["shots"]),
            "strangers_named": int(absent_named),
            "latencies": [latency] if latency is not None else [],
            "named_frames": len({r["frame"] for r in recs for x in r["faces"] if x.get("name") == person}),
        }
    for rec in recs:  # HDTF: the speaker is not enrolled
        for face in rec["faces"]:
            if _is_name(face.get("name")):
                wrong_items.append((rec["frame"], face["name"]))
    return {
        "wrong_frames": len(wrong_items),
        "ghost_frames": 0,
        "wrong_detail": _ghost_summary(wrong_items),
        "enrolled": 0,
        "enrolled_named": 0,
        "enrolled_misnamed": 0,
        "enrolled_undetectable": 0,
        "strangers": 1,
        "strangers_named": int(bool(wrong_items)),
        "latencies": [],
    }


def _ranges(frames: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5,9"."""
    out: list[str] = []
    fs = sorted(set(frames))
    i = 0
    while i < len(fs):
        j = i
        while j + 1 < len(fs) and fs[j + 1] == fs[j] + 1:
            j += 1
        out.append(str(fs[i]) if i == j else f"{fs[i]}-{fs[j]}")
        i = j + 1
    return ",".join(out)


def _ghost_summary(items: list[tuple[int, str]]) -> dict[str, str]:
    """(frame, name) pairs -> {name: "frame ranges"}."""
    by_name: dict[str, list[int]] = defaultdict(list)
    for f, name in items:
        by_name[name].append(f)
    return {name: _ranges(fs) for name, fs in sorted(by_name.items())}


# -- aggregation and printing ------------------------------------------------------------------------
SUMMED = (
    "frames",
    "seconds",
    "wrong_frames",
    "ghost_frames",
    "enrolled",
    "enrolled_named",
    "enrolled_misnamed",
    "enrolled_undetectable",
    "strangers",
    "strangers_named",
    "tracks",
    "tracks_spanning_two",
    "recognized_events",
    "recognized_visits",
    "wrong_recognized_events",
    "unknown_events_enrolled",
    "unknown_events_on_enrolled",
)


def aggregate(jobs: list[Job]) -> dict:
    out: dict = {"clips": len(jobs), "failed": sum(j.error is not None for j in jobs)}
    for side in SIDES:
        parts = [j.results[side] for j in jobs if side in j.results]
        if not parts:
            continue
        agg = {k: sum(p.get(k, 0) for p in parts) for k in SUMMED}
        lat = sorted(x for p in parts for x in p["latencies"])
        agg["latency_median"] = float(np.median(lat)) if lat else None
        agg["latency_p90"] = float(np.percentile(lat, 90)) if lat else None
        agg["fps"] = agg["frames"] / agg["seconds"] if agg["seconds"] else None
        out[side] = agg
    return out


def _pair(agg: dict, fmt) -> str:
    cells = []
    for side in SIDES:
        cells.append(fmt(agg[side]) if side in agg else "-")
    return " / ".join(cells)


def _frac(n: int, d: int, pct: bool = False) -> str:
    if not d:
        return "-"
    return f"{n}/{d} ({100 * n / d:.0f}%)" if pct else f"{n}/{d}"


def _lat(a: dict) -> str:
    if a.get("latency_median") is None:
        return "-"
    return f"{a['latency_median']:.0f} (p90 {a['latency_p90']:.0f})"


def table_row(label: str, agg: dict) -> str:
    lc = agg.get("livecam", {})
    fps = _pair(agg, lambda a: f"{a['fps']:.0f}" if a.get("fps") else "-")
    if lc.get("fps") and agg.get("peer", {}).get("fps"):
        fps += f" ({lc['fps'] / agg['peer']['fps']:.1f}x)"
    cells = [
        label,
        str(agg["clips"]) + (f" ({agg['failed']} failed)" if agg["failed"] else ""),
        _pair(agg, lambda a: f"{a['wrong_frames']} ({a['ghost_frames']})"),
        _pair(agg, lambda a: _frac(a["strangers_named"], a["strangers"])),
        _pair(agg, lambda a: _frac(a["enrolled_named"], a["enrolled"], pct=True)),
        _pair(agg, _lat),
        f"{lc['unknown_events_enrolled']} ({lc['unknown_events_on_enrolled']})" if lc else "-",
        str(lc["wrong_recognized_events"]) if lc else "-",
        str(lc["tracks_spanning_two"]) if lc else "-",
        fps,
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| scenario | clips | wrong frames (no face) | strangers named | enrolled named | latency frames median (p90)"
    " | livecam unknown events on recognized enrolled (all on enrolled) | livecam wrong recognized events"
    " | livecam tracks spanning 2 visits | fps offline (ratio) |\n|---|---|---|---|---|---|---|---|---|---|"
)


def print_table(half: str, jobs: list[Job], scenarios: list[str]) -> dict:
    summary: dict = {}
    print(f"\n### half: {half} (each cell: livecam / peer)\n")
    print(HEADER)
    synthetic = [j for j in jobs if j.kind == "scene"]
    for sc in scenarios:
        group = [j for j in synthetic if j.scenario == sc]
        if group:
            summary[sc] = aggregate(group)
            print(table_row(sc, summary[sc]))
    if synthetic:
        summary["total"] = aggregate(synthetic)
        print(table_row("**total (generated)**", summary["total"]))
    for label in ("hamilton", "hdtf"):
        group = [j for j in jobs if j.kind == label]
        if group:
            summary[label] = aggregate(group)
            print(table_row(f"real: {label}", summary[label]))
    return summary


def print_failures(jobs: list[Job]) -> None:
    print("\n#### failures per visit (-v)")
    for job in jobs:
        if job.error:
            print(f"\n{job.name}: ERROR {job.error}")
            continue
        lines = []
        if job.kind == "scene":
            for i, v in enumerate(job.results["livecam"]["visits"]):
                per_side = {s: job.results[s]["visits"][i] for s in SIDES if s in job.results}
                bad = any(
                    r["wrong_names"] or (v["enrolled"] and r["named_at"] is None) or (not v["enrolled"] and r["named"])
                    for r in per_side.values()
                )
                if not bad:
                    continue
                who = "enrolled" if v["enrolled"] else "stranger"
                det = f"detectable from {v['first_detectable']} ({v['detectable_frames']} frames)"
                head = f"  v{v['vid']} {v['person']} ({who}, {v['photo']}{', ' + v['note'] if v['note'] else ''})"
                lines.append(f"{head} frames {v['start']}-{v['end']}, {det}")
                for side, r in per_side.items():
                    if v["enrolled"]:
                        named = (
                            f"named at {r['named_at']} ({r['latency']:+d})"
                            if r["latency"] is not None
                            else (f"named at {r['named_at']}" if r["named_at"] is not None else "never named")
                        )
                    else:
                        named = ""
                    wrong = ", ".join(f"{n} x{c}" for n, c in r["wrong_names"].items())
                    wrong = f"wrong: {wrong} (frames {r['wrong_frames']})" if wrong else ""
                    lines.append(f"      {side}: {'; '.join(x for x in (named, wrong) if x) or 'ok'}")
            for side in SIDES:
                r = job.results.get(side)
                if r and r["ghosts"]:
                    ghosts = ", ".join(f"{n} (frames {fs})" for n, fs in r["ghosts"].items())
                    lines.append(f"  {side}: names on no face: {ghosts}")
            lc = job.results.get("livecam", {})
            for s in lc.get("spanning", []):
                parts = "; ".join(f"{k}: frames {fs}" for k, fs in s["visits"].items())
                lines.append(f"  livecam track {s['track']} spans {parts}")
            for e in lc.get("unknown_events", []):
                lines.append(f"  livecam unknown event on enrolled visit v{e['visit']} (track {e['track']})")
            for e in lc.get("wrong_events", []):
                lines.append(f"  livecam recognized event {e['name']} on visit {e['visit']} (track {e['track']})")
        else:
            for side in SIDES:
                r = job.results.get(side)
                if r and r.get("wrong_detail"):
                    lines.append(f"  {side}: " + ", ".join(f"{n} (frames {fs})" for n, fs in r["wrong_detail"].items()))
                if job.kind == "hamilton" and r and not r["enrolled_named"]:
                    lines.append(f"  {side}: {HAMILTON_PERSON} never named")
        if lines:
            print(f"\n{job.name}:")
            print("\n".join(lines))


# -- contact sheets (--png) ----------------------------------------------------------------------------
def write_sheet(job: Job, clip: Path, recs: list[dict], out: Path) -> None:
    """A few frames with the ground truth (green enrolled, red stranger, yellow the live detector's boxes)
    and livecam's boxes (blue, with their names): to check the ground truth and see failures."""
    visits = job.truth["visits"]
    wanted = sorted({v.detectable[len(v.detectable) // 2] for v in visits if v.detectable})[:6]
    by_frame = {r["frame"]: r["faces"] for r in recs}
    cap = cv2.VideoCapture(str(clip))
    tiles = []
    f = 0
    while wanted and f <= wanted[-1]:
        ok, image = cap.read()
        if not ok:
            break
        if f in wanted:
            draw_truth(image, visits, f, live_detections(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)))
            for face in by_frame.get(f, []):
                t, r, b, left = face["box"]
                cv2.rectangle(image, (left, t), (r, b), (255, 80, 0), 1)
                cv2.putText(
                    image, str(face.get("name")), (left, b + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 80, 0), 1
                )
            cv2.putText(image, f"{job.name} f{f}", (6, 470), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            tiles.append(image)
        f += 1
    cap.release()
    if not tiles:
        return
    while len(tiles) % 2:
        tiles.append(np.zeros_like(tiles[0]))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack([np.hstack(tiles[i : i + 2]) for i in range(0, len(tiles), 2)]))


# -- main ------------------------------------------------------------------------------------------------
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("LIVECAM_TEST_DATA", REPO.parent / "shared/data/faces"))
    ap.add_argument("--half", choices=("tune", "report"), default="report")
    ap.add_argument("--layouts", type=int, default=3, help="clips per scenario (default 3)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset (default: all)")
    ap.add_argument("--seed", type=int, default=SPLIT_SEED, help="layout seed (the people split never changes)")
    ap.add_argument("--real", action=argparse.BooleanOptionalAction, default=True, help="also the real clips")
    ap.add_argument("--jobs", type=int, default=2, help="clips at a time (default 2)")
    ap.add_argument("--config", type=Path, help="livecam config yaml to run with (to compare settings)")
    ap.add_argument(
        "--livecam-args", default="", help='extra arguments for `livecam run`, one string: --livecam-args="--flag x"'
    )
    ap.add_argument("--no-peer", action="store_true", help="livecam only (faster tuning)")
    ap.add_argument(
        "--cpu-quota",
        type=float,
        metavar="PERCENT",
        help="play each clip with --realtime under this share of one core, pinned to a core of its own (a small board;"
        " cpu_quota.py: root and a writable cgroup); fps is then the fps shown",
    )
    ap.add_argument("--keep", help="keep clips, truth and run outputs here (and reuse clips that are current)")
    ap.add_argument("--png", help="write a contact sheet per generated clip here (ground truth + livecam)")
    ap.add_argument("--json", help="also write all results here")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-visit detail of failures")
    args = ap.parse_args()
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.livecam_args = shlex.split(args.livecam_args)
    if args.config is not None:
        args.config = args.config.resolve()
    data = Path(args.data)
    for opt in ("keep", "png"):
        where = getattr(args, opt)
        if where and Path(where).resolve().is_relative_to(REPO):
            ap.error(f"--{opt} must be outside the repository: it holds copies of the LFW photos / frames of them")
    if not Path(LIVECAM).exists():
        ap.error(f"{LIVECAM} not found: run `make setup` first")
    if args.cpu_quota is not None:
        if not 0 < args.cpu_quota <= 100:
            ap.error("--cpu-quota is a share of one core: more than 0 and at most 100")
        try:
            with cpu_quota(args.cpu_quota, name=f"livecam-door-{os.getpid()}-probe"):
                pass
        except QuotaUnavailable as exc:
            print(f"--cpu-quota {args.cpu_quota:g}: skipped: {exc}")
            return 0
    if not args.no_peer:
        try:
            import face_recognition  # noqa: F401
        except ImportError:
            ap.error("the peer needs face_recognition: .venv/bin/python -m pip install --no-deps face_recognition")

    started = time.time()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="livecam-door-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        jobs = build_jobs(args, data, root)
        version = livecam_version()
        print(f"livecam {version}")
        print(
            f"{len(jobs)} clips ({args.half} half, {args.layouts} layout(s) x {len(args.scenarios)} scenarios"
            f"{' + real clips' if args.real else ''}), {args.jobs} at a time, in {root}",
            flush=True,
        )
        done = 0
        allowed = sorted(os.sched_getaffinity(0))
        for i in range(max(1, args.jobs)):
            _CORES.put(allowed[i % len(allowed)])
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            futures = [pool.submit(run_job, j, data, args) for j in jobs]
            for fut in futures:
                job = fut.result()
                done += 1
                status = f"ERROR {job.error}" if job.error else "ok"
                print(f"  [{done}/{len(jobs)}] {job.name}: {status} ({time.time() - started:.0f} s)", flush=True)
        _print_truth_check(jobs)
        summary = print_table(args.half, jobs, args.scenarios)
        if args.verbose:
            print_failures(jobs)
        elapsed = time.time() - started
        how = "offline" if args.cpu_quota is None else f"shown, --realtime at {args.cpu_quota:g} % of one core"
        print(f"\n({elapsed:.0f} s; livecam fps is {how}, {args.jobs} clip(s) at a time)")
        if args.json:
            report = {"livecam": version, **_json(args, summary, jobs, elapsed)}
            Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if any(j.error for j in jobs) else 0


def livecam_version() -> str:
    """The commit of the livecam code measured, and whether livecam/ had uncommitted changes (it moves)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "livecam"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in livecam/" if dirty else "")


def _print_truth_check(jobs: list[Job]) -> None:
    """How well the live detector's boxes agree with the generated ground truth: a broken generator shows here."""
    checks = [j.truth["check"] for j in jobs if j.kind == "scene" and j.truth.get("check")]
    if checks:
        matched = sum(c["detections_matched"] for c in checks)
        stray = sum(c["stray_detections"] for c in checks)
        low = sum(c["iou_below_0.5"] for c in checks)
        med = np.median([c["median_iou"] for c in checks if c["median_iou"] is not None])
        print(
            f"ground truth check: {matched} live-detector boxes matched a gt face (median IoU per clip {med:.2f},"
            f" {low} below 0.5), {stray} matched none"
        )
    for j in jobs:
        if j.kind == "hamilton" and j.truth.get("shots"):
            shots = ", ".join(
                f"{s['start']}-{s['end']} {s['label']}" + (f" ({', '.join(s['also'])})" if s["also"] else "")
                for s in j.truth["shots"]
            )
            print(f"hamilton shots: {shots}")


def _json(args: argparse.Namespace, summary: dict, jobs: list[Job], elapsed: float) -> dict:
    clips = []
    for j in jobs:
        entry: dict = {"name": j.name, "scenario": j.scenario, "error": j.error, "results": j.results}
        if j.kind == "scene" and j.truth:
            entry["check"] = j.truth.get("check")
            entry["gallery"] = j.truth.get("gallery")
        clips.append(entry)
    return {
        "half": args.half,
        "layouts": args.layouts,
        "seed": args.seed,
        "config": str(args.config) if args.config else None,
        "livecam_args": args.livecam_args,
        "seconds": round(elapsed, 1),
        "summary": summary,
        "clips": clips,
    }


if __name__ == "__main__":
    sys.exit(main())
