from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import pytest

from livecam.config import Config, ConfigError, load_config, override, parse_config

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_yaml_states_the_defaults():
    shipped = load_config(REPO / "config.yaml")
    defaults = Config()
    assert shipped.known_faces == REPO / "known_faces"
    assert shipped.models_dir == REPO / "models"
    for section in ("detection", "encoding", "matching", "camera", "live", "voting"):
        assert getattr(shipped, section) == getattr(defaults, section), section
    assert shipped.workers == defaults.workers
    assert shipped.actions == defaults.actions
    assert shipped.mqtt == defaults.mqtt
    assert shipped.cache_dir is None
    assert shipped.door.events_log == REPO / "events.jsonl" and shipped.door.unknown_dir == REPO / "unknown"
    assert (shipped.door.cooldown_seconds, shipped.door.min_agree) == (
        defaults.door.cooldown_seconds,
        defaults.door.min_agree,
    )


def test_actions_are_argv_lists_and_urls(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('actions:\n  on_unknown:\n    command: "rm -rf /"\n')
    with pytest.raises(ConfigError, match="actions.on_unknown.command must be a list of strings"):
        load_config(path)
    path.write_text("actions:\n  on_recognized:\n    webhook: ftp://x\n")
    with pytest.raises(ConfigError, match="actions.on_recognized.webhook must be an http"):
        load_config(path)
    path.write_text("actions:\n  on_recognized:\n    command: [/bin/true, --flag]\ndoor:\n  events_log: null\n")
    cfg = load_config(path)
    assert cfg.actions.on_recognized.command == ("/bin/true", "--flag") and cfg.door.events_log is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("matching:\n  treshold: 0.5\n", "matching.treshold"),
        ("colour: red\n", "colour"),
        ("matching:\n  threshold: high\n", "matching.threshold"),
        ("matching:\n  threshold: 3.5\n", "matching.threshold"),
        ("detection:\n  detector: yolo\n", "detection.detector"),
        ("detection:\n  upsample: 1.5\n", "detection.upsample"),
        ("detection:\n  upsample: -1\n", "detection.upsample"),
        ("encoding:\n  flip_average: 1\n", "encoding.flip_average"),
        ("encoding: 3\n", "encoding"),
        ("workers: true\n", "workers"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path, text, key):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    assert key in message


def test_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# nothing set\n")
    cfg = load_config(path)
    assert cfg.matching == Config().matching
    assert cfg.known_faces == tmp_path / "known_faces"  # relative to the file


@pytest.mark.parametrize("text", ["matching: [unclosed\n", "- just\n- a list\n", "\tbad: tab\n"])
def test_non_yaml_or_non_mapping_is_one_line(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_values_are_typed():
    cfg = parse_config({"matching": {"threshold": 1}, "known_faces": "people"})
    assert isinstance(cfg.matching.threshold, float) and cfg.matching.threshold == 1.0
    assert cfg.known_faces == Path("people")


def test_cli_override_checks_range_and_keeps_the_rest():
    cfg = override(Config(), "matching", threshold=0.42)
    assert cfg.matching.threshold == 0.42
    assert cfg.matching.margin == Config().matching.margin
    assert override(cfg, "matching", threshold=None) == cfg
    with pytest.raises(ConfigError, match="matching.threshold"):
        override(cfg, "matching", threshold=9.0)
    assert dataclasses.replace(cfg) == cfg


# --- hostile configs (issue 10): one line naming the file, exit 2, within a second ---

ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (ALIAS_BOMB, "anchors and aliases"),
        ("matching:\n  threshold: .nan\n", "matching.threshold must be a finite number"),
        ("live:\n  recheck_seconds: .nan\n", "live.recheck_seconds must be a finite number"),
        ("door:\n  cooldown_seconds: .inf\n", "door.cooldown_seconds must be a finite number"),
        ("[" * 5000 + "]" * 5000, "nested more than"),
        ("door:\n  min_agree: 10\nvoting:\n  window: 3\n", "door.min_agree (10) must not exceed voting.window (3)"),
        ('actions:\n  on_unknown:\n    command: ["/bin/echo", "a\\0b"]\n', "actions.on_unknown.command"),
        ('known_faces: "faces\\0x"\n', "known_faces must not contain a NUL"),
        ("matching:\n  threshold: " + "9" * 5000 + "\n", "a value cannot be read"),
        ("matching:\n  threshold: 1.0e+999\n", "matching.threshold must be a finite number"),
    ],
    ids=[
        "alias-bomb",
        "nan",
        "nan-recheck",
        "inf",
        "deep",
        "min-agree",
        "nul-argv",
        "nul-path",
        "huge-int",
        "overflow",
    ],
)
def test_a_hostile_config_is_one_line_exit_2_within_a_second(tmp_path, capsys, text, says):
    from livecam.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(text)
    start = time.monotonic()
    code = main(["--config", str(path), "gallery", "list", "--known-faces", str(tmp_path / "kf")])
    err = capsys.readouterr().err
    assert time.monotonic() - start < 1.0
    assert code == 2 and err.count("\n") == 1 and str(path) in err and says in err, err
    assert len(err) < 300


def test_a_config_that_is_not_a_regular_file_is_refused_at_once(tmp_path, capsys):
    from livecam.cli import main

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20) + "\n")
    for path, says in ((Path("/dev/zero"), "not a regular file"), (fifo, "not a regular file"), (big, "larger than")):
        start = time.monotonic()
        code = main(["--config", str(path), "gallery", "list", "--known-faces", str(tmp_path / "kf")])
        err = capsys.readouterr().err
        assert time.monotonic() - start < 1.0 and code == 2 and err.count("\n") == 1 and says in err, err


# --- properties: whatever the bytes, the reader gives a Config or one ConfigError line ---

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
)
_sections = {
    f.name: st.dictionaries(
        st.sampled_from([g.name for g in dataclasses.fields(f.type)] + ["bogus"])
        if dataclasses.is_dataclass(f.type)
        else st.text(max_size=8),
        _values,
        max_size=4,
    )
    for f in dataclasses.fields(Config)
    if not f.metadata.get("internal")
}


def _is_valid_or_one_line(data) -> None:
    try:
        cfg = parse_config(data, "c.yaml")
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("c.yaml") and "\n" not in msg and len(msg) < 400
        return
    for section in ("matching", "live", "voting", "door", "actions"):
        for f in dataclasses.fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if isinstance(value, float):
                assert math.isfinite(value), (section, f.name)
    assert cfg.voting.agree <= cfg.voting.window and cfg.door.min_agree <= cfg.voting.window


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=_sections) | _values)
def test_property_any_parsed_yaml_gives_a_config_or_one_line(data):
    _is_valid_or_one_line(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_property_any_bytes_give_a_config_or_one_line(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_bytes(blob)
    try:
        load_config(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
