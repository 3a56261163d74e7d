"""What every command shares: exit codes, the one-line usage error, engine settings from config and flags."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..config import Config, override
from ..engine import EngineSettings, Face, ImageError, pick_subject
from ..models import DETECTORS, MODELS
from ..wiring import probe_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_DIFFERENT = 1  # verify: different people (0 same, 2 could not tell), so a script can branch on it


class UsageError(Exception):
    """Bad command-line use or configuration: exit 2 with one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UsageError(message)


def _probe_settings(cfg: Config, args: argparse.Namespace) -> EngineSettings:
    return probe_settings(cfg, getattr(args, "flip", None))


def _apply_engine_flags(cfg: Config, args: argparse.Namespace) -> Config:
    # A detector or upsampling named on the command line is exactly what runs: no fallbacks
    detector, upsample = getattr(args, "detector", None), getattr(args, "upsample", None)
    cfg = override(cfg, "detection", detector=detector, upsample=upsample, max_upsample=upsample)
    if detector is not None:
        cfg = override(cfg, "detection", cnn_fallback=False)
    return override(cfg, "encoding", jitters=getattr(args, "jitters", None))


# Enrolling the first person is how a user starts a gallery: `enroll` makes the folder.
MAKES_GALLERY = frozenset({"enroll"})


def _known_faces(cfg: Config, args: argparse.Namespace, missing_ok: bool = False) -> Path:
    """The gallery folder: --known-faces, else the config's; every command that reads it asks here.
    A folder that does not exist is a usage error (but for `enroll`, and with `missing_ok`: the web page, where
    people are enrolled): with a typo (knwon_faces) a door ran with nobody enrolled, sending "unknown" events and
    keeping crops of its own people. An existing, empty one is fine (the command warns)."""
    root = Path(args.known_faces) if getattr(args, "known_faces", None) else cfg.known_faces
    problem = gallery_problem(root)
    if missing_ok and not os.path.lexists(root):
        problem = None
    if getattr(args, "command", None) not in MAKES_GALLERY and problem:
        raise UsageError(f"{root}: {problem}: check known_faces in the config or --known-faces (enroll makes one)")
    return root


def gallery_problem(root: Path) -> str | None:
    """Why `root` cannot be a gallery folder, or None."""
    if root.is_dir():
        return None
    return "is not a folder" if os.path.lexists(root) else "no such gallery folder"


def _subject(engine, settings: EngineSettings, path: str) -> Face:
    from ..engine import encode_path

    result = encode_path(engine, settings, Path(path))
    if result.error:
        raise ImageError(result.error)
    face, reason = pick_subject(result.faces)
    if face is None:
        raise ImageError(f"{path}: {reason}")
    return face


def _model_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=tuple(MODELS), help="the embedder (default from config: encoding.model)")


def _engine_flags(p: argparse.ArgumentParser) -> None:
    _model_flag(p)
    p.add_argument("--jitters", type=int, help="random re-samplings averaged per face (slower, steadier)")
    p.add_argument("--upsample", type=int, help="HOG upsampling steps for small faces (exactly: no fallback)")
    p.add_argument(
        "--detector", choices=tuple(DETECTORS), help="hog (fast), cnn (robust, slow) or mtcnn; exactly: no fallback"
    )
    flip = p.add_mutually_exclusive_group()
    flip.add_argument(
        "--flip",
        dest="flip",
        action="store_true",
        default=None,
        help="average each face with its mirror image (more accurate, 2x network work)",
    )
    flip.add_argument("--no-flip", dest="flip", action="store_false", help="no mirror-image averaging")


def name_log_lines(camera: str) -> None:
    """Log lines of a run carry its camera's name: several doors may log to one journal."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_livecam", False):
            handler.setFormatter(logging.Formatter(f"livecam[{camera}]: %(message)s"))
