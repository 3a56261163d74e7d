"""`livecam encode`: one embedding per face in each image, as JSON lines (the encode contract) or .npy."""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from ..config import Config
from ..engine import Face, encode_files, iter_image_files
from ..models import MODELS
from ..storage import atomic_write_bytes, check_output_file
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _apply_engine_flags,
    _engine_flags,
    _probe_settings,
)

log = logging.getLogger("livecam")


def _encoding_json(encoding: np.ndarray) -> list[float]:
    # float32 carries ~7 significant digits; printing more only adds noise.
    return [float(f"{v:.7g}") for v in encoding.tolist()]


def _face_json(face: Face) -> dict:
    return {"box": face.box.as_list(), "encoding": _encoding_json(face.encoding)}


def cmd_encode(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _apply_engine_flags(cfg, args)
    if args.format == "npy" and not args.output:
        raise UsageError("--format npy needs -o FILE.npy")
    if args.output:
        check_output_file(args.output)
    paths = iter_image_files([Path(p) for p in args.paths])
    workers = args.workers if args.workers is not None else cfg.workers
    failed = 0
    encodings: list[np.ndarray] = []
    out = io.StringIO() if args.output else sys.stdout
    started = time.perf_counter()
    for result in encode_files(paths, _probe_settings(cfg, args), workers):
        if result.error:
            failed += 1
            log.warning("%s", result.error)
        if args.format == "npy":
            encodings.extend(f.encoding for f in result.faces)
            continue
        record = {
            "path": str(result.path),
            "model": cfg.encoding.model,
            "faces": [_face_json(f) for f in result.faces],
            "error": result.error,
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if out is sys.stdout:
            out.flush()
    if args.output:
        if args.format == "npy":
            buf = io.BytesIO()
            dimension = MODELS[cfg.encoding.model].dimension
            np.save(buf, np.array(encodings, np.float32).reshape(-1, dimension), allow_pickle=False)
            data = buf.getvalue()
        else:
            data = out.getvalue().encode("utf-8")
        atomic_write_bytes(Path(args.output), data)  # encodings are biometric: 0600
    elapsed = time.perf_counter() - started
    log.info(
        "%d images in %.2f s (%.1f images/s), %d failed",
        len(paths),
        elapsed,
        len(paths) / max(elapsed, 1e-9),
        failed,
    )
    return EXIT_FAILED if failed else EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser(
        "encode", help="one embedding per face in each image (JSON lines; dlib 128-d, facenet 512, mobilefacenet 192)"
    )
    p.add_argument("paths", nargs="+", help="images or folders (walked in sorted order)")
    _engine_flags(p)
    p.add_argument("--format", choices=("jsonl", "npy"), default="jsonl")
    p.add_argument("-o", "--output", help="write to FILE instead of standard output")
    p.add_argument("--workers", type=int, help="processes (default: one per core)")
    p.set_defaults(func=cmd_encode)
