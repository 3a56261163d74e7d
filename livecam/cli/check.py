"""`livecam check`: versions, the dlib build, models, config, display."""

from __future__ import annotations

import argparse
import logging

from ..config import Config
from .common import (
    _model_flag,
)

log = logging.getLogger("livecam")


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    from ..check import run_check

    return run_check(cfg, print)


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="show versions, dlib build, models, config, display")
    _model_flag(p)
    p.set_defaults(func=cmd_check)
