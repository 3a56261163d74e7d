"""`livecam unknown`: strangers' best face crops: list, promote, purge."""

from __future__ import annotations

import argparse
import logging
from datetime import datetime, timezone

from ..config import Config
from ..enroll import person_folder
from ..events import UnknownStore, events_by_snapshot, promote
from .common import (
    EXIT_OK,
    UsageError,
    _known_faces,
)

log = logging.getLogger("livecam")


def cmd_unknown(args: argparse.Namespace, cfg: Config) -> int:
    if cfg.door.unknown_dir is None:
        raise UsageError("door.unknown_dir is null in the config: no unknown visitors are kept")
    store = UnknownStore(cfg.door.unknown_dir)
    if args.action == "list":
        seen = events_by_snapshot(cfg.door.events_log)
        for p in store.list():
            e = seen.get(str(p), {})
            when = e.get("time") or datetime.fromtimestamp(p.lstat().st_mtime, timezone.utc).isoformat(
                timespec="seconds"
            )
            looked = f"nearest {e['nearest']} at {e['distance']}" if e.get("nearest") else "nearest: -"
            print(f"{p.stem}\t{when}\t{e.get('source', '-')}\t{looked}\t{p}")
        return EXIT_OK
    if args.action == "promote":
        if len(args.rest) != 2:
            raise UsageError("unknown promote takes ID NAME")
        visitor, name = args.rest
        try:
            dest = promote(store, visitor, person_folder(_known_faces(cfg, args), name))
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        print(f"promoted {visitor} -> {dest}")
        return EXIT_OK
    if args.older_than is None or args.rest:
        raise UsageError("unknown purge takes --older-than DAYS")
    print(f"removed {store.purge(args.older_than)} unknown visitor photo(s)")
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("unknown", help="strangers' best face crops: list, promote ID NAME, purge")
    p.add_argument("action", choices=("list", "promote", "purge"))
    p.add_argument("rest", nargs="*", help="promote: ID NAME")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="purge: crops older than this")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.set_defaults(func=cmd_unknown)
