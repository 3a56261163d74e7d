"""`livecam calibrate`: distances in the gallery, and a threshold for a target false-accept rate."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from ..config import Config
from ..door import calibrate, recommendation, write_plot
from ..engine import gallery_stats, load_gallery
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


def far_rate(text: str) -> float:
    """--far: a false-accept rate, strictly between 0 and 1 (2 or nan meant nothing, and was taken)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1 (e.g. 0.001: one in a thousand)")
    return value


def cmd_calibrate(args: argparse.Namespace, cfg: Config) -> int:
    if args.plot:
        check_output_file(args.plot)
    root = _known_faces(cfg, args)
    gallery = load_gallery(root, gallery_settings(cfg), cfg.workers)
    try:
        cal = calibrate(gallery, args.far)
    except ValueError as exc:
        raise UsageError(f"{root}: {exc}") from None
    current = cfg.matching.threshold
    print(f"{gallery_stats(gallery)}: {len(cal.genuine)} same-person pairs, {len(cal.impostor)} different-person pairs")
    if len(cal.genuine):
        print(f"same person: median {np.median(cal.genuine):.3f}, max {cal.genuine.max():.3f}")
    print(f"different people: min {cal.impostor.min():.3f}, median {np.median(cal.impostor):.3f}")
    few = len(cal.impostor) * args.far < 1
    if few:
        print(f"note: only {len(cal.impostor)} different-person pairs; FAR {args.far:g} is below what they can show")
    print(recommendation(cal, current, MODELS[cfg.encoding.model].threshold, few))
    print("closest look-alikes (different people):")
    for look in cal.lookalikes:
        print(f"  {look.distance:.3f}  {look.a}  ~  {look.b}")
    if args.plot:
        write_plot(cal, current, Path(args.plot))
        print(f"histogram: {args.plot}")
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="distances in the gallery, a threshold for a target false-accept rate")
    _model_flag(p)
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument("--far", type=far_rate, default=0.001, help="target false-accept rate, 0 to 1 (default 0.001)")
    p.add_argument("--plot", metavar="PNG", help="also draw the histogram into this PNG file")
    p.set_defaults(func=cmd_calibrate)
