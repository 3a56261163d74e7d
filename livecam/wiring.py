"""Wiring: the one place that builds livecam's stages from the config.

The command line (and any other front end: a service for several cameras)
asks here for the engine settings, the live loop's recognizer and detector,
and the door with its event handlers; nothing else reads the config to
construct a stage.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from pathlib import Path

from .config import CAMERA_NAME, Config, ConfigError
from .connect import MqttError, MqttPublisher, MqttSettings, clear_snapshots, open_outbox
from .door import Action, ActionRunner, AuditLog, DoorPolicy, EventSink, Retention, UnknownStore, audit_records
from .engine import EngineSettings, gallery_stats, load_gallery
from .live import (
    BLINK_LICENCE_NOTE,
    Detector,
    EncoderProcess,
    FileSource,
    LatestFrameReader,
    LiveSettings,
    Recognizer,
    VotingRule,
)
from .models import spec_of
from .names import camera_name_for
from .state import state_dir
from .storage import read_regular

log = logging.getLogger(__name__)
_warned_readable: set[Path] = set()  # password files warned about: once a run, though read twice (checked at start)


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
        log.warning("%s", BLINK_LICENCE_NOTE)
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
    """The broker's settings, the password read from its file, the TLS files checked; ConfigError (one
    line naming the key and the file) if one cannot be used. Cheap: `run` calls it before the models load."""
    m = cfg.mqtt
    assert m.host
    password = None
    if m.password_file is not None:
        try:
            raw = read_regular(m.password_file, 4096, follow_symlinks=True)
            mode = os.stat(m.password_file).st_mode
        except OSError as exc:
            raise ConfigError(f"mqtt.password_file: {m.password_file}: cannot read ({exc.strerror or exc})") from None
        if mode & 0o022:  # whoever may change it chooses the password livecam sends, and so the broker it trusts
            who = "everyone" if mode & 0o002 else "its group"
            raise ConfigError(
                f"mqtt.password_file: {m.password_file} can be changed by {who} (mode {mode & 0o777:o}); chmod 640 or"
                " 600 it"
            )
        if mode & 0o004 and m.password_file not in _warned_readable:  # the service's group may (README: 0640)
            _warned_readable.add(m.password_file)
            log.warning("mqtt.password_file: %s can be read by everyone; chmod 640 or 600 it", m.password_file)
        password = raw.decode("utf-8", "replace").rstrip("\r\n")
    _check_tls_files(cfg)
    door = cfg.door
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
        # a face on the broker lives no longer than a stranger's crop on disk, and not at all for a
        # stranger when the door keeps no crops (door.unknown_dir: null)
        snapshot_keep_seconds=None if door.unknown_keep_days is None else door.unknown_keep_days * 86400,
        stranger_snapshots=door.unknown_dir is not None,
    )


def _check_tls_files(cfg: Config) -> None:
    """mqtt.tls's files, each readable and what it should be: found at start, not after the gallery loads."""
    tls = cfg.mqtt.tls
    for key, path in (("ca", tls.ca), ("cert", tls.cert), ("key", tls.key)):
        if path is not None:
            try:
                read_regular(path, 1 << 20, follow_symlinks=True)
            except OSError as exc:
                raise ConfigError(f"mqtt.tls.{key}: {path}: cannot read ({exc.strerror or exc})") from None
    context = ssl.create_default_context()
    if tls.ca is not None:
        try:
            context.load_verify_locations(cafile=str(tls.ca))
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"mqtt.tls.ca: {tls.ca}: not a PEM CA certificate ({_first_line(exc)})") from None
    if tls.cert is not None and tls.key is not None:
        try:
            context.load_cert_chain(str(tls.cert), str(tls.key))
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"mqtt.tls.cert, mqtt.tls.key: {tls.cert}, {tls.key}: not a PEM certificate and its key"
                f" ({_first_line(exc)})"
            ) from None


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def clear_retained_snapshots(cfg: Config) -> tuple[bool, str] | None:
    """After `unknown purge`: empty the retained snapshot of every camera of this door on the config's
    broker (None when there is no broker). The cameras: every name in the audit log (a run's name may
    come from --name or its source, which the config does not hold) and camera.name."""
    if not cfg.mqtt.host:
        return None
    # only names a topic can hold: the log is a file, and no `#` or `/` goes from it into a topic
    cameras = {
        camera
        for record in audit_records(cfg.door.events_log)
        if isinstance(camera := record.get("camera"), str) and re.fullmatch(CAMERA_NAME[0], camera)
    }
    if cfg.camera.name:
        cameras.add(cfg.camera.name)
    return clear_snapshots(mqtt_settings(cfg, cfg.camera.name or "door"), cameras)
