"""Issue 5: `kill -9` while the gallery cache is being written never leaves a bad cache."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

from livecam.engine.batch import EngineSettings
from livecam.engine.gallery import CACHE_NAME, Stamp, _CacheEntry, read_cache, write_cache

WRITER = r"""
import sys
import numpy as np
from pathlib import Path
from livecam.engine.batch import EngineSettings
from livecam.engine.gallery import Stamp, _CacheEntry, write_cache
path, n = Path(sys.argv[1]), 0
rng = np.random.default_rng(0)
while True:  # big caches, so that a kill often lands mid-write
    size = 4000 if n % 2 else 6000
    entries = {f"P{i % 50}/{i}.jpg": _CacheEntry(Stamp(i, i, i, i), rng.normal(0, 0.1, 128).astype(np.float32), "")
               for i in range(size)}
    write_cache(path, entries, EngineSettings())
    n += 1
    print(n, flush=True)
"""


def test_kill_9_mid_write_leaves_the_old_or_the_new_cache(tmp_path):
    cache = tmp_path / CACHE_NAME
    write_cache(cache, {"A/1.jpg": _CacheEntry(Stamp(1, 1, 1, 1), np.zeros(128, np.float32), "")}, EngineSettings())
    rng = random.Random(1)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(cache)], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one full write happened
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        entries = read_cache(cache, EngineSettings())
        assert len(entries) in (4000, 6000)  # a whole cache, never a torn one
    # the next writer clears temporary files a killed writer left behind
    write_cache(cache, entries, EngineSettings())
    assert [p.name for p in tmp_path.iterdir()] == [CACHE_NAME]
