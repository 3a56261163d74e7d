"""The CPU budget (affinity and cgroup quotas) and the encoding pool sized by it (issue 18)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from livecam import cpu
from livecam.cpu import cpu_budget
from livecam.engine import batch
from livecam.engine.batch import EngineSettings, default_workers, encode_files

AFFINITY = len(os.sched_getaffinity(0))


def cgroup_v2(tmp_path: Path, limits: dict[str, str], own: str = "/") -> tuple[Path, Path]:
    """A fake cgroup v2 tree: `cpu.max` of each folder in `limits` (paths under the root), and this process in `own`."""
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory\n")
    for folder, limit in limits.items():
        (root / folder.strip("/")).mkdir(parents=True, exist_ok=True)
        (root / folder.strip("/") / "cpu.max").write_text(limit + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{own}\n")
    return root, proc


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("max 100000", AFFINITY),  # no quota
        ("50000 100000", 1),  # half a CPU: still one worker
        ("100000 100000", 1),
        ("150000 100000", min(2, AFFINITY)),  # 1.5 CPUs, rounded up
        ("800000 100000", AFFINITY),  # more than the CPUs it may run on
    ],
)
def test_cgroup_v2_quota_caps_the_budget(tmp_path, limit, expected):
    root, proc = cgroup_v2(tmp_path, {"/": limit})
    assert cpu_budget(root, proc) == expected


def test_the_tightest_quota_of_the_cgroup_and_those_above_it_counts(tmp_path):
    root, proc = cgroup_v2(
        tmp_path,
        {"/system.slice": "100000 100000", "/system.slice/livecam.service": "max 100000"},
        own="/system.slice/livecam.service",
    )
    assert cpu_budget(root, proc) == 1  # the service sets none; its slice allows one CPU


def test_cgroup_v1_quota_and_a_hybrid_tree(tmp_path):
    root = tmp_path / "cgroup"
    (root / "cpu,cpuacct" / "docker" / "abc").mkdir(parents=True)
    (root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("100000\n")
    (root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    (root / "unified").mkdir()  # the v2 hierarchy of a hybrid machine, with no cpu controller
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n0::/docker/abc\n")
    assert cpu_budget(root, proc) == 1
    (root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert cpu_budget(root, proc) == AFFINITY


def test_no_cgroup_files_at_all_means_the_affinity(tmp_path):
    assert cpu_budget(tmp_path / "nothing", tmp_path / "no-such-file") == AFFINITY
    junk = tmp_path / "junk"
    junk.write_text("garbage\n0::/x\n")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "cgroup.controllers").write_text("")
    (tmp_path / "root" / "x").mkdir()
    (tmp_path / "root" / "x" / "cpu.max").write_text("lots 0\n")
    assert cpu_budget(tmp_path / "root", junk) == AFFINITY


def test_the_share_says_a_fraction_of_a_core_and_what_set_it(tmp_path):
    """Issue 20: a quarter of one core is 0.25, not "1 CPU": the loop's budget needs the fraction."""
    root, proc = cgroup_v2(tmp_path, {"/board": "25000 100000"}, own="/board")
    share = cpu.cpu_share(root, proc)
    assert share.cpus == 0.25 and share.quota == 0.25 and share.allowed == AFFINITY
    assert share.describe() == f"CPU budget 0.25 of a core (cgroup quota) on {AFFINITY} core{'s' * (AFFINITY != 1)}"
    assert cpu_budget(root, proc) == 1
    (tmp_path / "none").mkdir()
    root, proc = cgroup_v2(tmp_path / "none", {"/": "max 100000"})
    assert cpu.cpu_share(root, proc).describe() == f"CPU budget {AFFINITY} core{'s' * (AFFINITY != 1)} (affinity)"


def test_a_run_under_a_real_cgroup_quota_says_its_budget(data, tmp_path):
    """`livecam run` in a real cgroup at half a core, pinned to one core (benchmarks/cpu_quota.py, as root):
    its summary names the budget it found."""
    import shutil
    import subprocess
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from cpu_quota import QuotaUnavailable, cpu_quota

    livecam = Path(sys.executable).parent / "livecam"
    clip = data / "videos" / "short_hamilton_clip.mp4"
    gallery = tmp_path / "known_faces"
    (gallery / "Tony_Blair").mkdir(parents=True)
    shutil.copy(data / "identities" / "Tony_Blair" / "1.jpg", gallery / "Tony_Blair")
    try:
        with cpu_quota(50, name=f"livecam-test-{os.getpid()}") as prefix:
            proc = subprocess.run(
                [*prefix, str(livecam), "run", "--camera", str(clip), "--no-window", "--frames", "20"]
                + ["--known-faces", str(gallery)],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                timeout=300,
            )
    except QuotaUnavailable as exc:
        pytest.skip(f"no cgroup to run in: {exc}")
    assert proc.returncode == 0, proc.stderr
    assert "CPU budget 0.50 of a core (cgroup quota) on 1 core" in proc.stderr, proc.stderr


def test_the_pool_is_sized_by_the_budget_and_the_inputs():
    assert default_workers(1, budget=8) == 1  # one photo: no pool
    assert default_workers(20, budget=8) == 1  # a worker's start-up would cost more than it saves
    assert default_workers(40, budget=8) == 2
    assert default_workers(1000, budget=2) == 2
    assert default_workers(1000, budget=1) == 1


def test_encode_in_a_one_cpu_container_starts_no_pool(tmp_path, data, monkeypatch):
    """Issue 18: default workers meant one per visible core; in a cgroup allowed one CPU, two workers
    shared it and paid their start-up twice (3.5x slower than --workers 1 on a busy 2-core machine)."""
    root, proc = cgroup_v2(tmp_path, {"/": "100000 100000"})
    monkeypatch.setattr(cpu, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpu, "PROC_CGROUP", proc)
    contexts = []
    real = batch.multiprocessing.get_context
    monkeypatch.setattr(batch.multiprocessing, "get_context", lambda *a: contexts.append(a) or real(*a))
    photos = sorted((data / "identities").glob("*/*.jpg"))[:40]
    results = encode_files(photos, EngineSettings(), workers=0)
    first = next(results)  # the pool, if any, starts before the first result
    results.close()
    assert first.path == photos[0] and len(first.faces) == 1
    assert contexts == []
