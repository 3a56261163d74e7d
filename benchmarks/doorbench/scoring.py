"""Scoring a side's run of a clip against its ground truth (score_scene for generated clips, score_real for
the real ones), and the totals over a group of clips (aggregate): the figures the tables print.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from doorbench.jobs import SIDES, Job
from doorbench.scenes import SceneVisit
from doorbench.truth import attribute, truth_by_frame

NOT_A_NAME = (None, "unknown")


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


# -- totals over clips --------------------------------------------------------------------------------
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
