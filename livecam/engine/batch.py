"""Encoding many photos: one engine per worker process, results in input order."""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cpu import cpu_budget
from .faces import Box, Face, FaceEngine, ModelError
from .images import ImageError, decode_image, read_bytes

if TYPE_CHECKING:
    from .stages import PhotoEngine

log = logging.getLogger(__name__)

# Photos per network call: big enough to amortise the call, small enough that
# results stream out steadily and both workers stay busy to the end.
BATCH = 8


@dataclass(frozen=True)
class EngineSettings:
    """Everything a worker needs to build its own FaceEngine (picklable by multiprocessing)."""

    models_dir: Path | None = None
    model: str = "dlib"  # models.MODELS
    detector: str = "hog"
    upsample: int = 1
    max_upsample: int = 2
    cnn_fallback: bool = True
    jitters: int = 0
    flip_average: bool = True
    cache_dir: Path | None = None  # where the gallery cache lives (None: in the gallery folder; gallery.cache_path)
    state_dir: Path | None = None  # whose key seals that cache (None: the XDG default; state.state_dir)

    def build(self) -> FaceEngine:
        return FaceEngine(self.models_dir, self.detector, self.flip_average, self.jitters, model=self.model)


@dataclass(frozen=True)
class FileResult:
    """The faces found in one input file, or the one-line reason it could not be read."""

    path: Path
    faces: list[Face]
    error: str | None = None


def encode_paths(
    engine: PhotoEngine, settings: EngineSettings, paths: list[Path], follow_symlinks: bool = True
) -> list[FileResult]:
    """Faces in each file; the chips of all files go through the network in one batch,
    which is ~10 % cheaper per face than one call per photo."""
    found: list[tuple[Path, list[Box], list[np.ndarray]] | FileResult] = []
    for path in paths:
        try:
            rgb = decode_image(read_bytes(path, follow_symlinks), path)
        except ImageError as exc:
            found.append(FileResult(path, [], str(exc)))
            continue
        boxes = engine.detect_still(rgb, settings.upsample, settings.max_upsample, settings.cnn_fallback)
        found.append((path, boxes, engine.chips(rgb, boxes)))
    chips = [c for item in found if not isinstance(item, FileResult) for c in item[2]]
    encodings = iter(engine.encode_chips(chips))
    results = []
    for item in found:
        if isinstance(item, FileResult):
            results.append(item)
            continue
        path, boxes, _ = item
        results.append(FileResult(path, [Face(b, next(encodings)) for b in boxes]))
    return results


def encode_path(engine: PhotoEngine, settings: EngineSettings, path: Path) -> FileResult:
    return encode_paths(engine, settings, [path])[0]


class EncoderError(RuntimeError):
    """An encoder process could not start or died; str() is one line."""


def send_arrays(conn, meta: Any, arrays: list[np.ndarray]) -> None:
    """One message over a multiprocessing pipe: a JSON header (`meta`, each array's dtype and shape),
    then each array's raw bytes. Nothing is pickled, and there are no queues: no named semaphores
    for the resource tracker to find "leaked" when a process is killed."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    header = {"meta": meta, "arrays": [[a.dtype.str, list(a.shape)] for a in arrays]}
    conn.send_bytes(json.dumps(header).encode())
    for a in arrays:
        conn.send_bytes(a.reshape(-1).data)  # 1-D: send_bytes sizes a view by its first axis


def recv_arrays(conn) -> tuple[Any, list[np.ndarray]]:
    header = json.loads(conn.recv_bytes())
    arrays = [
        # bytearray: writable arrays without another copy
        np.frombuffer(bytearray(conn.recv_bytes()), dtype=np.dtype(dtype)).reshape(shape)
        for dtype, shape in header["arrays"]
    ]
    return header["meta"], arrays


# The other side of a pipe is gone (killed, crashed): what reading or writing it raises.
PEER_GONE = (EOFError, BrokenPipeError, ConnectionResetError)

# A worker costs about as much to start (spawn, imports, models: ~0.5 s) as encoding this many
# photos (~20-40 ms each with detection): fewer photos per worker and the pool is slower than none.
PHOTOS_PER_WORKER = 16


def default_workers(inputs: int, budget: int | None = None) -> int:
    """Processes for `inputs` photos: the CPUs this process may use (cpu.cpu_budget: affinity and
    cgroup quota), and no more than keep PHOTOS_PER_WORKER photos each busy; 1 means no pool."""
    budget = cpu_budget() if budget is None else budget
    return max(1, min(budget, inputs // PHOTOS_PER_WORKER))


def _worker_main(settings: EngineSettings, requests, results) -> None:
    """An encoding process: batches of paths in, their faces out, until the parent closes its pipe.
    A parent that dies (kill -9) closes it too: the worker ends quietly, with no traceback."""
    # Ctrl-C reaches the whole process group: the parent stops the workers in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            engine = settings.build().load()
        except ModelError as exc:  # one line from the parent, not a traceback from each worker
            send_arrays(results, {"model_error": str(exc)}, [])
            return
        while True:
            job = json.loads(requests.recv_bytes())
            found = encode_paths(engine, settings, [Path(p) for p in job["paths"]], job["follow_symlinks"])
            meta = [{"error": r.error, "boxes": [f.box.as_list() for f in r.faces]} for r in found]
            encodings = [f.encoding for r in found for f in r.faces]
            send_arrays(results, meta, [np.stack(encodings)] if encodings else [])
    except PEER_GONE:
        return


class _Worker:
    """One encoding process and its two pipes (only this process holds their other ends)."""

    def __init__(self, ctx, settings: EngineSettings) -> None:
        child_requests, self.requests = ctx.Pipe(duplex=False)
        self.results, child_results = ctx.Pipe(duplex=False)
        args = (settings, child_requests, child_results)
        self.process = ctx.Process(target=_worker_main, args=args, name="livecam-encode", daemon=True)
        self.process.start()
        child_requests.close()  # the child has its own copies: its death is EOF here
        child_results.close()
        self.job: int | None = None  # index of the batch it is working on

    def give(self, job: tuple[int, list[Path]] | None, follow_symlinks: bool) -> None:
        """Hand it batch `job` (index, paths), if any; EncoderError if it has died."""
        if job is None:
            return
        self.job = job[0]
        request = {"paths": [str(p) for p in job[1]], "follow_symlinks": follow_symlinks}
        try:
            self.requests.send_bytes(json.dumps(request).encode())
        except PEER_GONE:
            raise self.died() from None

    def died(self) -> EncoderError:
        self.process.join(timeout=5)
        return EncoderError(f"an encoding worker process died (exit code {self.process.exitcode})")

    def close(self) -> None:
        self.requests.close()  # EOF: the worker returns
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.results.close()


def _pooled(
    batches: list[list[Path]], settings: EngineSettings, workers: int, follow_symlinks: bool
) -> Iterator[FileResult]:
    """The batches' results in input order, from `workers` processes, one batch each at a time."""
    previous = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read by OpenBLAS when a worker imports dlib
    pool: list[_Worker] = []
    try:
        ctx = multiprocessing.get_context("spawn")  # no fork after OpenBLAS threads exist
        for _ in range(workers):
            pool.append(_Worker(ctx, settings))
    except BaseException:
        for worker in pool:
            worker.close()
        raise
    finally:
        if previous is None:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = previous
    try:
        todo = iter(enumerate(batches))
        done: dict[int, list[FileResult]] = {}
        following = 0  # the next batch to yield
        for worker in pool:
            worker.give(next(todo, None), follow_symlinks)
        while following < len(batches):
            busy = {w.results: w for w in pool if w.job is not None}
            for conn in multiprocessing.connection.wait(list(busy)):
                worker = busy[conn]
                try:
                    meta, arrays = recv_arrays(conn)
                except PEER_GONE:
                    raise worker.died() from None
                if isinstance(meta, dict):
                    raise ModelError(meta["model_error"])
                assert worker.job is not None
                done[worker.job] = _results(batches[worker.job], meta, arrays)
                worker.job = None
                worker.give(next(todo, None), follow_symlinks)
            while following in done:
                yield from done.pop(following)
                following += 1
    finally:
        for worker in pool:
            worker.close()


def _results(paths: list[Path], meta: list[dict], arrays: list[np.ndarray]) -> list[FileResult]:
    encodings = iter(arrays[0] if arrays else ())
    return [
        FileResult(path, [Face(Box(*box), next(encodings)) for box in item["boxes"]], item["error"])
        for path, item in zip(paths, meta, strict=True)
    ]


def encode_files(
    paths: Iterable[Path],
    settings: EngineSettings,
    workers: int = 0,
    engine: FaceEngine | None = None,
    follow_symlinks: bool = True,
) -> Iterator[FileResult]:
    """Yield one FileResult per path, in input order, using `workers` processes.

    workers=0: as many as the CPU budget and the number of photos make worth it (default_workers).
    With several workers each process runs OpenBLAS on one thread: on small batches that is faster
    than sharing one network between threads, and nothing oversubscribes the cores. A worker that
    dies is EncoderError (one line); a parent that dies ends its workers quietly.
    `follow_symlinks=False` (the gallery): a photo that is a link is refused.
    """
    paths = list(paths)
    workers = min(workers or default_workers(len(paths)), len(paths))
    if workers <= 1:
        engine = engine or settings.build()
        for i in range(0, len(paths), BATCH):
            yield from encode_paths(engine, settings, paths[i : i + BATCH], follow_symlinks)
        return
    size = min(BATCH, -(-len(paths) // workers))  # a few photos still reach every worker
    batches = [paths[i : i + size] for i in range(0, len(paths), size)]
    yield from _pooled(batches, settings, workers, follow_symlinks)
