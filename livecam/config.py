"""config.yaml: read with yaml.safe_load into typed, validated dataclasses.

Unknown keys, wrong types and out-of-range values are refused with one line
that names the file and the key, so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .models import DETECTORS, MODELS, default_model, spec_of
from .storage import read_regular

DEFAULT_CONFIG_FILE = Path("config.yaml")
MAX_CONFIG_BYTES = 1 << 20  # a config is a page of settings; /dev/zero or a huge file is refused before reading it
MAX_DEPTH = 16  # nesting deeper than any real config (ours is 3 levels)


class ConfigError(ValueError):
    """A config problem; str() is one line naming the file and key."""


def _opt(
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple = (),
    url: bool = False,
    pattern: tuple[str, str] | None = None,
) -> Any:
    """A setting; `pattern`: (regex the whole string must match, what it means, for the error)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices, "url": url, "pattern": pattern})


# A camera's name goes into file names, MQTT topics and Home Assistant ids: letters, digits, - and _ only.
CAMERA_NAME = (r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", "1-64 letters, digits, - or _ (starting with a letter or digit)")
# An MQTT topic prefix: such words separated by / (no wildcards, no empty levels).
TOPIC_PREFIX = (r"[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,7}", "words of letters, digits, - or _ separated by /")


@dataclass(frozen=True)
class DetectionConfig:
    detector: str = _opt("hog", choices=tuple(DETECTORS))  # models.DETECTORS
    upsample: int = _opt(1, lo=0, hi=4)
    max_upsample: int = _opt(2, lo=0, hi=4)
    cnn_fallback: bool = _opt(True)


@dataclass(frozen=True)
class EncodingConfig:
    jitters: int = _opt(0, lo=0, hi=100)
    # Mirror-image averaging costs a second network pass per face and raises
    # TAR at FAR 0.1 % on LFW from 0.930 to 0.946 (docs/engine.md). "gallery":
    # enrolled photos only (encoded once, cached); "always": every face; "never".
    flip_average: str = _opt("gallery", choices=("gallery", "always", "never"))
    # the embedder (models.py); each has its own thresholds. null: models.DEFAULT_MODEL where it can run, else dlib
    model: str | None = _opt(None, choices=tuple(MODELS))


@dataclass(frozen=True)
class MatchingConfig:
    # null (the default): the model's own value (models.py: dlib 0.45 / 0.04 / 0.5, facenet 0.85 / 0.08 / 0.92);
    # a distance means something only in its model's space.
    threshold: float | None = _opt(None, lo=0.0, hi=2.0)
    margin: float | None = _opt(None, lo=0.0, hi=1.0)
    # `verify` compares two photos (1:1), where a false accept has one chance,
    # not one per enrolled person: it can afford a looser threshold.
    verify_threshold: float | None = _opt(None, lo=0.0, hi=2.0)


@dataclass(frozen=True)
class CameraConfig:
    width: int = _opt(640, lo=64, hi=7680)
    height: int = _opt(480, lo=48, hi=4320)
    fps: float = _opt(30.0, lo=1.0, hi=240.0)
    # in every event, log line, unknown crop's file name, action (LIVECAM_CAMERA) and MQTT topic;
    # null: derived from the source (camera-0, the video file's name, the stream's host)
    name: str | None = _opt(None, pattern=CAMERA_NAME)
    source: str | None = _opt(
        None
    )  # what `run` opens without --camera: an index, a video file or a stream URL (null: 0)


@dataclass(frozen=True)
class LiveConfig:
    min_face_px: int = _opt(100, lo=20, hi=4000)
    detect_every: int = _opt(4, lo=1, hi=60)
    recheck_seconds: float = _opt(2.0, lo=0.1, hi=3600.0)
    max_encodes_per_frame: int = _opt(2, lo=1, hi=32)
    max_faces: int = _opt(10, lo=1, hi=100)


@dataclass(frozen=True)
class VotingConfig:
    window: int = _opt(5, lo=1, hi=50)
    agree: int = _opt(2, lo=1, hi=50)
    instant_distance: float | None = _opt(None, lo=0.0, hi=2.0)  # null: the model's (dlib 0.40, facenet 0.76)
    unknown_after: int = _opt(2, lo=1, hi=50)


@dataclass(frozen=True)
class DoorConfig:
    events_log: Path | None = _opt(Path("events.jsonl"))
    cooldown_seconds: float = _opt(30.0, lo=0.0, hi=86400.0)
    min_agree: int = _opt(2, lo=1, hi=50)
    unknown_wait_seconds: float = _opt(3.0, lo=0.0, hi=3600.0)
    unknown_dir: Path | None = _opt(Path("unknown"))
    liveness: str = _opt("none", choices=("none", "blink"))
    # Retention (biometric data is kept no longer than it is useful): applied at start and daily.
    unknown_keep_days: float | None = _opt(30.0, lo=0.01, hi=36500.0)
    unknown_keep_count: int | None = _opt(500, lo=1, hi=1_000_000)
    unknown_crops_per_minute: int = _opt(10, lo=1, hi=10_000)
    events_keep_days: float | None = _opt(365.0, lo=0.01, hi=36500.0)


@dataclass(frozen=True)
class ActionConfig:
    command: tuple[str, ...] = _opt(())
    webhook: str | None = _opt(None, url=True)


@dataclass(frozen=True)
class ActionsConfig:
    on_recognized: ActionConfig = field(default_factory=ActionConfig)
    on_unknown: ActionConfig = field(default_factory=ActionConfig)
    webhook_timeout: float = _opt(3.0, lo=0.1, hi=60.0)
    webhook_retries: int = _opt(2, lo=0, hi=10)
    queue_size: int = _opt(16, lo=1, hi=10000)


@dataclass(frozen=True)
class MqttTlsConfig:
    ca: Path | None = _opt(None)  # the CA that signed the broker's certificate (null: the system's CAs)
    cert: Path | None = _opt(None)  # a client certificate, when the broker asks for one...
    key: Path | None = _opt(None)  # ...and its key
    enabled: bool = _opt(False)  # TLS even without a CA of your own (on when ca or cert is set)


@dataclass(frozen=True)
class MqttConfig:
    host: str | None = _opt(None)  # null: MQTT off
    port: int = _opt(1883, lo=1, hi=65535)
    username: str | None = _opt(None)
    password_file: Path | None = _opt(None)  # a file holding the password (never the password in this file)
    tls: MqttTlsConfig = field(default_factory=MqttTlsConfig)
    topic_prefix: str = _opt("livecam", pattern=TOPIC_PREFIX)
    discovery_prefix: str = _opt("homeassistant", pattern=TOPIC_PREFIX)  # Home Assistant's
    client_id: str | None = _opt(None)  # null: livecam-<camera name>
    person_reset_seconds: float = _opt(60.0, lo=1.0, hi=86400.0)  # the person sensor goes back to "none"
    snapshots: bool = _opt(True)  # publish the face of each event (a JPEG: biometric data on the broker)
    outbox: Path | None = _opt(None)  # events waiting for the broker; null: $XDG_STATE_HOME/livecam/
    outbox_max_events: int = _opt(10_000, lo=1, hi=1_000_000)  # past this, the oldest are dropped (and counted)


@dataclass(frozen=True)
class Config:
    known_faces: Path = _opt(Path("known_faces"))
    models_dir: Path = _opt(Path("models"))
    workers: int = _opt(0, lo=0, hi=256)
    # the gallery cache's folder (null: in known_faces/); one per door when doors share a gallery
    cache_dir: Path | None = _opt(None)
    # livecam's state folder: the key that seals the gallery cache, and the MQTT outbox (null:
    # $XDG_STATE_HOME/livecam, by default ~/.local/state/livecam). A service names it here rather than
    # in its unit's environment: the commands run by hand with the same --config (enroll, gallery)
    # then use the same key whatever user or shell runs them, and never make the service re-encode
    state_dir: Path | None = _opt(None)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    voting: VotingConfig = field(default_factory=VotingConfig)
    door: DoorConfig = field(default_factory=DoorConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    source: Path | None = field(default=None, compare=False, metadata={"internal": True})


def _show(value: Any) -> str:
    """A value for an error message: one line, short (a hostile value can be huge)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", Path: "a path"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(value: Any, tp: Any, key: str, where: str, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        tp = args[0]
    if typing.get_origin(tp) is tuple:
        if value is None:
            value = []
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v and "\0" not in v for v in value):
            raise ConfigError(f"{where}: {key} must be a list of strings (an argv list), got {_show(value)}")
        return tuple(value)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping of settings, got {_show(value)}")
        return _build(tp, value, f"{key}.", where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} must be an integer, got {_show(value)}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: {key} must be a number, got {_show(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be a finite number, got {_show(value)}")
    elif tp in (str, Path):
        if isinstance(value, Path) and tp is Path:
            return value
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {key} must be {_type_name(tp)}, got {_show(value)}")
        if "\0" in value:
            raise ConfigError(f"{where}: {key} must not contain a NUL character")
        value = Path(value) if tp is Path else value
    pattern = meta.get("pattern")
    if pattern and not re.fullmatch(pattern[0], str(value)):
        raise ConfigError(f"{where}: {key} must be {pattern[1]}, got {_show(value)}")
    if meta.get("url") and not str(value).startswith(("http://", "https://")):
        raise ConfigError(f"{where}: {key} must be an http:// or https:// URL, got {_show(value)}")
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices") or ()
    if choices and value not in choices:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(map(str, choices))}, got {_show(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{where}: {key} must be between {lo} and {hi}, got {_show(value)}")
    return value


def _build(cls: type, data: dict, prefix: str, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{where}: unknown key {_show(f'{prefix}{key}')} (known: {known})")
    kwargs = {
        name: _convert(data[name], hints[name], f"{prefix}{name}", where, dict(f.metadata))
        for name, f in fields.items()
        if name in data
    }
    return cls(**kwargs)


def parse_config(data: Any, where: str = "config") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping of settings (key: value), got {type(data).__name__}")
    return _check_relations(_build(Config, data, "", where), where)


def _check_relations(cfg: Config, where: str) -> Config:
    if cfg.voting.agree > cfg.voting.window:
        raise ConfigError(
            f"{where}: voting.agree ({cfg.voting.agree}) must not exceed voting.window ({cfg.voting.window})"
        )
    if cfg.door.min_agree > cfg.voting.window:
        raise ConfigError(
            f"{where}: door.min_agree ({cfg.door.min_agree}) must not exceed voting.window ({cfg.voting.window}):"
            ' no "recognized" event could ever be sent'
        )
    tls, mqtt = cfg.mqtt.tls, cfg.mqtt
    if (tls.cert is None) != (tls.key is None):
        raise ConfigError(f"{where}: mqtt.tls.cert and mqtt.tls.key go together (a client certificate and its key)")
    if mqtt.password_file is not None and mqtt.username is None:
        raise ConfigError(f"{where}: mqtt.password_file needs mqtt.username (MQTT sends no password without a user)")
    if mqtt.host is not None and (problem := _mqtt_host_problem(mqtt.host)):
        raise ConfigError(f"{where}: mqtt.host {problem}")
    if cfg.encoding.model is not None:  # else checked once the model is chosen (resolved)
        _check_instant(resolved(cfg), where)
    return cfg


def _check_instant(cfg: Config, where: str) -> None:
    instant, threshold = cfg.voting.instant_distance, cfg.matching.threshold
    if instant is not None and threshold is not None and instant > threshold:
        raise ConfigError(
            f"{where}: voting.instant_distance ({instant}) must not exceed matching.threshold ({threshold})"
            f" of model {cfg.encoding.model}"
        )


def _mqtt_host_problem(host: str) -> str | None:
    """What is wrong with `host` as a broker's host name or address (None: nothing). A URL or host:port
    is refused, saying what to write: the port and TLS each have one key of their own, never two."""
    if "://" in host or re.fullmatch(r"[^:/\s]+:\d*", host):
        parts = urllib.parse.urlsplit(host if "://" in host else f"mqtt://{host}")
        try:
            port = parts.port
        except ValueError:
            port = None
        tls = parts.scheme in ("mqtts", "ssl", "tls", "wss")
        port = port or (8883 if tls else None)  # MQTT over TLS's usual port; plain MQTT's is the default
        write = f"host: {parts.hostname or '...'}" + (f" and port: {port}" if port else "")
        write += " and tls: {enabled: true}" if tls else ""
        # the value itself is not repeated: a URL may hold a password
        return f"must be a host name or address, not a URL or host:port: write {write}"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"must be a host name or address, got {_show(host)}"
    elif not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
        return f"must be a host name or address, got {_show(host)}"
    return None


def resolved(cfg: Config) -> Config:
    """`cfg` with its model chosen (encoding.model null: models.default_model) and every distance left null
    filled in from the model's spec: the one place that happens."""
    chosen = cfg.encoding.model is None
    if chosen:
        cfg = dataclasses.replace(cfg, encoding=dataclasses.replace(cfg.encoding, model=default_model(cfg.models_dir)))
    spec = spec_of(cfg.encoding.model)
    m, v = cfg.matching, cfg.voting
    out = dataclasses.replace(
        cfg,
        matching=dataclasses.replace(
            m,
            threshold=spec.threshold if m.threshold is None else m.threshold,
            margin=spec.margin if m.margin is None else m.margin,
            verify_threshold=spec.verify_threshold if m.verify_threshold is None else m.verify_threshold,
        ),
        voting=dataclasses.replace(
            v, instant_distance=spec.instant_distance if v.instant_distance is None else v.instant_distance
        ),
    )
    if chosen:  # a config that set voting.instant_distance for one model and runs another
        _check_instant(out, "encoding.model null")
    return out


def load_config(path: Path | None = None) -> Config:
    """Read `path` (or ./config.yaml when present); defaults when there is no file.

    Relative paths inside the file are taken relative to the file's folder.
    """
    explicit = path is not None
    path = Path(path) if explicit else DEFAULT_CONFIG_FILE
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: config file not found")
        return Config()
    config = parse_config(parse_yaml(_read_text(path), str(path)), str(path))
    base = path.resolve().parent
    door, mqtt = config.door, config.mqtt

    def rel(p: Path | None) -> Path | None:
        return p and _relative_to(base, p)

    return dataclasses.replace(
        config,
        known_faces=_relative_to(base, config.known_faces),
        models_dir=_relative_to(base, config.models_dir),
        cache_dir=rel(config.cache_dir),
        state_dir=rel(config.state_dir),
        door=dataclasses.replace(
            door,
            events_log=door.events_log and _relative_to(base, door.events_log),
            unknown_dir=door.unknown_dir and _relative_to(base, door.unknown_dir),
        ),
        mqtt=dataclasses.replace(
            mqtt,
            password_file=rel(mqtt.password_file),
            outbox=rel(mqtt.outbox),
            tls=dataclasses.replace(mqtt.tls, ca=rel(mqtt.tls.ca), cert=rel(mqtt.tls.cert), key=rel(mqtt.tls.key)),
        ),
        source=path,
    )


def _read_text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_CONFIG_BYTES (a FIFO or a device is never waited on)."""
    try:
        data = read_regular(path, MAX_CONFIG_BYTES, follow_symlinks=True)  # a linked config is fine to read
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})" if exc.strerror else str(exc)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


class _ConfigLoader(yaml.SafeLoader):
    """safe_load without aliases (an alias bomb is a few hundred bytes) and with a nesting limit."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise ConfigError(f"anchors and aliases (& and *) are not allowed{_line(self.peek_event())}")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep{_line(self.peek_event())}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _line(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def parse_yaml(text: str, where: str) -> Any:
    """The YAML document in `text`; ConfigError (one line naming `where`) when it is not a plain one."""
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML{at}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an integer of 5,000 digits
        raise ConfigError(f"{where}: a value cannot be read ({_show(str(exc))})") from None


def _relative_to(base: Path, p: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else base / p


def override(config: Config, section: str | None = None, **values: Any) -> Config:
    """A copy of `config` with CLI flags applied; None values mean "not given"."""
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return config
    where = "command line"
    if section is None:
        hints = typing.get_type_hints(Config)
        checked = {k: _convert(v, hints[k], k, where, _meta(Config, k)) for k, v in values.items()}
        return dataclasses.replace(config, **checked)
    sub = getattr(config, section)
    hints = typing.get_type_hints(type(sub))
    checked = {k: _convert(v, hints[k], f"{section}.{k}", where, _meta(type(sub), k)) for k, v in values.items()}
    return dataclasses.replace(config, **{section: dataclasses.replace(sub, **checked)})


def _meta(cls: type, name: str) -> dict:
    return dict(next(f for f in dataclasses.fields(cls) if f.name == name).metadata)
