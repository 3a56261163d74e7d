"""`livecam enroll`: add photos of a person to the gallery, each one checked; or shots from a camera."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2

from ..check import display_available
from ..config import Config
from ..door import check_new_name, enroll_from_source, enroll_images, person_folder
from ..engine import iter_image_files, load_gallery
from ..identity import UNDECIDED
from ..live import TrackedFace, open_source, overlay
from ..storage import check_output_dir
from ..wiring import gallery_settings
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _known_faces,
    _model_flag,
)

log = logging.getLogger("livecam")

ENROLL_TIMEOUT_S = 120.0  # `enroll --camera`: time to get the shots asked for


def cmd_enroll(args: argparse.Namespace, cfg: Config) -> int:
    root = check_output_dir(_known_faces(cfg, args))
    # a name that cannot be a person's, or looks like another's, is refused before any work
    person_folder(root, args.name)
    if not args.force:
        check_new_name(root, args.name)
    enrolled = gallery_settings(cfg)
    engine = enrolled.build()
    gallery = load_gallery(root, enrolled, cfg.workers, engine)
    if args.camera is not None:
        if args.images:
            raise UsageError("give photos or --camera, not both")
        report = _enroll_camera(args, cfg, root, engine, gallery)
    elif not args.images:
        raise UsageError("give photos of the person, or --camera SRC")
    else:
        images = iter_image_files([Path(p) for p in args.images])  # folders are walked, as by encode
        report = enroll_images(
            root, args.name, images, engine, gallery, cfg.matching.threshold, args.force, cfg.matching.verify_threshold
        )
    for src, dest in report.accepted:
        print(f"accepted {src} -> {dest}")
    for src, reason in report.rejected:
        print(f"rejected {src}: {reason}")
    if report.timed_out:
        log.warning(
            "enroll %s: time ran out after %.0f s with %d of %d shots", report.name, ENROLL_TIMEOUT_S,
            len(report.accepted), args.count,
        )  # fmt: skip
    if report.accepted:
        load_gallery(root, enrolled, cfg.workers, engine)  # encode the new shots now, not at the door
    print(f"{report.name}: {len(report.accepted)} photo(s) added, {len(report.rejected)} rejected")
    return EXIT_OK if report.accepted else EXIT_FAILED


def _enroll_camera(args: argparse.Namespace, cfg: Config, root: Path, engine, gallery):
    window = not args.no_window
    if window and not display_available()[0]:
        raise UsageError("no display found: use --no-window, or run under Xvfb (xvfb-run livecam enroll ...)")
    cam = cfg.camera
    source = open_source(args.camera, False, cam.width, cam.height, cam.fps)
    show = None
    if window:
        cv2.namedWindow("livecam enroll", cv2.WINDOW_NORMAL)

        def show(image, message, face):
            faces = [TrackedFace(face.box, 0, UNDECIDED, None)] if face is not None else []
            drawn = overlay.draw_status(overlay.render(image, faces), message)
            cv2.imshow("livecam enroll", drawn)
            return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    try:
        return enroll_from_source(
            root,
            args.name,
            source,
            engine,
            args.count,
            show,
            gallery,
            cfg.matching.threshold,
            ENROLL_TIMEOUT_S,
            args.force,
            cfg.matching.verify_threshold,
        )
    finally:
        source.close()
        if window:
            cv2.destroyWindow("livecam enroll")


def add_parser(sub) -> None:
    p = sub.add_parser("enroll", help="add photos of a person to the gallery (each one checked)")
    _model_flag(p)
    p.add_argument("name", help="the person's name (any script; no path separators)")
    p.add_argument("images", nargs="*", help="photos of that person")
    p.add_argument("--camera", help="capture shots from this camera index, video file or stream URL")
    p.add_argument("--count", type=int, default=5, help="shots to capture with --camera (default 5)")
    p.add_argument("--no-window", action="store_true", help="--camera without the guiding window")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument(
        "--force",
        action="store_true",
        help="add photos that look like another enrolled person, or a name like an enrolled one (with a warning)",
    )
    p.set_defaults(func=cmd_enroll)
