"""`livecam run` and `livecam bench`: the live recognizer, and its per-stage costs on a video file."""

from __future__ import annotations

import argparse
import logging
import os

from ..check import display_available
from ..config import Config, override
from ..connect import Notifier
from ..live import Costs, GalleryWatcher, Governor, Outputs, gallery_listing, open_source, plan, run_loop
from ..names import camera_name_for
from ..redact import redact_url
from ..state import StateError, lock_camera
from ..stopping import StopRequest
from ..storage import check_output_dir, check_output_file, ensure_private_dir
from ..wiring import build_door, build_recognizer, gallery_settings, mqtt_settings
from .common import (
    EXIT_OK,
    UsageError,
    _known_faces,
    _model_flag,
    _probe_settings,
    name_log_lines,
)

log = logging.getLogger("livecam")


def _start_pipeline(args: argparse.Namespace, cfg: Config, realtime: bool):
    """Open the source first (a missing camera must fail fast), then build the models and gallery."""
    cam = cfg.camera
    source = open_source(args.camera, realtime, cam.width, cam.height, cam.fps, getattr(args, "loop", False))
    try:
        recognizer, detector = build_recognizer(cfg, source, _probe_settings(cfg, args))
        return source, recognizer, detector
    except BaseException:
        source.close()
        raise


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    cfg = override(cfg, "camera", name=args.name)  # checked like the config's camera.name
    args.camera = args.camera or cfg.camera.source or "0"  # a service's config names its camera
    camera = cfg.camera.name or camera_name_for(str(args.camera))
    name_log_lines(camera)
    window = not args.no_window
    if window and not display_available()[0]:
        raise UsageError("no display found: use --no-window, or run under Xvfb (xvfb-run livecam run ...)")
    _check_run_outputs(args, cfg)
    if cfg.mqtt.host:
        mqtt_settings(cfg, camera)  # its password and TLS files: one line and exit 2 before any model loads
    cfg = override(cfg, known_faces=_known_faces(cfg, args))  # a missing gallery too: before the camera opens
    web = _web_listen(args, cfg)  # an address it may not listen on: before anything loads
    try:  # one run per camera name (its MQTT client id and outbox), taken before anything loads
        lock = lock_camera(camera, cfg.state_dir)
    except StateError as exc:
        raise UsageError(str(exc)) from None
    with lock:
        return _run(args, cfg, camera, window, web)


def _web_listen(args: argparse.Namespace, cfg: Config):
    """--web HOST:PORT checked (a password where it is not loopback): web.WebSettings, or None."""
    if not args.web:
        return None
    from ..web import AuthError, Flags, ListenError, web_settings

    try:
        return web_settings(args.web, cfg.state_dir, args.web_https_proxy, Flags("--web", "--web-https-proxy"))
    except (ListenError, AuthError) as exc:
        raise UsageError(str(exc)) from None


def _start_web(web, cfg: Config, camera: str, recognizer, governor):
    """The page beside the loop: its live view is fed the frames the loop draws anyway."""
    from ..web import ListenError, WebServer, create_app
    from ..web.live import LiveFeed

    feed = LiveFeed(camera)
    feed.plan = lambda: governor.plan.describe() if governor is not None else ""
    encoder = recognizer.encoder
    feed.encoder = lambda: "its own process" if encoder is not None else "the loop's thread"
    try:
        app = create_app(cfg, web.password, cfg.state_dir, tls=web.https_proxy, live=feed)
        server = WebServer(app, web.host, web.port, flag=web.flags.listen).start()
    except ListenError as exc:
        raise UsageError(str(exc)) from None
    return feed, server


def _broker_state(events):
    """The live status's broker line, read when asked."""
    from ..connect import MqttPublisher

    brokers = [h for h in events.handlers if isinstance(h, MqttPublisher)]
    if not brokers:
        return lambda: "none configured"
    broker = brokers[0]
    return lambda: "connected" if broker.connected else "not connected (events wait in the outbox)"


def _run(args: argparse.Namespace, cfg: Config, camera: str, window: bool, web=None) -> int:
    baseline = gallery_listing(cfg.known_faces)  # before the gallery loads: a photo added meanwhile is a change
    source, recognizer, detector = _start_pipeline(args, cfg, args.realtime)
    outputs = Outputs(
        window=window, fullscreen=args.fullscreen, record=args.record, log_json=args.log_json, debug=args.debug
    )
    watcher = GalleryWatcher(
        cfg.known_faces,
        gallery_settings(cfg),
        lambda g: g.matcher(cfg.matching.threshold, cfg.matching.margin),
        baseline=baseline,
    )
    governor = Governor(source.fps, cfg.live.detect_every, cfg.live.min_face_px) if source.live else None
    server = None
    if web is not None:
        try:
            feed, server = _start_web(web, cfg, camera, recognizer, governor)
        except BaseException:
            source.close()
            if recognizer.encoder is not None:
                recognizer.encoder.close()
            raise
        outputs.extra.append(feed)
    events = build_door(cfg, redact_url(str(args.camera)), camera)
    events.enrolled(recognizer.matcher.names)
    if server is not None:
        feed.broker = _broker_state(events)
    systemd = Notifier()
    systemd.ready(f"camera {camera}: {recognizer.matcher.people} people enrolled")
    with StopRequest() as stop:
        try:
            summary = run_loop(
                source,
                recognizer,
                detector,
                outputs,
                args.frames,
                watcher,
                events,
                stop,
                alive=systemd.alive,
                governor=governor,
            )
        finally:
            systemd.stopping()
            systemd.close()
            if stop.requested:
                log.info("stopping")
            events.close()
            watcher.close()
            source.close()
            if server is not None:
                server.stop()
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


def cmd_bench(args: argparse.Namespace, cfg: Config) -> int:
    cfg = override(cfg, known_faces=_known_faces(cfg, args))
    if str(args.camera).isdigit():
        raise UsageError("bench needs a video file, not a camera")
    source, recognizer, detector = _start_pipeline(args, cfg, realtime=False)
    governor = Governor(source.fps, cfg.live.detect_every, cfg.live.min_face_px)  # measures CPU time only
    try:
        summary = run_loop(source, recognizer, detector, Outputs(), stop_after=args.frames, governor=governor)
    finally:
        source.close()
    for line in summary.lines():
        print(line)
    costs = governor.finish()
    print(costs.describe())
    cores = args.cpu_quota / 100 if args.cpu_quota is not None else governor.budget.cpus
    for line in budget_lines(cores, min(source.fps, args.target_fps), costs, cfg):
        print(line)
    return EXIT_OK


def budget_lines(cores: float, fps: float, costs: Costs, cfg: Config) -> list[str]:
    """What `livecam run` would choose on `cores` from these costs (it chooses by itself as it goes, from what
    it measures there), and the config lines that fix those choices."""
    chosen = plan(cores, fps, costs, cfg.live.detect_every, cfg.live.min_face_px)
    lines = [chosen.describe()]
    if (chosen.detect_every, chosen.min_face_px) != (cfg.live.detect_every, cfg.live.min_face_px):
        lines.append(
            f"to fix these in config.yaml: live.detect_every: {chosen.detect_every},"
            f" live.min_face_px: {chosen.min_face_px} (livecam run also finds them by itself from its budget)"
        )
    return lines


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="recognize faces live from a camera, stream or video file")
    _model_flag(p)
    p.add_argument("--camera", help="camera index, video file or stream URL (default: camera.source, or 0)")
    p.add_argument(
        "--name", help="this camera's name in events, logs and MQTT topics (default: camera.name, or from --camera)"
    )
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
    p.add_argument(
        "--web",
        metavar="HOST:PORT",
        help="serve the web page with this camera's live view (127.0.0.1:8080; elsewhere a password is needed)",
    )
    p.add_argument(
        "--web-https-proxy",
        action="store_true",
        help="the page is served behind a reverse proxy that terminates TLS (as livecam web --https-proxy)",
    )
    p.set_defaults(func=cmd_run, flip=None)

    p = sub.add_parser("bench", help="run the pipeline on a video file; per-stage costs and suggested settings")
    _model_flag(p)
    p.add_argument("camera", metavar="SRC", help="video file")
    p.add_argument("--known-faces", help="gallery folder (default from config)")
    p.add_argument("--target-fps", type=float, default=30.0)
    p.add_argument("--frames", type=int, help="stop after this many frames")
    p.add_argument(
        "--cpu-quota",
        type=_percent,
        metavar="PERCENT",
        help="plan for this share of one core (25: a quarter, a small board) instead of the budget found here",
    )
    p.set_defaults(func=cmd_bench, flip=None)


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 6400:
        raise argparse.ArgumentTypeError("a share of one core in percent, 1 to 6400")
    return value
