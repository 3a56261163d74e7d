"""`livecam unknown`: strangers' best face crops: list, promote, purge."""

from __future__ import annotations

import argparse
import logging
import math

from ..config import Config
from ..door import UnknownStore, Visitor, check_new_name, person_folder, promote_visitor
from ..engine import load_gallery
from ..storage import check_output_dir
from ..wiring import clear_retained_snapshots, gallery_settings
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _known_faces,
    _model_flag,
)

log = logging.getLogger("livecam")


def cmd_unknown(args: argparse.Namespace, cfg: Config) -> int:
    if cfg.door.unknown_dir is None:
        raise UsageError("door.unknown_dir is null in the config: no unknown visitors are kept")
    store = UnknownStore(cfg.door.unknown_dir)
    if args.action == "list":
        visitors = store.visitors(cfg.door.events_log)
        if not visitors:
            print(f"no unknown visitors kept in {store.folder}")  # an empty answer looked like a failure
            return EXIT_OK
        for visitor in visitors:
            print("\t".join(_row(visitor)))
        return EXIT_OK
    if args.action == "promote":
        if len(args.rest) != 2:
            raise UsageError("unknown promote takes ID NAME")
        visitor, name = args.rest
        try:
            store.find(visitor)  # no such crop, or a link: refused before any work
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        root = check_output_dir(_known_faces(cfg, args))
        person_folder(root, name)
        if not args.force:
            check_new_name(root, name)
        enrolled = gallery_settings(cfg)
        engine = enrolled.build()
        gallery = load_gallery(root, enrolled, cfg.workers, engine)
        try:
            # the checks every enrolled photo passes: not someone else's face, not a copy of a photo already there
            m = cfg.matching
            report = promote_visitor(
                store, visitor, root, name, engine, gallery, m.threshold, args.force, m.verify_threshold
            )
        except FileNotFoundError as exc:  # the crop went, or became something else, meanwhile
            raise UsageError(str(exc)) from None
        for src, reason in report.rejected:
            print(f"rejected {src}: {reason}")
        if not report.accepted:
            return EXIT_FAILED
        load_gallery(root, enrolled, cfg.workers, engine)  # encode it now, not at the door
        print(f"promoted {visitor} -> {report.accepted[0][1]}")
        return EXIT_OK
    if args.older_than is None or args.rest:
        raise UsageError("unknown purge takes --older-than DAYS")
    print(f"removed {store.purge(args.older_than)} unknown visitor photo(s)")
    cleared = clear_retained_snapshots(cfg)  # the broker's copy of a face (MQTT's retained snapshot) too
    if cleared is not None:
        print(cleared[1])
    return EXIT_OK if cleared is None or cleared[0] else EXIT_FAILED


def _row(visitor: Visitor) -> list[str]:
    """id, time, camera, who the stranger was nearest to, file."""
    if visitor.nearest is not None and visitor.distance is not None:
        looked = f"nearest {visitor.nearest} at {visitor.distance:.3f}"
    else:
        looked = "nearest: no one enrolled" if visitor.logged else "nearest: -"
    return [visitor.id, visitor.time, visitor.camera, looked, str(visitor.path)]


def days(text: str) -> float:
    """--older-than: a number of days, 0 or more (nan removed nothing and -1 everything, both silently)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text} is not a number of days (0 or more, e.g. 30)")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("unknown", help="strangers' best face crops: list, promote ID NAME, purge")
    p.add_argument("action", choices=("list", "promote", "purge"))
    p.add_argument("rest", nargs="*", help="promote: ID NAME")
    p.add_argument("--older-than", type=days, metavar="DAYS", help="purge: crops older than this (0: all)")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument(
        "--force",
        action="store_true",
        help="promote: a face that looks like another enrolled person, or a name like an enrolled one (with a warning)",
    )
    _model_flag(p)
    p.set_defaults(func=cmd_unknown)
