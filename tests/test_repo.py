"""What the repository holds: no files a run leaves behind (issue 18: a stray embed1.pid was committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEFT_BY_RUNS = (".pid", ".lock", ".npz", ".jsonl", ".sqlite", ".db", ".log")


def tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return out.splitlines()


def test_no_file_a_run_leaves_behind_is_tracked():
    stray = [f for f in tracked() if f.endswith(LEFT_BY_RUNS) or Path(f).name.startswith(".livecam-cache")]
    assert not stray, f"files left by a run are tracked: {stray}"
