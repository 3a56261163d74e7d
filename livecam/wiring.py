"""Wiring: the one place that builds livecam's stages from the config.

The command line (and any other front end: a service for several cameras)
asks here for the engine settings, the live loop's recognizer and detector,
and the door with its event handlers; nothing else reads the config to
construct a stage.
"""

from __future__ import annotations

import logging
import os

from .actions import Action, ActionRunner
from .batch import EngineSettings
from .capture import FileSource, LatestFrameReader
from .config import Config, ConfigError
from .detection import Detector
from .encoder import EncoderProcess
from .events import AuditLog, DoorPolicy, EventSink, Retention, UnknownStore
from .gallery import gallery_stats, load_gallery
from .liveness import LICENCE_NOTE
from .models import spec_of
from .mqtt import MqttError, MqttPublisher, MqttSettings
from .names import camera_name_for
from .outbox import open_outbox
from .recognizer import LiveSettings, Recognizer
from .state import state_dir
from .storage import read_regular
from .tracking import VotingRule

log = logging.getLogger(__name__)


def engine_settings(cfg: Config, flip: bool) -> EngineSettings:
    return EngineSettings(
        models_dir=cfg.models_dir,
        model=cfg.encoding.model,
        detector=cfg.detection.detector,
        upsample=cfg.detection.upsample,
        max_upsample=max(cfg.detection.max_upsample, cfg.detection.upsample),
        cnn_fallback=cfg.detection.cnn_fallback,
        jitters=cfg.encoding.jitters,
        flip_average=flip,
        cache_dir=cfg.cache_dir,
        state_dir=cfg.state_dir,
    )


def gallery_settings(cfg: Config) -> EngineSettings:
    """Enrolled photos: mirror-averaged unless the config says never (encoded once, cached)."""
    return engine_settings(cfg, cfg.encoding.flip_average != "never")


def probe_settings(cfg: Config, flip: bool | None = None) -> EngineSettings:
    """Faces to identify: mirror-averaged only when asked (`flip`) or `encoding.flip_average: always`."""
    return engine_settings(cfg, cfg.encoding.flip_average == "always" if flip is None else flip)


def live_settings(cfg: Config) -> LiveSettings:
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


def build_recognizer(
    cfg: Config, source: FileSource | LatestFrameReader, probe: EngineSettings
) -> tuple[Recognizer, Detector]:
    """The models, the gallery, and the live loop's recognizer and detector for `source`."""
    # The detector thread has the other core; OpenBLAS threads that spin-wait
    # beside it slow both. Read by OpenBLAS when dlib is first imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    engine = probe.build().load()
    enrolled = gallery_settings(cfg)
    gallery = load_gallery(cfg.known_faces, enrolled, cfg.workers, engine.with_flip(enrolled.flip_average))
    log.info("gallery %s: %s", cfg.known_faces, gallery_stats(gallery))
    if not len(gallery):
        log.warning("%s: no enrolled faces; every face will be unknown", cfg.known_faces)
    settings = live_settings(cfg)
    if settings.liveness:
        log.warning("%s", LICENCE_NOTE)
    # live: the network runs in its own process so the display never waits for it;
    # files: on this thread, so that a file gives the same result on every run
    encoder = EncoderProcess(probe) if source.live else None
    matcher = gallery.matcher(cfg.matching.threshold, cfg.matching.margin)
    return Recognizer(engine, matcher, settings, source.fps, encoder), Detector(engine, settings.min_face_px)


def build_door(cfg: Config, source_name: str, camera: str | None = None) -> EventSink:
    """The door: its policy, the strangers' crops, and every event handler the config asks for."""
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
    if cfg.mqtt.host:
        handlers.append(build_mqtt(cfg, camera or camera_name_for(source_name)))
    return EventSink(
        source_name,
        DoorPolicy(
            door.min_agree,
            door.cooldown_seconds,
            door.unknown_wait_seconds,
            same_face_distance=spec_of(cfg.encoding.model).same_face_distance,
        ),
        handlers,
        UnknownStore(door.unknown_dir, door.unknown_crops_per_minute) if door.unknown_dir else None,
        Retention(door.unknown_keep_days, door.unknown_keep_count),
        camera,
    )


def build_mqtt(cfg: Config, camera: str) -> MqttPublisher:
    """The MQTT handler; ConfigError (one line) for settings that cannot work."""
    m = cfg.mqtt
    settings = mqtt_settings(cfg, camera)
    outbox = open_outbox(
        m.outbox or state_dir(cfg.state_dir) / f"mqtt-outbox-{camera}.sqlite", m.outbox_max_events, cfg.state_dir
    )
    try:
        return MqttPublisher(settings, outbox)
    except MqttError as exc:
        outbox.close()
        raise ConfigError(str(exc)) from None


def mqtt_settings(cfg: Config, camera: str) -> MqttSettings:
    """The broker's settings, the password read from its file; ConfigError (one line) if it cannot be."""
    m = cfg.mqtt
    assert m.host
    password = None
    if m.password_file is not None:
        try:
            raw = read_regular(m.password_file, 4096, follow_symlinks=True)
        except OSError as exc:
            raise ConfigError(f"mqtt.password_file: {m.password_file}: cannot read ({exc.strerror or exc})") from None
        if os.stat(m.password_file).st_mode & 0o004:  # the service's group may read it (README: 0640)
            log.warning("mqtt.password_file: %s can be read by everyone; chmod 640 or 600 it", m.password_file)
        password = raw.decode("utf-8", "replace").rstrip("\r\n")
    return MqttSettings(
        host=m.host,
        port=m.port,
        camera=camera,
        topic_prefix=m.topic_prefix,
        discovery_prefix=m.discovery_prefix,
        client_id=m.client_id or f"livecam-{camera}",
        username=m.username,
        password=password,
        tls=m.tls.enabled or m.tls.ca is not None or m.tls.cert is not None,
        tls_ca=m.tls.ca,
        tls_cert=m.tls.cert,
        tls_key=m.tls.key,
        person_reset_seconds=m.person_reset_seconds,
        snapshots=m.snapshots,
    )
