"""The `livecam` command line. Domain errors become one-line CLI errors here, and only here."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from . import __version__, overlay
from .actions import Action, ActionRunner
from .batch import EngineSettings, encode_files
from .calibrate import calibrate, write_plot
from .capture import SourceError, open_source
from .check import display_available
from .config import Config, ConfigError, load_config, override, resolved
from .detection import Detector
from .encoder import EncoderError, EncoderProcess
from .enroll import EnrollError, enroll_from_source, enroll_images, person_folder, remove_person, rename_person
from .events import AuditLog, DoorPolicy, EventSink, Retention, UnknownStore, events_by_snapshot, promote
from .faces import DETECTORS, Face, ModelNotFoundError
from .gallery import gallery_stats, load_gallery, pick_subject
from .identity import STRANGER_LABEL, UNDECIDED
from .images import ImageError, iter_image_files
from .live import Outputs, run_loop, suggest_settings
from .liveness import LICENCE_NOTE
from .models import MODELS
from .recognizer import LiveSettings, Recognizer, TrackedFace
from .redact import redact_url
from .reload import GalleryWatcher, listing
from .stopping import StopRequest
from .storage import OutputError, atomic_write_bytes, check_output_dir, check_output_file, ensure_private_dir
from .tracking import VotingRule

log = logging.getLogger("livecam")

ENROLL_TIMEOUT_S = 120.0  # `enroll --camera`: time to get the shots asked for

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_DIFFERENT = 1  # verify: different people (0 same, 2 could not tell), so a script can branch on it


class UsageError(Exception):
    """Bad command-line use or configuration: exit 2 with one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UsageError(message)


# -- helpers ---------------------------------------------------------------------------------
def _settings(cfg: Config, flip: bool) -> EngineSettings:
    return EngineSettings(
        models_dir=cfg.models_dir,
        model=cfg.encoding.model,
        detector=cfg.detection.detector,
        upsample=cfg.detection.upsample,
        max_upsample=max(cfg.detection.max_upsample, cfg.detection.upsample),
        cnn_fallback=cfg.detection.cnn_fallback,
        jitters=cfg.encoding.jitters,
        flip_average=flip,
    )


def _gallery_settings(cfg: Config) -> EngineSettings:
    return _settings(cfg, cfg.encoding.flip_average != "never")


def _probe_settings(cfg: Config, args: argparse.Namespace) -> EngineSettings:
    if getattr(args, "flip", None) is not None:
        return _settings(cfg, args.flip)
    return _settings(cfg, cfg.encoding.flip_average == "always")


def _apply_engine_flags(cfg: Config, args: argparse.Namespace) -> Config:
    # A detector or upsampling named on the command line is exactly what runs: no fallbacks
    detector, upsample = getattr(args, "detector", None), getattr(args, "upsample", None)
    cfg = override(cfg, "detection", detector=detector, upsample=upsample, max_upsample=upsample)
    if detector is not None:
        cfg = override(cfg, "detection", cnn_fallback=False)
    return override(cfg, "encoding", jitters=getattr(args, "jitters", None))


def _encoding_json(encoding: np.ndarray) -> list[float]:
    # float32 carries ~7 significant digits; printing more only adds noise.
    return [float(f"{v:.7g}") for v in encoding.tolist()]


def _face_json(face: Face) -> dict:
    return {"box": face.box.as_list(), "encoding": _encoding_json(face.encoding)}


# -- commands ------------------------------------------------------------------------------
def cmd_encode(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _apply_engine_flags(cfg, args)
    if args.format == "npy" and not args.output:
        raise UsageError("--format npy needs -o FILE.npy")
    if args.output:
        check_output_file(args.output)
    paths = iter_image_files([Path(p) for p in args.paths])
    workers = args.workers if args.workers is not None else cfg.workers
    failed = 0
    encodings: list[np.ndarray] = []
    out = io.StringIO() if args.output else sys.stdout
    started = time.perf_counter()
    for result in encode_files(paths, _probe_settings(cfg, args), workers):
        if result.error:
            failed += 1
            log.warning("%s", result.error)
        if args.format == "npy":
            encodings.extend(f.encoding for f in result.faces)
            continue
        record = {
            "path": str(result.path),
            "model": cfg.encoding.model,
            "faces": [_face_json(f) for f in result.faces],
            "error": result.error,
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if out is sys.stdout:
            out.flush()
    if args.output:
        if args.format == "npy":
            buf = io.BytesIO()
            dimension = MODELS[cfg.encoding.model].dimension
            np.save(buf, np.array(encodings, np.float32).reshape(-1, dimension), allow_pickle=False)
            data = buf.getvalue()
        else:
            data = out.getvalue().encode("utf-8")
        atomic_write_bytes(Path(args.output), data)  # encodings are biometric: 0600
    elapsed = time.perf_counter() - started
    log.info(
        "%d images in %.2f s (%.1f images/s), %d failed",
        len(paths),
        elapsed,
        len(paths) / max(elapsed, 1e-9),
        failed,
    )
    return EXIT_FAILED if failed else EXIT_OK


def _subject(engine, settings: EngineSettings, path: str) -> Face:
    from .batch import encode_path

    result = encode_path(engine, settings, Path(path))
    if result.error:
        raise ImageError(result.error)
    face, reason = pick_subject(result.faces)
    if face is None:
        raise ImageError(f"{path}: {reason}")
    return face


def cmd_verify(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _apply_engine_flags(cfg, args)
    cfg = override(cfg, "matching", verify_threshold=args.threshold)
    threshold = cfg.matching.verify_threshold
    # two photos, like enrolled ones: worth the mirror pass unless told otherwise
    settings = _settings(cfg, args.flip) if args.flip is not None else _gallery_settings(cfg)
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


def cmd_identify(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _apply_engine_flags(cfg, args)
    cfg = override(cfg, known_faces=Path(args.known_faces) if args.known_faces else None)
    cfg = override(cfg, "matching", threshold=args.threshold)
    settings = _probe_settings(cfg, args)
    engine = settings.build()
    gallery_settings = _gallery_settings(cfg)
    gallery_engine = engine.with_flip(gallery_settings.flip_average)
    gallery = load_gallery(cfg.known_faces, gallery_settings, cfg.workers, gallery_engine)
    log.info("gallery %s: %s", cfg.known_faces, gallery_stats(gallery))
    if not len(gallery):
        log.warning("%s: no enrolled faces; every face will be unknown", cfg.known_faces)
    matcher = gallery.matcher(cfg.matching.threshold, cfg.matching.margin)
    failed = 0
    paths = iter_image_files([Path(p) for p in args.paths])
    for result in encode_files(paths, settings, 1, engine):
        if result.error:
            failed += 1
            log.warning("%s", result.error)
        matches = matcher.match(np.array([f.encoding for f in result.faces])) if result.faces else []
        if args.json:
            faces = [
                {
                    "box": f.box.as_list(),
                    "name": m.name or STRANGER_LABEL,
                    "nearest": m.nearest,  # also for unknown faces: who they came closest to
                    "distance": round(m.distance, 4) if np.isfinite(m.distance) else None,
                    "margin": round(m.margin, 4) if np.isfinite(m.margin) else None,
                }
                for f, m in zip(result.faces, matches, strict=True)
            ]
            print(json.dumps({"path": str(result.path), "faces": faces, "error": result.error}, ensure_ascii=False))
        elif not result.error:
            if not result.faces:
                print(f"{result.path}: no face")
            for f, m in zip(result.faces, matches, strict=True):
                dist = f"{m.distance:.3f}" if np.isfinite(m.distance) else "-"
                near = f", nearest {m.nearest}" if m.name is None and m.nearest else ""
                print(f"{result.path}: {m.name or STRANGER_LABEL} (distance {dist}{near}) at {f.box.as_list()}")
    return EXIT_FAILED if failed else EXIT_OK


def _live_settings(cfg: Config) -> LiveSettings:
    v = cfg.voting
    return LiveSettings(
        min_face_px=cfg.live.min_face_px,
        detect_every=cfg.live.detect_every,
        recheck_seconds=cfg.live.recheck_seconds,
        max_encodes_per_frame=cfg.live.max_encodes_per_frame,
        max_faces=cfg.live.max_faces,
        voting=VotingRule(v.window, v.agree, v.instant_distance, v.unknown_after),
        liveness=cfg.door.liveness == "blink",
        unknown_wait_seconds=cfg.door.unknown_wait_seconds,
    )


def _start_pipeline(args: argparse.Namespace, cfg: Config, realtime: bool):
    """Open the source first (a missing camera must fail fast), then build the models and gallery."""
    # The detector thread has the other core; OpenBLAS threads that spin-wait
    # beside it slow both. Read by OpenBLAS when dlib is first imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cam = cfg.camera
    source = open_source(args.camera, realtime, cam.width, cam.height, cam.fps, getattr(args, "loop", False))
    try:
        engine = _probe_settings(cfg, args).build().load()
        gallery_settings = _gallery_settings(cfg)
        gallery = load_gallery(
            cfg.known_faces, gallery_settings, cfg.workers, engine.with_flip(gallery_settings.flip_average)
        )
        log.info("gallery %s: %s", cfg.known_faces, gallery_stats(gallery))
        if not len(gallery):
            log.warning("%s: no enrolled faces; every face will be unknown", cfg.known_faces)
        settings = _live_settings(cfg)
        if settings.liveness:
            log.warning("%s", LICENCE_NOTE)
        # live: the network runs in its own process so the display never waits for it;
        # files: on this thread, so that a file gives the same result on every run
        encoder = EncoderProcess(_probe_settings(cfg, args)) if source.live else None
        matcher = gallery.matcher(cfg.matching.threshold, cfg.matching.margin)
        recognizer = Recognizer(engine, matcher, settings, source.fps, encoder)
        return source, recognizer, Detector(engine, settings.min_face_px)
    except BaseException:
        source.close()
        raise


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    cfg = override(cfg, known_faces=Path(args.known_faces) if args.known_faces else None)
    window = not args.no_window
    if window and not display_available()[0]:
        raise UsageError("no display found: use --no-window, or run under Xvfb (xvfb-run livecam run ...)")
    _check_run_outputs(args, cfg)
    baseline = listing(cfg.known_faces)  # before the gallery loads: a photo added meanwhile is a change
    source, recognizer, detector = _start_pipeline(args, cfg, args.realtime)
    outputs = Outputs(
        window=window, fullscreen=args.fullscreen, record=args.record, log_json=args.log_json, debug=args.debug
    )
    watcher = GalleryWatcher(
        cfg.known_faces,
        _gallery_settings(cfg),
        lambda g: g.matcher(cfg.matching.threshold, cfg.matching.margin),
        baseline=baseline,
    )
    events = _event_sink(cfg, redact_url(str(args.camera)))
    with StopRequest() as stop:
        try:
            summary = run_loop(source, recognizer, detector, outputs, args.frames, watcher, events, stop)
        finally:
            if stop.requested:
                log.info("stopping")
            events.close()
            watcher.close()
            source.close()
            if recognizer.encoder is not None:
                recognizer.encoder.close()
    for line in summary.lines():
        log.info("%s", line)
    if recognizer.encoder is not None and recognizer.encoder.dropped:
        log.info("%d encoding requests dropped while the encoder was busy", recognizer.encoder.dropped)
    return stop.exit_code if stop.requested else EXIT_OK


def _check_run_outputs(args: argparse.Namespace, cfg: Config) -> None:
    """Every place a run writes, checked before the models load: one line and exit 2, nothing created."""
    for path in (args.record, None if args.log_json == "-" else args.log_json, cfg.door.events_log):
        if path:
            check_output_file(path)
    if cfg.door.unknown_dir is not None:
        check_output_dir(cfg.door.unknown_dir)
        if os.path.lexists(cfg.door.unknown_dir):
            ensure_private_dir(cfg.door.unknown_dir)  # refuses a shared folder now, not at the first stranger


def _event_sink(cfg: Config, source: str) -> EventSink:
    door, acts = cfg.door, cfg.actions
    actions = {
        "recognized": Action(acts.on_recognized.command, acts.on_recognized.webhook or ""),
        "unknown": Action(acts.on_unknown.command, acts.on_unknown.webhook or ""),
    }
    handlers: list = []  # every event goes to each of these, in order
    if door.events_log:
        handlers.append(AuditLog(door.events_log, door.events_keep_days))
    if any(a.command or a.webhook for a in actions.values()):
        handlers.append(ActionRunner(actions, acts.webhook_timeout, acts.webhook_retries, acts.queue_size))
    return EventSink(
        source,
        DoorPolicy(
            door.min_agree,
            door.cooldown_seconds,
            door.unknown_wait_seconds,
            same_face_distance=MODELS[cfg.encoding.model].same_face_distance,
        ),
        handlers,
        UnknownStore(door.unknown_dir, door.unknown_crops_per_minute) if door.unknown_dir else None,
        Retention(door.unknown_keep_days, door.unknown_keep_count),
    )


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


def cmd_bench(args: argparse.Namespace, cfg: Config) -> int:
    cfg = override(cfg, known_faces=Path(args.known_faces) if args.known_faces else None)
    if str(args.camera).isdigit():
        raise UsageError("bench needs a video file, not a camera")
    source, recognizer, detector = _start_pipeline(args, cfg, realtime=False)
    try:
        summary = run_loop(source, recognizer, detector, Outputs(), stop_after=args.frames)
    finally:
        source.close()
    for line in summary.lines():
        print(line)
    for line in suggest_settings(summary, cfg, args.target_fps):
        print(line)
    return EXIT_OK


def _known_faces(cfg: Config, args: argparse.Namespace) -> Path:
    return Path(args.known_faces) if getattr(args, "known_faces", None) else cfg.known_faces


def cmd_enroll(args: argparse.Namespace, cfg: Config) -> int:
    root = check_output_dir(_known_faces(cfg, args))
    person_folder(root, args.name)  # a name that cannot be a person's is refused before any work
    gallery_settings = _gallery_settings(cfg)
    engine = gallery_settings.build()
    gallery = load_gallery(root, gallery_settings, cfg.workers, engine)
    if args.camera is not None:
        if args.images:
            raise UsageError("give photos or --camera, not both")
        report = _enroll_camera(args, cfg, root, engine, gallery)
    elif not args.images:
        raise UsageError("give photos of the person, or --camera SRC")
    else:
        images = iter_image_files([Path(p) for p in args.images])  # folders are walked, as by encode
        report = enroll_images(root, args.name, images, engine, gallery, cfg.matching.threshold)
    for src, dest in report.accepted:
        print(f"accepted {src} -> {dest}")
    for src, reason in report.rejected:
        print(f"rejected {src}: {reason}")
    if report.timed_out:
        log.warning(
            "enroll %s: time ran out after %.0f s with %d of %d shots", report.name, ENROLL_TIMEOUT_S,
            len(report.accepted), args.count,
        )  # fmt: skip
    for person, distance in report.lookalikes:
        log.warning(
            "%s looks like %s, already enrolled (distance %.3f <= %.2f): they may be confused",
            report.name,
            person,
            distance,
            cfg.matching.threshold,
        )
    if report.accepted:
        load_gallery(root, gallery_settings, cfg.workers, engine)  # encode the new shots now, not at the door
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
            root, args.name, source, engine, args.count, show, gallery, cfg.matching.threshold, ENROLL_TIMEOUT_S
        )
    finally:
        source.close()
        if window:
            cv2.destroyWindow("livecam enroll")


def cmd_gallery(args: argparse.Namespace, cfg: Config) -> int:
    root = _known_faces(cfg, args)
    gallery_settings = _gallery_settings(cfg)
    if args.action == "list":
        gallery = load_gallery(root, gallery_settings, cfg.workers)
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
        n = remove_person(root, args.names[0], gallery_settings)
        print(f"removed {args.names[0]} ({n} photo(s))")
        return EXIT_OK
    if len(args.names) != 2:
        raise UsageError("gallery rename takes OLD NEW")
    rename_person(root, args.names[0], args.names[1], gallery_settings)
    print(f"renamed {args.names[0]} -> {args.names[1]}")
    return EXIT_OK


def cmd_calibrate(args: argparse.Namespace, cfg: Config) -> int:
    check_output_file(args.plot)
    root = _known_faces(cfg, args)
    gallery = load_gallery(root, _gallery_settings(cfg), cfg.workers)
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


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    from .check import run_check

    return run_check(cfg, print)


# -- parser ----------------------------------------------------------------------------------
def _model_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=tuple(MODELS), help="the embedder (default from config: encoding.model)")


def _engine_flags(p: argparse.ArgumentParser) -> None:
    _model_flag(p)
    p.add_argument("--jitters", type=int, help="random re-samplings averaged per face (slower, steadier)")
    p.add_argument("--upsample", type=int, help="HOG upsampling steps for small faces (exactly: no fallback)")
    p.add_argument("--detector", choices=DETECTORS, help="hog (fast) or cnn (robust, slow); exactly: no cnn fallback")
    flip = p.add_mutually_exclusive_group()
    flip.add_argument(
        "--flip",
        dest="flip",
        action="store_true",
        default=None,
        help="average each face with its mirror image (more accurate, 2x network work)",
    )
    flip.add_argument("--no-flip", dest="flip", action="store_false", help="no mirror-image averaging")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="livecam", description="Real-time face recognition on a small CPU.")
    parser.add_argument("--version", action="version", version=f"livecam {__version__}")
    # --config, -v and -q before or after the command: the same flags on every subcommand, which
    # set a value only when given there (SUPPRESS), so one given before is not reset after
    for target, default in ((parser, None), (common := _Parser(add_help=False), argparse.SUPPRESS)):
        target.add_argument("--config", default=default, help="config file (default: ./config.yaml when present)")
        target.add_argument("-v", "--verbose", action="store_true", default=default or False, help="more logging")
        target.add_argument(
            "-q", "--quiet", action="store_true", default=default or False, help="warnings and errors only"
        )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    class _Sub:
        @staticmethod
        def add_parser(name: str, **kwargs):
            return commands.add_parser(name, parents=[common], **kwargs)

    sub = _Sub()

    p = sub.add_parser("run", help="recognize faces live from a camera, stream or video file")
    _model_flag(p)
    p.add_argument("--camera", default="0", help="camera index, video file or stream URL (default 0)")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument("--no-window", action="store_true", help="no window (kiosks, servers)")
    p.add_argument("--fullscreen", action="store_true")
    p.add_argument("--realtime", action="store_true", help="play a video file like a camera: paced, frames dropped")
    p.add_argument("--record", metavar="OUT.mp4", help="write the annotated video")
    p.add_argument("--log-json", metavar="FILE", help="one JSON line per frame to FILE, or - for stdout")
    p.add_argument("--frames", type=int, help="stop after this many frames")
    p.add_argument("--loop", action="store_true", help="play a video file again and again (demos, soak tests)")
    p.add_argument(
        "--debug", action="store_true", help="show why unnamed faces are not named: nearest person, distance (key d)"
    )
    p.set_defaults(func=cmd_run, flip=None)

    p = sub.add_parser("bench", help="run the pipeline on a video file; per-stage costs and suggested settings")
    _model_flag(p)
    p.add_argument("camera", metavar="SRC", help="video file")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument("--target-fps", type=float, default=30.0)
    p.add_argument("--frames", type=int, help="stop after this many frames")
    p.set_defaults(func=cmd_bench, flip=None)

    p = sub.add_parser("enroll", help="add photos of a person to the gallery (each one checked)")
    _model_flag(p)
    p.add_argument("name", help="the person's name (any script; no path separators)")
    p.add_argument("images", nargs="*", help="photos of that person")
    p.add_argument("--camera", help="capture shots from this camera index, video file or stream URL")
    p.add_argument("--count", type=int, default=5, help="shots to capture with --camera (default 5)")
    p.add_argument("--no-window", action="store_true", help="--camera without the guiding window")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("gallery", help="list, remove or rename enrolled people")
    _model_flag(p)
    p.add_argument("action", choices=("list", "remove", "rename"))
    p.add_argument("names", nargs="*", help="remove NAME | rename OLD NEW")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("unknown", help="strangers' best face crops: list, promote ID NAME, purge")
    p.add_argument("action", choices=("list", "promote", "purge"))
    p.add_argument("rest", nargs="*", help="promote: ID NAME")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="purge: crops older than this")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.set_defaults(func=cmd_unknown)

    p = sub.add_parser("calibrate", help="distances in the gallery, a threshold for a target false-accept rate")
    _model_flag(p)
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument("--far", type=float, default=0.001, help="target false-accept rate (default 0.001)")
    p.add_argument("--plot", default="calibration.png", help="histogram PNG (default calibration.png)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("check", help="show versions, dlib build, models, config, display")
    _model_flag(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("encode", help="one embedding per face in each image (JSON lines; 128-d dlib, 512-d facenet)")
    p.add_argument("paths", nargs="+", help="images or folders (walked in sorted order)")
    _engine_flags(p)
    p.add_argument("--format", choices=("jsonl", "npy"), default="jsonl")
    p.add_argument("-o", "--output", help="write to FILE instead of standard output")
    p.add_argument("--workers", type=int, help="processes (default: one per core)")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("verify", help="are two photos the same person?")
    p.add_argument("a")
    p.add_argument("b")
    _engine_flags(p)
    p.add_argument("--threshold", type=float, help="distance at or below which it is the same person")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("identify", help="name the faces in photos from the gallery")
    p.add_argument("paths", nargs="+")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    _engine_flags(p)
    p.add_argument("--threshold", type=float)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_identify)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_livecam", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("livecam: %(message)s"))
    handler._livecam = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except UsageError as exc:
        print(f"livecam: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    if args.command is None:  # plain `livecam`: what it can do, not only "a command is required"
        print(parser.format_help(), end="")
        return EXIT_USAGE
    _setup_logging(args.verbose, args.quiet)
    try:
        cfg = load_config(Path(args.config) if args.config else None)
        # the model first, then every distance left null filled in from the model's own
        cfg = resolved(override(cfg, "encoding", model=getattr(args, "model", None)))
        return args.func(args, cfg)
    except (UsageError, ConfigError, SourceError, EnrollError, OutputError) as exc:
        print(f"livecam: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ImageError, ModelNotFoundError, EncoderError) as exc:
        print(f"livecam: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def main_entry() -> None:
    sys.exit(main())
