"""`livecam calibrate`: distances in the gallery, and a threshold for a target false-accept rate."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from ..calibrate import calibrate, write_plot
from ..config import Config
from ..gallery import gallery_stats, load_gallery
from ..models import MODELS
from ..storage import check_output_file
from ..wiring import gallery_settings
from .common import (
    EXIT_OK,
    UsageError,
    _known_faces,
    _model_flag,
)

log = logging.getLogger("livecam")


def cmd_calibrate(args: argparse.Namespace, cfg: Config) -> int:
    check_output_file(args.plot)
    root = _known_faces(cfg, args)
    gallery = load_gallery(root, gallery_settings(cfg), cfg.workers)
    try:
        cal = calibrate(gallery, args.far)
    except ValueError as exc:
        raise UsageError(f"{root}: {exc}") from None
    print(f"{gallery_stats(gallery)}: {len(cal.genuine)} same-person pairs, {len(cal.impostor)} different-person pairs")
    if len(cal.genuine):
        print(f"same person: median {np.median(cal.genuine):.3f}, max {cal.genuine.max():.3f}")
    print(f"different people: min {cal.impostor.min():.3f}, median {np.median(cal.impostor):.3f}")
    print(
        f"suggested matching.threshold for FAR {args.far:g}: {cal.threshold:.3f} (accepts {cal.tar:.1%} of"
        f" same-person pairs); current: {cfg.matching.threshold:.3f}"
    )
    few = len(cal.impostor) * args.far < 1
    if few:
        print(f"note: only {len(cal.impostor)} different-person pairs; FAR {args.far:g} is below what they can show")
    if cal.threshold > cfg.matching.threshold and (few or cal.threshold > MODELS[cfg.encoding.model].threshold):
        # a gallery of a few people cannot show the look-alikes a door meets: strangers are not in it
        print(
            f"advice: keep {cfg.matching.threshold:.3f}. A looser threshold names more of your people and also more"
            " strangers, who are not in this gallery to be counted; the default was chosen with strangers"
            ' (docs/engine.md, "Choosing the threshold")'
        )
    print("closest look-alikes (different people):")
    for look in cal.lookalikes:
        print(f"  {look.distance:.3f}  {look.a}  ~  {look.b}")
    write_plot(cal, cfg.matching.threshold, Path(args.plot))
    print(f"histogram: {args.plot}")
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="distances in the gallery, a threshold for a target false-accept rate")
    _model_flag(p)
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument("--far", type=float, default=0.001, help="target false-accept rate (default 0.001)")
    p.add_argument("--plot", default="calibration.png", help="histogram PNG (default calibration.png)")
    p.set_defaults(func=cmd_calibrate)
