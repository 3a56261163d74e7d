"""Soak: `livecam run --no-window --realtime --loop` on the door clip, RSS and open files sampled.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--every 10]

Goal: RSS growth <= 5 % after warm-up (the first 2 minutes), no growth in open
file descriptors, a clean exit on Ctrl-C, and a loop that kept working: real-time
fps to the end and names still given in the last 2 minutes (flat memory alone
would also describe a stalled loop). Prints one row per minute and the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from door_clip import FPS, make_clip, write_gallery  # noqa: E402

WARM_UP_S = 120


def rss_mb(pid: int) -> float:
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def sample(proc: subprocess.Popen, seconds: float, every: float) -> list[tuple[float, float, int]] | None:
    start = time.monotonic()
    samples = []
    while time.monotonic() - start < seconds:
        time.sleep(every)
        if proc.poll() is not None:
            return None
        samples.append((time.monotonic() - start, rss_mb(proc.pid), fds(proc.pid)))
    return samples


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--every", type=float, default=10)
    ap.add_argument("--data", default=os.environ.get("LIVECAM_TEST_DATA", REPO.parent / "shared/data/faces"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="livecam-soak-"))
    try:
        clip = tmp / "door.mp4"
        _, gallery_photos = make_clip(Path(args.data), clip)
        gallery = tmp / "known_faces"
        write_gallery(gallery_photos, gallery)
        cmd = [
            str(REPO / ".venv/bin/livecam"),
            "run",
            "--camera",
            str(clip),
            "--known-faces",
            str(gallery),
            "--no-window",
            "--realtime",
            "--loop",
        ]
        with open(tmp / "stderr.txt", "w") as err:
            proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=err)
            samples = sample(proc, args.minutes * 60, args.every)
        if samples is None:
            print("livecam exited early:", (tmp / "stderr.txt").read_text()[-2000:])
            return 1
        proc.send_signal(signal.SIGINT)
        stop_started = time.monotonic()
        try:
            code = proc.wait(timeout=30)
            stop_s = time.monotonic() - stop_started
        except subprocess.TimeoutExpired:
            proc.kill()
            code, stop_s = "none: still running 30 s after Ctrl-C, killed", 30.0
        print("| minute | RSS MB (livecam + encoder process) | open fds |")
        print("|---|---|---|")
        for t, r, f in samples:
            if int(t) % 60 < args.every:
                print(f"| {t / 60:.0f} | {r:.0f} | {f} |")
        after = [(t, r, f) for t, r, f in samples if t >= min(WARM_UP_S, samples[-1][0] / 2)]
        base_rss, base_fd = after[0][1], after[0][2]
        peak_rss = max(r for _, r, _ in after)
        growth = (after[-1][1] - base_rss) / base_rss * 100
        print(
            f"\nafter warm-up: RSS {base_rss:.0f} -> {after[-1][1]:.0f} MB ({growth:+.1f} %), peak {peak_rss:.0f} MB;"
            f" fds {base_fd} -> {after[-1][2]} (max {max(f for _, _, f in after)});"
            f" exit code on SIGINT: {code} after {stop_s:.1f} s"
        )
        # flat memory proves nothing if the loop stalled: frames and names must have kept coming
        summary = re.search(r"(\d+) frames in ([\d.]+) s: ([\d.]+) fps", (tmp / "stderr.txt").read_text())
        fps = float(summary.group(3)) if summary else 0.0
        times = [
            datetime.fromisoformat(json.loads(line)["time"])
            for line in (tmp / "events.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == "recognized"
        ]
        last_minutes = [t for t in times if (times[-1] - t).total_seconds() <= 120] if times else []
        print(
            f"loop: {summary.group(0) if summary else 'no summary logged'}; {len(times)} recognized events,"
            f" {len(last_minutes)} in the last 2 minutes"
        )
        ok = (
            growth <= 5
            and max(f for _, _, f in after) <= base_fd
            and code == 130
            and fps >= 0.9 * FPS
            and len(last_minutes) >= 8
        )
        print(
            "PASS" if ok else "FAIL",
            "(goal: RSS growth <= 5 %, no fd growth, clean exit on Ctrl-C, real time kept, still naming at the end)",
        )
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
