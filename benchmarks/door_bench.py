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
positions, backgrounds and speeds (benchmarks/doorbench/), and every frame
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
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_live import LIVECAM  # noqa: E402
from cpu_quota import QuotaUnavailable, cpu_quota  # noqa: E402
from doorbench.jobs import build_jobs  # noqa: E402
from doorbench.people import SPLIT_SEED  # noqa: E402
from doorbench.report import json_report, livecam_version, print_failures, print_table, print_truth_check  # noqa: E402
from doorbench.run import run_jobs  # noqa: E402
from doorbench.scenes import SCENARIOS  # noqa: E402


def parse_args() -> argparse.Namespace | None:
    """The command line, checked; None when --cpu-quota cannot be applied on this machine (the run is skipped)."""
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
            return None
    if not args.no_peer:
        try:
            import face_recognition  # noqa: F401
        except ImportError:
            ap.error("the peer needs face_recognition: .venv/bin/python -m pip install --no-deps face_recognition")
    return args


def main() -> int:
    args = parse_args()
    if args is None:
        return 0
    data = Path(args.data)
    started = time.time()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="livecam-door-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        jobs = build_jobs(args, data, root)
        version = livecam_version(REPO)
        print(f"livecam {version}")
        print(
            f"{len(jobs)} clips ({args.half} half, {args.layouts} layout(s) x {len(args.scenarios)} scenarios"
            f"{' + real clips' if args.real else ''}), {args.jobs} at a time, in {root}",
            flush=True,
        )
        run_jobs(jobs, data, args, started)
        print_truth_check(jobs)
        summary = print_table(args.half, jobs, args.scenarios)
        if args.verbose:
            print_failures(jobs)
        elapsed = time.time() - started
        how = "offline" if args.cpu_quota is None else f"shown, --realtime at {args.cpu_quota:g} % of one core"
        print(f"\n({elapsed:.0f} s; livecam fps is {how}, {args.jobs} clip(s) at a time)")
        if args.json:
            report = {"livecam": version, **json_report(args, summary, jobs, elapsed)}
            Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if any(j.error for j in jobs) else 0


if __name__ == "__main__":
    sys.exit(main())
