from __future__ import annotations

import logging
import shutil
import stat

import cv2
import pytest

from livecam.batch import EngineSettings
from livecam.cli import main
from livecam.enroll import EnrollError, enroll_images, validate_name
from livecam.gallery import load_gallery


@pytest.mark.parametrize("name", ["张伟", "Zoë Saldaña", "Ada 😀", "O'Brien", "Anne-Marie"])
def test_any_script_is_a_valid_name(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "  ", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x\x00y", "tab\there"])
def test_names_never_escape_the_gallery(name):
    with pytest.raises(EnrollError):
        validate_name(name)


def test_enroll_accepts_good_photos_and_rejects_with_reasons(tmp_path, data, engine):
    ident = data / "identities" / "Tony_Blair"
    blurred = tmp_path / "blurred.jpg"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(ident / "6.jpg")), (0, 0), 2.5))
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(ident / "7.jpg")), (110, 110)))
    duplicate = tmp_path / "again.jpg"
    shutil.copy(ident / "1.jpg", duplicate)
    inputs = [
        ident / "1.jpg",
        ident / "2.jpg",
        duplicate,
        blurred,
        small,
        data / "groups" / "2008_001009.jpg",
        data / "negatives" / "skimage_coffee.png",
        tmp_path / "missing.jpg",
    ]
    root = tmp_path / "known_faces"
    report = enroll_images(root, "张伟", inputs, engine)
    assert [src for src, _ in report.accepted] == [ident / "1.jpg", ident / "2.jpg"]
    reasons = dict(report.rejected)
    assert "near-duplicate" in reasons[duplicate]
    assert "blurred" in reasons[blurred]
    assert "too small" in reasons[small] or "no face" in reasons[small]
    assert "2 faces" in reasons[data / "groups" / "2008_001009.jpg"]
    assert "no face" in reasons[data / "negatives" / "skimage_coffee.png"]
    assert "cannot read" in reasons[tmp_path / "missing.jpg"]
    folder = root / "张伟"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(root.stat().st_mode) == 0o700
    for _, dest in report.accepted:
        assert dest.parent == folder and stat.S_IMODE(dest.stat().st_mode) == 0o600
        assert b"Exif" not in dest.read_bytes()[:200]  # metadata is not copied
    g = load_gallery(root, EngineSettings(), 1, engine)
    assert g.counts() == {"张伟": 2}


def test_cli_enroll_warns_about_lookalikes_and_gallery_commands(tmp_path, data, capsys, caplog):
    ident = data / "identities" / "Tony_Blair"
    root = tmp_path / "kf"
    assert main(["enroll", "Tony", str(ident / "1.jpg"), str(ident / "3.jpg"), "--known-faces", str(root)]) == 0
    with caplog.at_level(logging.WARNING):
        code = main(["enroll", "Anthony", str(ident / "7.jpg"), "--known-faces", str(root)])
    assert code == 0
    assert any("looks like Tony" in r.getMessage() for r in caplog.records)
    capsys.readouterr()
    assert main(["gallery", "rename", "Anthony", "安东尼", "--known-faces", str(root)]) == 0
    g = load_gallery(root, EngineSettings(), 1)
    assert sorted(g.names) == ["Tony", "安东尼"] and g.encoded_now == 0  # renamed without re-encoding
    assert main(["gallery", "remove", "Tony", "--known-faces", str(root)]) == 0
    assert main(["gallery", "list", "--known-faces", str(root)]) == 0
    out = capsys.readouterr().out
    assert "安东尼\t1 photo(s)" in out and "Tony\t" not in out
    assert main(["gallery", "remove", "Nobody", "--known-faces", str(root)]) == 2
    assert main(["gallery", "rename", "安东尼", "../x", "--known-faces", str(root)]) == 2
    assert main(["enroll", "Bad", str(data / "negatives" / "skimage_coffee.png"), "--known-faces", str(root)]) == 1


def test_enroll_from_a_camera_like_source_then_recognized(tmp_path, data, capsys):
    import json

    clip = data / "videos" / "hdtf_WDA_KatieHill_000.mp4"
    root = tmp_path / "kf"
    assert (
        main(["enroll", "Katie Hill", "--camera", str(clip), "--count", "3", "--no-window", "--known-faces", str(root)])
        == 0
    )
    shots = sorted((root / "Katie Hill").iterdir())
    assert len(shots) == 3 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in shots)
    indices = [
        int(line.split("#")[1].split(" ")[0])
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("accepted")
    ]
    assert all(b - a >= 10 for a, b in zip(indices, indices[1:], strict=False))  # >= 0.4 s apart at 25 fps
    log = tmp_path / "log.jsonl"
    assert main(["run", "--camera", str(clip), "--known-faces", str(root), "--no-window", "--log-json", str(log)]) == 0
    names = {f["name"] for line in log.read_text().splitlines() for f in json.loads(line)["faces"]}
    assert "Katie Hill" in names and names <= {"Katie Hill", None}


def test_enroll_needs_photos_or_a_camera(tmp_path, capsys):
    assert main(["enroll", "X", "--known-faces", str(tmp_path / "kf")]) == 2
    assert main(["enroll", "X", "--camera", "99", "--no-window", "--known-faces", str(tmp_path / "kf")]) == 2


def test_enroll_from_a_camera_uses_the_live_detector_and_says_when_time_ran_out(
    tmp_path, data, capsys, caplog, monkeypatch
):
    """`enroll --camera` put every frame through the still-photo pipeline with its CNN fallback
    (128 s for a 9 s clip) and ended with 2 photos and no word of its timeout."""
    import livecam.cli.enroll as cli
    from livecam.faces import FaceEngine

    calls: list[str | None] = []
    real = FaceEngine.detect

    def spy(self, image, upsample=0, detector=None):
        calls.append(detector)
        return real(self, image, upsample, detector)

    monkeypatch.setattr(FaceEngine, "detect", spy)
    monkeypatch.setattr(cli, "ENROLL_TIMEOUT_S", 2.0)
    clip = data / "videos" / "short_hamilton_clip.mp4"
    with caplog.at_level("WARNING"):
        code = main(
            [
                "enroll",
                "Lin",
                "--camera",
                str(clip),
                "--count",
                "50",
                "--no-window",
                "--known-faces",
                str(tmp_path / "kf"),
            ]
        )
    assert calls and "cnn" not in calls
    assert "time ran out after 2 s" in caplog.text and "of 50 shots" in caplog.text
    assert code in (0, 1)
