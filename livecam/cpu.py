"""How many CPUs this process may use: its affinity, capped by a cgroup CPU quota (containers, systemd's CPUQuota).

os.cpu_count() counts the machine's cores. A container given one CPU's worth of time on a
2-core machine still sees 2; two busy workers there each get half a core, and their start-up
(spawning, imports, models) is paid twice for nothing.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class CpuShare:
    """The CPU time this process may use: `cpus` (0.25: a quarter of one core) and what limits it."""

    cpus: float
    allowed: int  # the CPUs it may run on (affinity)
    quota: float | None  # the tightest cgroup quota, in CPUs (None: none set)

    def describe(self) -> str:
        cores = f"{self.allowed} core{'s' if self.allowed != 1 else ''}"
        if self.quota is not None and self.quota < self.allowed:
            return f"CPU budget {self.cpus:.2f} of a core (cgroup quota) on {cores}"
        return f"CPU budget {cores} (affinity)"


def cpu_share(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> CpuShare:
    """The CPUs this process may run on, capped by the tightest cgroup quota (v2 `cpu.max`, v1
    `cpu.cfs_quota_us` / `cpu.cfs_period_us`) of its cgroup and the cgroups above it. The paths are for tests."""
    root = CGROUP_ROOT if cgroup_root is None else cgroup_root
    own = PROC_CGROUP if proc_cgroup is None else proc_cgroup
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _quota(root, own)
    return CpuShare(min(float(allowed), quota) if quota is not None else float(allowed), allowed, quota)


def cpu_budget(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> int:
    """Worker processes worth running: cpu_share rounded up, at least 1."""
    return max(1, math.ceil(cpu_share(cgroup_root, proc_cgroup).cpus))


def _quota(root: Path, own: Path) -> float | None:
    """The tightest CPU quota (in CPUs) over this process's cgroup and its ancestors; None if none is set."""
    try:
        lines = own.read_text().splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2: "0::/path"
            # under a v1/v2 hybrid the unified hierarchy is mounted at <root>/unified
            base = root if (root / "cgroup.controllers").exists() else root / "unified"
            quotas += _walk(base, path, _v2_quota)
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            for name in (controllers, "cpu", "cpu,cpuacct"):
                if (root / name).is_dir():
                    quotas += _walk(root / name, path, _v1_quota)
                    break
    return min(quotas) if quotas else None


def _walk(base: Path, path: str, read) -> list[float]:
    """The quotas set at `path` under `base` and at each folder above it. In a container the cgroup
    namespace shows `/` for the container's own cgroup, whose files are then at `base` itself."""
    found = []
    folder = base / path.strip("/")
    while True:
        quota = read(folder)
        if quota is not None:
            found.append(quota)
        if folder == base or base not in folder.parents:
            return found
        folder = folder.parent


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError, ZeroDivisionError):
        return None
