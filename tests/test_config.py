from __future__ import annotations

import dataclasses
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
