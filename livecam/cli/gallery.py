"""`livecam gallery`: list, remove or rename enrolled people."""

from __future__ import annotations

import argparse
import logging

from ..config import Config
from ..door import remove_person, rename_person
from ..engine import gallery_stats, load_gallery
from ..wiring import gallery_settings
from .common import (
    EXIT_OK,
    UsageError,
    _known_faces,
    _model_flag,
)

log = logging.getLogger("livecam")


ACTIONS = "list | remove NAME | rename OLD NEW"


def cmd_gallery(args: argparse.Namespace, cfg: Config) -> int:
    if args.action is None:  # argparse said "required: action, names" and never which actions there are
        raise UsageError(f"gallery needs an action: {ACTIONS}")
    root = _known_faces(cfg, args)
    enrolled = gallery_settings(cfg)
    if args.action == "list":
        gallery = load_gallery(root, enrolled, cfg.workers)
        counts = gallery.counts()
        for name in gallery.names:
            print(f"{name}\t{counts[name]} photo(s)")
        for relpath, reason in sorted(gallery.skipped.items()):
            print(f"skipped {relpath}: {reason}")
        print(f"{gallery_stats(gallery)} in {root}")
        return EXIT_OK
    if args.action == "remove":
        if len(args.names) != 1:
            raise UsageError("gallery remove takes one NAME")
        n = remove_person(root, args.names[0], enrolled)
        print(f"removed {args.names[0]} ({n} photo(s))")
        return EXIT_OK
    if len(args.names) != 2:
        raise UsageError("gallery rename takes OLD NEW")
    rename_person(root, args.names[0], args.names[1], enrolled, args.force)
    print(f"renamed {args.names[0]} -> {args.names[1]}")
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("gallery", help="list, remove or rename enrolled people")
    _model_flag(p)
    p.add_argument("action", nargs="?", choices=("list", "remove", "rename"), help=ACTIONS)
    p.add_argument("names", nargs="*", help="remove NAME | rename OLD NEW")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument("--force", action="store_true", help="rename: to a name like an enrolled one (with a warning)")
    p.set_defaults(func=cmd_gallery)
