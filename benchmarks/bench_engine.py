"""Engine benchmark: livecam vs face_recognition 1.3.0 on the same dlib, same photos, same run.

    .venv/bin/python benchmarks/bench_engine.py [--data DIR] [--people N] [--per-person N]

Measures, on LFW people from $LIVECAM_TEST_DATA/identities:
  * throughput: `livecam encode FOLDER` (the CLI, all cores) vs the peer's
    load_image_file + face_encodings loop, in images/s;
  * images left without a face;
  * verification over every same/different pair: accept rate of same pairs (TAR),
    false-accept rate of different pairs (FAR), at each tool's threshold;
  * identification with held-out photos: the first photos of each enrolled person
    form the gallery, the rest are probes; a set of people is never enrolled, and
    each of their photos is a stranger who must come out unknown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livecam.engine.matching import DEFAULT_MARGIN, DEFAULT_THRESHOLD, Matcher  # noqa: E402

PEER_TOLERANCE = 0.6  # face_recognition's default


def pick_photos(data: Path, people: int, per_person: int) -> list[tuple[str, Path]]:
    root = data / "identities"
    names = sorted(d.name for d in root.iterdir() if d.is_dir())
    # every 64/people-th person, so a smaller run still spans the alphabet
    step = max(1, len(names) // people)
    chosen = names[::step][:people]
    out = []
    for name in chosen:
        files = sorted((root / name).glob("*.jpg"), key=lambda p: int(p.stem))[:per_person]
        out += [(name, f) for f in files]
    return out


def run_livecam(folder: Path, workers: int | None, extra: list[str]) -> tuple[dict, float]:
    out = folder / "out.jsonl"
    cmd = [str(REPO / ".venv" / "bin" / "livecam"), "-q", "encode", str(folder), "-o", str(out)]
    cmd += ["--workers", str(workers)] if workers else []
    cmd += extra
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    elapsed = time.perf_counter() - start
    encodings: dict[str, np.ndarray | None] = {}
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        faces = sorted(rec["faces"], key=lambda f: -(f["box"][1] - f["box"][3]) * (f["box"][2] - f["box"][0]))
        encodings[Path(rec["path"]).name] = np.array(faces[0]["encoding"], np.float32) if faces else None
    out.unlink()
    return encodings, elapsed


PEER_SCRIPT = r"""
import json, sys, time
from pathlib import Path
import face_recognition
files = sorted(p for p in Path(sys.argv[1]).iterdir() if p.suffix == ".jpg")
out = {}
start = time.perf_counter()
for f in files:
    image = face_recognition.load_image_file(str(f))
    locations = face_recognition.face_locations(image)
    encs = face_recognition.face_encodings(image, locations)
    # the largest face, as livecam picks it
    if encs:
        areas = [(b - t) * (r - l) for t, r, b, l in locations]
        out[f.name] = encs[max(range(len(encs)), key=areas.__getitem__)].tolist()
    else:
        out[f.name] = None
print(json.dumps({"elapsed": time.perf_counter() - start, "encodings": out}))
"""


def run_peer(folder: Path) -> tuple[dict[str, np.ndarray | None], float, float]:
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", PEER_SCRIPT, str(folder)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    rec = json.loads(res.stdout)
    encs = {k: (np.array(v, np.float32) if v is not None else None) for k, v in rec["encodings"].items()}
    return encs, wall, rec["elapsed"]


def verification(labels: list[str], encs: list[np.ndarray | None], threshold: float) -> dict:
    ok = np.array([e is not None for e in encs])
    mat = np.stack([e if e is not None else np.zeros(128, np.float32) for e in encs])
    d = np.linalg.norm(mat[:, None, :] - mat[None, :, :], axis=2)
    lab = np.array(labels)
    same = lab[:, None] == lab[None, :]
    iu = np.triu_indices(len(labels), 1)
    same_p, d_p = same[iu], d[iu]
    valid = ok[:, None] & ok[None, :]
    valid_p = valid[iu]
    accept = (d_p <= threshold) & valid_p  # a missing face accepts nothing
    tar = accept[same_p].mean()
    far = accept[~same_p].mean()
    genuine = np.sort(d_p[same_p & valid_p])
    impostor = np.sort(d_p[~same_p & valid_p])
    t_far = float(np.quantile(impostor, 0.001))
    # TAR at FAR = 0.1 %: threshold-free, so tools with different distance scales compare fairly
    tar_at_far = float(np.searchsorted(genuine, t_far, side="right") / max(same_p.sum(), 1))
    return {
        "TAR_at_FAR_0.1%": tar_at_far,
        "pairs_same": int(same_p.sum()),
        "pairs_different": int((~same_p).sum()),
        "TAR": float(tar),
        "FAR": float(far),
        "accuracy_balanced": float((tar + 1 - far) / 2),
        "impostor_d_p001": t_far,
        "genuine_d_median": float(np.median(d_p[same_p & valid_p])),
    }


def identification(
    labels: list[str],
    names: list[str],
    encs: list[np.ndarray | None],
    gallery_n: int,
    strangers: set[str],
    decide,
) -> dict:
    gal_e, gal_l, probes = [], [], []
    seen: dict[str, int] = {}
    for lab, e in zip(labels, encs, strict=True):
        if lab in strangers:
            probes.append((lab, e, True))
            continue
        seen[lab] = seen.get(lab, 0) + 1
        if seen[lab] <= gallery_n:
            if e is not None:
                gal_e.append(e)
                gal_l.append(lab)
        else:
            probes.append((lab, e, False))
    people = sorted(set(gal_l))
    idx = {p: i for i, p in enumerate(people)}
    g = np.stack(gal_e)
    gl = np.array([idx[x] for x in gal_l])
    correct = wrong = unknown = stranger_named = stranger_total = enrolled_total = 0
    for lab, e, is_stranger in probes:
        name = decide(g, gl, people, e) if e is not None else None
        if is_stranger:
            stranger_total += 1
            stranger_named += name is not None
        else:
            enrolled_total += 1
            if name == lab:
                correct += 1
            elif name is None:
                unknown += 1
            else:
                wrong += 1
    return {
        "enrolled_probes": enrolled_total,
        "named_correctly": correct / enrolled_total,
        "named_wrongly": wrong / enrolled_total,
        "left_unknown": unknown / enrolled_total,
        "stranger_probes": stranger_total,
        "strangers_named": stranger_named / max(stranger_total, 1),
    }


def livecam_decide(threshold: float, margin: float):
    cache: dict[int, Matcher] = {}

    def decide(g, gl, people, e):
        m = cache.setdefault(id(g), Matcher(g, gl, people, threshold, margin))
        return m.match_one(e).name

    return decide


def peer_decide(g, gl, people, e):
    # facerec_from_webcam_faster: compare_faces at 0.6, then the best match among the hits
    d = np.linalg.norm(g - e, axis=1)
    best = int(np.argmin(d))
    return people[gl[best]] if d[best] <= PEER_TOLERANCE else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("LIVECAM_TEST_DATA", REPO.parent / "shared/data/faces"))
    ap.add_argument("--people", type=int, default=64)
    ap.add_argument("--per-person", type=int, default=30)
    ap.add_argument("--gallery", type=int, default=5, help="photos per enrolled person")
    ap.add_argument("--strangers", type=int, default=16, help="people never enrolled")
    ap.add_argument("--json", help="also write results here")
    args = ap.parse_args()
    photos = pick_photos(Path(args.data), args.people, args.per_person)
    tmp = Path(tempfile.mkdtemp(prefix="livecam-bench-"))
    try:
        for name, f in photos:
            shutil.copy(f, tmp / f"{name}__{int(f.stem):03d}.jpg")
        keys = [f"{name}__{int(f.stem):03d}.jpg" for name, f in photos]
        labels = [name for name, _ in photos]
        print(f"{len(photos)} photos of {len(set(labels))} people; cores: {os.cpu_count()}", flush=True)

        results: dict[str, dict] = {}
        peer_encs, peer_wall, peer_loop = run_peer(tmp)
        results["face_recognition 1.3.0"] = {
            "wall_s": peer_wall,
            "images_per_s": len(keys) / peer_wall,
            "encs": peer_encs,
            "threshold": PEER_TOLERANCE,
            "decide": peer_decide,
        }
        for label, extra in (("livecam (flip everywhere)", ["--flip"]), ("livecam (no flip)", ["--no-flip"])):
            encs, wall = run_livecam(tmp, None, extra)
            results[label] = {
                "wall_s": wall,
                "images_per_s": len(keys) / wall,
                "encs": encs,
                "threshold": DEFAULT_THRESHOLD,
                "decide": livecam_decide(DEFAULT_THRESHOLD, DEFAULT_MARGIN),
            }

        # the default: gallery photos mirror-averaged (once, cached), everything else plain
        mixed = {}
        seen: dict[str, int] = {}
        for key, lab in zip(keys, labels, strict=True):
            seen[lab] = seen.get(lab, 0) + 1
            src = "livecam (flip everywhere)" if seen[lab] <= args.gallery else "livecam (no flip)"
            mixed[key] = results[src]["encs"].get(key)
        results["livecam (flip gallery only)"] = dict(results["livecam (no flip)"], encs=mixed)
        names_sorted = sorted(set(labels))
        strangers = set(names_sorted[len(names_sorted) - args.strangers :]) if args.strangers else set()
        report = {}
        for label, r in results.items():
            encs = [r["encs"].get(k) for k in keys]
            row = {
                "images_per_s": round(r["images_per_s"], 1),
                "wall_s": round(r["wall_s"], 1),
                "no_face": sum(e is None for e in encs),
                "verification": verification(labels, encs, r["threshold"]),
                "verification_at_0.6": verification(labels, encs, 0.6),
                "identification": identification(labels, keys, encs, args.gallery, strangers, r["decide"]),
            }
            report[label] = row
        peer_ips = report["face_recognition 1.3.0"]["images_per_s"]
        print()
        print(
            "| tool | images/s | vs peer | no face | TAR@FAR=0.1% | TAR | FAR | named right | named wrong"
            " | strangers named |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for label, row in report.items():
            v, i = row["verification"], row["identification"]
            cells = [
                label,
                row["images_per_s"],
                f"{row['images_per_s'] / peer_ips:.2f}x",
                row["no_face"],
                f"{v['TAR_at_FAR_0.1%']:.4f}",
                f"{v['TAR']:.4f}",
                f"{v['FAR']:.5f}",
                f"{i['named_correctly']:.4f}",
                f"{i['named_wrongly']:.4f}",
                f"{i['strangers_named']:.4f} ({i['stranger_probes']})",
            ]
            print("| " + " | ".join(map(str, cells)) + " |")
        print()
        for label, row in report.items():
            v6 = row["verification_at_0.6"]
            v = row["verification"]
            print(
                f"{label}: at 0.6 TAR {v6['TAR']:.4f} FAR {v6['FAR']:.5f}"
                f" balanced {v6['accuracy_balanced']:.4f}; impostor 0.1% quantile"
                f" {v['impostor_d_p001']:.3f}, genuine median {v['genuine_d_median']:.3f}"
            )
        print("\nthreshold sweep, livecam default (mirror-averaged gallery), identification:")
        print("| threshold | named right | named wrong | strangers named |")
        print("|---|---|---|---|")
        r = results["livecam (flip gallery only)"]
        encs = [r["encs"].get(k) for k in keys]
        for t in (0.40, 0.42, 0.44, 0.46, 0.48, 0.50, 0.55, 0.60):
            i = identification(labels, keys, encs, args.gallery, strangers, livecam_decide(t, DEFAULT_MARGIN))
            print(f"| {t:.2f} | {i['named_correctly']:.4f} | {i['named_wrongly']:.4f} | {i['strangers_named']:.4f} |")
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
