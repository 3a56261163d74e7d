"""A small board, emulated: a command run under a cgroup CPU quota, pinned to one core.

    with cpu_quota(25) as prefix:     # 25 % of one core
        subprocess.run(prefix + ["livecam", "run", ...])

`prefix` puts the process into a fresh cgroup (v1 `cpu` controller: cfs_quota_us / cfs_period_us; v2:
cpu.max) and pins it to one core with `taskset` (core 0 unless told); its children (the encoder processes)
inherit both. Needs root
and a writable cgroup hierarchy: `QuotaUnavailable` says why not, so a benchmark can skip with a message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PERIOD_US = 100_000
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")


class QuotaUnavailable(RuntimeError):
    pass


def _make_group(name: str, percent: float) -> tuple[Path, str]:
    quota = max(1000, int(PERIOD_US * percent / 100))
    if (CGROUP_V1 / "cpu.cfs_quota_us").exists():
        group = CGROUP_V1 / name
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
        (group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        return group, "tasks"
    if (CGROUP_V2 / "cgroup.controllers").exists():
        group = CGROUP_V2 / name
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(f"{quota} {PERIOD_US}\n")
        return group, "cgroup.procs"
    raise QuotaUnavailable("no cgroup CPU controller found at /sys/fs/cgroup")


@contextmanager
def cpu_quota(percent: float, name: str | None = None, core: int = 0) -> Iterator[list[str]]:
    """A command prefix that runs under `percent` % of one core, pinned to `core`."""
    if not shutil.which("taskset"):
        raise QuotaUnavailable("taskset not found (util-linux)")
    name = name or f"livecam-bench-{os.getpid()}-{int(percent)}"
    try:
        group, procs = _make_group(name, percent)
    except OSError as exc:
        raise QuotaUnavailable(f"cannot create a cgroup ({exc.strerror}; run as root)") from None
    try:
        yield ["sh", "-c", f'echo $$ > {group / procs} && exec taskset -c {int(core)} "$@"', "sh"]
    finally:
        with contextlib.suppress(OSError):  # a process still in it: left for the kernel
            group.rmdir()
