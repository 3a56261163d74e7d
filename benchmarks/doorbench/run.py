"""Running the two sides on each clip, a few clips at a time: livecam (in a run folder of its own, with the
config to compare, optionally under a CPU quota) and the peer, then scoring each side and, with --png,
drawing a contact sheet. One clip failing is recorded in its job and does not stop the run.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import traceback
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from bench_live import LIVECAM, records, run_livecam, run_peer
from cpu_quota import cpu_quota

from doorbench.jobs import Job, prepare_real, prepare_scene
from doorbench.report import write_sheet
from doorbench.scoring import score_real, score_scene

_warm_locks: dict[Path, threading.Lock] = defaultdict(threading.Lock)
_CORES: queue.Queue[int] = queue.Queue()  # --cpu-quota: the cores free for a clip (run_jobs fills it, one per job)
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


def run_jobs(jobs: list[Job], data: Path, args: argparse.Namespace, started: float) -> None:
    """Run every job, `--jobs` at a time, printing each as it finishes (in the jobs' order)."""
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
