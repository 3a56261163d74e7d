"""`livecam check`: versions, the dlib build, models, config, display, and the MQTT broker if one is set."""

from __future__ import annotations

import argparse
import logging

from ..config import Config
from ..state import state_dir
from .common import (
    _model_flag,
    gallery_problem,
)

log = logging.getLogger("livecam")


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    from ..check import run_check

    code = run_check(cfg, print)
    # a diagnostic reports the gallery rather than refusing it (run, identify... do: exit 2)
    if problem := gallery_problem(cfg.known_faces):
        print(f"WARNING: known_faces {cfg.known_faces}: {problem}")
    print(f"state folder (the cache's key, the MQTT outbox): {state_dir(cfg.state_dir)}")
    if cfg.mqtt.host:
        from ..connect import probe
        from ..wiring import mqtt_settings

        settings = mqtt_settings(cfg, cfg.camera.name or "check")
        ok, line = probe(settings)
        print(f"mqtt: {line}")
        code = code or (0 if ok else 1)
    return code


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="show versions, dlib build, models, config, display")
    _model_flag(p)
    p.set_defaults(func=cmd_check)
