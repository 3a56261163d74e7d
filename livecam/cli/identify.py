"""`livecam identify`: name the faces in photos from the gallery."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from ..config import Config, override
from ..engine import encode_files, gallery_stats, iter_image_files, load_gallery
from ..identity import STRANGER_LABEL
from ..wiring import gallery_settings
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    _apply_engine_flags,
    _engine_flags,
    _known_faces,
    _probe_settings,
)

log = logging.getLogger("livecam")


def cmd_identify(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _apply_engine_flags(cfg, args)
    cfg = override(cfg, known_faces=_known_faces(cfg, args))
    cfg = override(cfg, "matching", threshold=args.threshold)
    settings = _probe_settings(cfg, args)
    engine = settings.build()
    enrolled = gallery_settings(cfg)
    gallery_engine = engine.with_flip(enrolled.flip_average)
    gallery = load_gallery(cfg.known_faces, enrolled, cfg.workers, gallery_engine)
    log.info("gallery %s: %s", cfg.known_faces, gallery_stats(gallery))
    if not len(gallery):
        log.warning("%s: no enrolled faces; every face will be unknown", cfg.known_faces)
    matcher = gallery.matcher(cfg.matching.threshold, cfg.matching.margin)
    failed = 0
    paths = iter_image_files([Path(p) for p in args.paths])
    for result in encode_files(paths, settings, 1, engine):
        if result.error:
            failed += 1
            log.warning("%s", result.error)
        matches = matcher.match(np.array([f.encoding for f in result.faces])) if result.faces else []
        if args.json:
            faces = [
                {
                    "box": f.box.as_list(),
                    "name": m.name or STRANGER_LABEL,
                    "nearest": m.nearest,  # also for unknown faces: who they came closest to
                    "distance": round(m.distance, 4) if np.isfinite(m.distance) else None,
                    "margin": round(m.margin, 4) if np.isfinite(m.margin) else None,
                }
                for f, m in zip(result.faces, matches, strict=True)
            ]
            print(json.dumps({"path": str(result.path), "faces": faces, "error": result.error}, ensure_ascii=False))
        elif not result.error:
            if not result.faces:
                print(f"{result.path}: no face")
            for f, m in zip(result.faces, matches, strict=True):
                dist = f"{m.distance:.3f}" if np.isfinite(m.distance) else "-"
                near = f", nearest {m.nearest}" if m.name is None and m.nearest else ""
                print(f"{result.path}: {m.name or STRANGER_LABEL} (distance {dist}{near}) at {f.box.as_list()}")
    return EXIT_FAILED if failed else EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("identify", help="name the faces in photos from the gallery")
    p.add_argument("paths", nargs="+")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    _engine_flags(p)
    p.add_argument("--threshold", type=float)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_identify)
