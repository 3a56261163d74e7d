"""What a run prints and writes: the livecam version measured, the ground truth check, the table (one row
per scenario, livecam / peer in each cell), each failing visit (-v), the JSON of every figure (--json), and
contact sheets of ground truth and livecam's boxes (--png).
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import cv2
import numpy as np

from doorbench.detector import live_detections
from doorbench.jobs import HAMILTON_PERSON, SIDES, Job
from doorbench.scenes import SceneVisit
from doorbench.scoring import aggregate


def livecam_version(repo: Path) -> str:
    """The commit of the livecam code measured, and whether livecam/ had uncommitted changes (it moves)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "livecam"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in livecam/" if dirty else "")


def print_truth_check(jobs: list[Job]) -> None:
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


# -- the table ----------------------------------------------------------------------------------------
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


# -- JSON (--json) -------------------------------------------------------------------------------------
def json_report(args: argparse.Namespace, summary: dict, jobs: list[Job], elapsed: float) -> dict:
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


# -- contact sheets (--png) ----------------------------------------------------------------------------
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
