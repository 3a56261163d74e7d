"""Live-loop benchmark: `livecam run` vs face_recognition's facerec_from_webcam_faster logic.

    .venv/bin/python benchmarks/bench_live.py [--data DIR] [--model M] [--cpu-quota 25 ...] [--no-peer]

Same run, same dlib, same clips, no window:
  * a door-like clip built from LFW photos (benchmarks/door_clip.py): 8 enrolled
    people (enrolled from 5 other photos each) and 15 strangers walking up;
  * videos/short_hamilton_clip.mp4 with identities_extra/Lin_Manuel_Miranda enrolled.
Reports offline fps, people named, strangers named, median frames from a face's
first frame to its right name, peak RSS, and `--realtime` fps (also on one core, and under each
`--cpu-quota` share of one core: cpu_quota.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from cpu_quota import QuotaUnavailable, cpu_quota  # noqa: E402
from door_clip import Visit, evaluate, make_clip, write_gallery  # noqa: E402

LIVECAM = str(REPO / ".venv" / "bin" / "livecam")

PEER = r"""
# face_recognition's examples/facerec_from_webcam_faster.py, headless, reading a file:
# half-scale frames, detect + encode every other frame, tolerance 0.6, boxes kept between.
import json, sys, time
from pathlib import Path
import cv2, numpy as np
import face_recognition

clip, gallery, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
known, names = [], []
for person in sorted(p for p in gallery.iterdir() if p.is_dir()):
    for photo in sorted(person.iterdir()):
        encs = face_recognition.face_encodings(face_recognition.load_image_file(str(photo)))
        if encs:
            known.append(encs[0]); names.append(person.name)
video = cv2.VideoCapture(clip)
records, index, process = [], 0, True
locations, face_names = [], []
start = time.perf_counter()
while True:
    ok, frame = video.read()
    if not ok:
        break
    if process:
        small = cv2.resize(frame, (0, 0), fx=0.5, fy=0.5)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        locations = face_recognition.face_locations(rgb)
        encodings = face_recognition.face_encodings(rgb, locations)
        face_names = []
        for enc in encodings:
            name = "unknown"
            if known:
                matches = face_recognition.compare_faces(known, enc, tolerance=0.6)
                d = face_recognition.face_distance(known, enc)
                best = int(np.argmin(d))
                if matches[best]:
                    name = names[best]
            face_names.append(name)
    process = not process
    faces = [{"box": [t * 2, r * 2, b * 2, l * 2], "name": n} for (t, r, b, l), n in zip(locations, face_names)]
    records.append({"frame": index, "faces": faces})
    index += 1
elapsed = time.perf_counter() - start
Path(out).write_text("\n".join(json.dumps(r) for r in records))
hwm = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")]
print(json.dumps({"frames": index, "fps": index / elapsed, "peak_rss_mb": int(hwm[0].split()[1]) / 1024}))
"""


def run_livecam(clip, gallery, out, extra, prefix=None) -> dict:
    cmd = (prefix or []) + [
        LIVECAM,
        "run",
        "--camera",
        str(clip),
        "--known-faces",
        str(gallery),
        "--no-window",
    ]
    cmd += ["--log-json", str(out)] + extra
    # run beside the clip: events.jsonl and unknown/ land in the temporary folder, not here
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path(clip).parent)
    m = re.search(r"(\d+) frames in ([\d.]+) s: ([\d.]+) fps", proc.stderr)
    rss = re.search(r"peak RSS (\d+) MB", proc.stderr)
    return {"frames": int(m.group(1)), "fps": float(m.group(3)), "peak_rss_mb": float(rss.group(1))}


def run_peer(clip: Path, gallery: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PEER, str(clip), str(gallery), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def hamilton_truth(records_: list[dict], person: str) -> dict:
    with_face = [r["frame"] for r in records_ if r["faces"]]
    named = [r["frame"] for r in records_ if any(f["name"] == person for f in r["faces"])]
    wrong = {f["name"] for r in records_ for f in r["faces"] if f["name"] not in (None, "unknown", person)}
    return {
        "frames_with_face": len(with_face),
        "frames_named": len(named),
        "first_face": with_face[0] if with_face else None,
        "first_named": named[0] if named else None,
        "wrong_names": sorted(wrong),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("LIVECAM_TEST_DATA", REPO.parent / "shared/data/faces"))
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--model", help="livecam's embedder (default: the config's)")
    ap.add_argument("--cpu-quota", type=float, action="append", default=[], help="%% of one core (repeatable)")
    ap.add_argument("--no-peer", action="store_true", help="livecam only")
    args = ap.parse_args()
    model = ["--model", args.model] if args.model else []
    data = Path(args.data)
    tmp = Path(tempfile.mkdtemp(prefix="livecam-live-"))
    results: dict = {}
    try:
        clip = tmp / "door.mp4"
        visits, gallery_photos = make_clip(data, clip)
        gallery = tmp / "known_faces"
        write_gallery(gallery_photos, gallery)
        print(
            f"door clip: {clip.stat().st_size // 1024} KiB, {visits[-1].end + 16} frames at 640x480,"
            f" {sum(v.enrolled for v in visits)} enrolled + {sum(not v.enrolled for v in visits)} strangers"
        )
        # warm the gallery cache so both runs measure the loop, not enrollment
        subprocess.run(
            [LIVECAM, "-q", "identify", *model, "--known-faces", str(gallery), str(clip.parent)],
            check=False,
            capture_output=True,
        )

        ours = run_livecam(clip, gallery, tmp / "ours.jsonl", model)
        results["door"] = {"livecam": {**ours, **_score(visits, records(tmp / "ours.jsonl"))}}
        if not args.no_peer:
            peer = run_peer(clip, gallery, tmp / "peer.jsonl")
            results["door"]["peer"] = {**peer, **_score(visits, records(tmp / "peer.jsonl"))}
        rt = run_livecam(clip, gallery, tmp / "rt.jsonl", ["--realtime", *model])
        rt1 = run_livecam(clip, gallery, tmp / "rt1.jsonl", ["--realtime", *model], prefix=["taskset", "-c", "0"])
        results["realtime"] = {
            "two_cores_fps": rt["fps"],
            "one_core_fps": rt1["fps"],
            "frames": rt["frames"],
            "frames_one_core": rt1["frames"],
        }
        results["quota"] = {}
        for percent in args.cpu_quota:
            try:
                with cpu_quota(percent) as prefix:
                    out = tmp / f"q{percent:g}.jsonl"
                    q = run_livecam(clip, gallery, out, ["--realtime", *model], prefix=prefix)
                results["quota"][f"{percent:g}"] = {**q, **_score(visits, records(out))}
            except QuotaUnavailable as exc:
                print(f"--cpu-quota {percent:g}: skipped: {exc}")

        ham = data / "videos" / "short_hamilton_clip.mp4"
        ham_gallery = tmp / "ham_faces"
        (ham_gallery / "Lin_Manuel_Miranda").mkdir(parents=True)
        for p in (data / "identities_extra" / "Lin_Manuel_Miranda").iterdir():
            shutil.copy(p, ham_gallery / "Lin_Manuel_Miranda" / p.name)
        ours_h = run_livecam(ham, ham_gallery, tmp / "ours_h.jsonl", model)
        results["hamilton"] = {
            "livecam": {**ours_h, **hamilton_truth(records(tmp / "ours_h.jsonl"), "Lin_Manuel_Miranda")}
        }
        if not args.no_peer:
            peer_h = run_peer(ham, ham_gallery, tmp / "peer_h.jsonl")
            results["hamilton"]["peer"] = {
                **peer_h,
                **hamilton_truth(records(tmp / "peer_h.jsonl"), "Lin_Manuel_Miranda"),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _print(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _score(visits: list[Visit], recs: list[dict]) -> dict:
    s = evaluate(visits, recs)
    s.pop("rows")
    return s


def _print(r: dict) -> None:
    d = r["door"]
    p, o = d.get("peer"), d["livecam"]
    print(
        "\n| door clip (640x480, 30 fps) | fps offline | enrolled named | enrolled given a wrong name"
        " | strangers named | median frames to name | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = [("face_recognition 1.3.0 webcam_faster", p), ("livecam", o)]
    rows += [(f"livecam --realtime at {pct} % of one core", x) for pct, x in r["quota"].items()]
    for label, x in rows:
        if x is None:
            continue
        rss = f"{x['peak_rss_mb']:.0f}" if x.get("peak_rss_mb") else "-"
        print(
            f"| {label} | {x['fps']:.1f} | {x['enrolled_named']}/{x['enrolled']} | {x['enrolled_wrongly_named']}"
            f" | {x['strangers_named']}/{x['strangers']} | {x['median_latency_frames']} | {rss} |"
        )
    if p:
        print(f"\nthroughput ratio livecam/peer: {o['fps'] / p['fps']:.1f}x")
    rt = r["realtime"]
    print(
        f"--realtime on the 30 fps door clip: {rt['two_cores_fps']:.1f} fps shown on 2 cores,"
        f" {rt['one_core_fps']:.1f} fps pinned to one core (taskset -c 0)"
    )
    h = r["hamilton"]
    print(
        "\n| hamilton clip | fps offline | frames with a face | frames named Lin_Manuel_Miranda"
        " | first face / first named frame | wrong names |"
    )
    print("|---|---|---|---|---|---|")
    for label, x in (("face_recognition 1.3.0 webcam_faster", h.get("peer")), ("livecam", h["livecam"])):
        if x is None:
            continue
        print(
            f"| {label} | {x['fps']:.1f} | {x['frames_with_face']} | {x['frames_named']}"
            f" | {x['first_face']} / {x['first_named']} | {', '.join(x['wrong_names']) or '-'} |"
        )


if __name__ == "__main__":
    started = time.time()
    code = main()
    print(f"\n({time.time() - started:.0f} s)")
    sys.exit(code)
