"""`livecam verify`: are two photos the same person? Exit 0 same, 1 different, 2 could not tell."""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np

from ..config import Config, override
from ..engine import ImageError
from ..wiring import engine_settings, gallery_settings
from .common import (
    EXIT_DIFFERENT,
    EXIT_OK,
    UsageError,
    _apply_engine_flags,
    _engine_flags,
    _subject,
)

log = logging.getLogger("livecam")


def cmd_verify(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _apply_engine_flags(cfg, args)
    cfg = override(cfg, "matching", verify_threshold=args.threshold)
    threshold = cfg.matching.verify_threshold
    # two photos, like enrolled ones: worth the mirror pass unless told otherwise
    settings = engine_settings(cfg, args.flip) if args.flip is not None else gallery_settings(cfg)
    engine = settings.build()
    try:
        a = _subject(engine, settings, args.a)
        b = _subject(engine, settings, args.b)
    except ImageError as exc:  # like diff: 0 same, 1 different, 2 could not tell
        raise UsageError(str(exc)) from None
    distance = float(np.linalg.norm(a.encoding - b.encoding))
    same = distance <= threshold
    if args.json:
        print(
            json.dumps(
                {
                    "a": args.a,
                    "b": args.b,
                    "distance": round(distance, 4),
                    "same": same,
                    "threshold": threshold,
                },
                ensure_ascii=False,
            )
        )
    else:
        verdict = "same person" if same else "different people"
        op = "<=" if same else ">"
        print(f"{verdict}: distance {distance:.3f} {op} threshold {threshold:.2f}")
    return EXIT_OK if same else EXIT_DIFFERENT


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="are two photos the same person?")
    p.add_argument("a")
    p.add_argument("b")
    _engine_flags(p)
    p.add_argument("--threshold", type=float, help="distance at or below which it is the same person")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)
