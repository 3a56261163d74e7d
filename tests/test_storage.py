"""Where livecam writes or deletes, it never follows a link, never creates what nobody named,
and never loosens or tightens a shared folder behind anyone's back (issue 10)."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from conftest import photo

from livecam.cli import main
from livecam.storage import OutputError, ensure_private_dir, open_private


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- gallery remove ---


def test_gallery_remove_deletes_that_person_only(tmp_path, data, capsys):
    kf = tmp_path / "kf"
    kf.mkdir()
    for name in ("Tony.jpg", "Tony.Blair.jpg", "Tony.Other-person.png", "Tony.notes.txt", "Tonya.jpg"):
        shutil.copy(photo(data, "Tony_Blair", 1), kf / name)
    (kf / "Tony").mkdir()
    shutil.copy(photo(data, "Tony_Blair", 2), kf / "Tony" / "2.jpg")
    code, out, _ = run(capsys, "gallery", "remove", "Tony", "--known-faces", str(kf))
    assert code == 0 and "(2 photo(s))" in out
    assert sorted(p.name for p in kf.iterdir() if not p.name.startswith(".")) == [
        "Tony.Blair.jpg",
        "Tony.Other-person.png",
        "Tony.notes.txt",
        "Tonya.jpg",
    ]


def test_gallery_remove_of_a_symlinked_person_never_deletes_the_target(tmp_path, data, capsys):
    kf = tmp_path / "kf"
    (kf / "Bob").mkdir(parents=True)
    shutil.copy(photo(data, "Tony_Blair", 1), kf / "Bob" / "1.jpg")
    (kf / "Alice").symlink_to(kf / "Bob", target_is_directory=True)
    code, _, err = run(capsys, "gallery", "remove", "Alice", "--known-faces", str(kf))
    assert code == 2 and "symbolic link" in err and err.count("\n") == 1
    assert (kf / "Bob" / "1.jpg").is_file()


def test_gallery_remove_purges_the_cache(tmp_path, make_gallery, capsys):
    import numpy as np

    from livecam.config import Config, resolved
    from livecam.engine.batch import EngineSettings
    from livecam.engine.gallery import cache_path

    kf = make_gallery({"Tony_Blair": [1, 2], "George_W_Bush": [1]})
    assert run(capsys, "gallery", "list", "--known-faces", str(kf))[0] == 0
    assert run(capsys, "gallery", "remove", "Tony_Blair", "--known-faces", str(kf))[0] == 0
    cache = cache_path(kf, EngineSettings(model=resolved(Config()).encoding.model))  # the default model's
    with np.load(cache, allow_pickle=False) as npz:
        assert list(npz["paths"]) == ["George_W_Bush/1.jpg"]  # Tony's encodings are gone now, not at the next load


# --- the gallery never follows links, and checks names ---


def test_symlinked_photos_are_never_enrolled(tmp_path, data, make_gallery, caplog, capsys):
    kf = make_gallery({"George_W_Bush": [1]})
    outside = tmp_path / "outside.jpg"
    shutil.copy(photo(data, "Tony_Blair", 1), outside)
    (kf / "George_W_Bush" / "2.jpg").symlink_to(outside)  # a link inside a person's folder
    (kf / "Mallory.jpg").symlink_to(outside)  # a single-photo person that is a link
    code, out, _ = run(capsys, "gallery", "list", "--known-faces", str(kf))
    assert code == 0 and "George_W_Bush\t1 photo(s)" in out and "Mallory" not in out.split("1 people")[0]


def test_a_photo_replaced_by_a_link_after_the_scan_is_not_read(tmp_path, data):
    from livecam.engine.batch import EngineSettings, encode_files

    link = tmp_path / "x.jpg"
    link.symlink_to(photo(data, "Tony_Blair", 1))
    [result] = encode_files([link], EngineSettings(), workers=1, follow_symlinks=False)
    assert result.error and "symbolic link" in result.error


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("unknown", "reserved"),
        ("Unknown", "reserved"),
        ("Eve\nlivecam: event: recognized Tony_Blair", "control character"),
        ("😀" * 100, "too long"),
    ],
    ids=["unknown", "Unknown", "newline", "400-bytes"],
)
def test_names_that_cannot_be_a_persons_are_refused_by_enroll_and_skipped_by_the_scan(
    tmp_path, data, make_gallery, capsys, caplog, name, says
):
    kf = make_gallery({"George_W_Bush": [1]})
    code, out, err = run(capsys, "enroll", name, str(photo(data, "Tony_Blair", 1)), "--known-faces", str(kf))
    assert code == 2 and says in err and err.count("\n") == 1, err
    try:
        (kf / name).mkdir()  # put there by hand (a 400-byte name cannot be a file name at all)
    except OSError:
        return
    shutil.copy(photo(data, "Tony_Blair", 1), kf / name / "1.jpg")
    with caplog.at_level("WARNING"):
        code, out, _ = run(capsys, "gallery", "list", "--known-faces", str(kf))
    assert code == 0 and out.splitlines()[0] == "George_W_Bush\t1 photo(s)" and "1 people" in out
    assert says in caplog.text and "\nlivecam: event" not in caplog.text


# --- files livecam writes ---


def test_open_private_never_writes_through_a_link_and_makes_an_existing_file_0600(tmp_path):
    target = tmp_path / "target"
    target.write_text("precious\n")
    link = tmp_path / "events.jsonl"
    link.symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        open_private(link, append=True)
    assert target.read_text() == "precious\n" and mode(target) == 0o644
    loose = tmp_path / "loose.jsonl"
    loose.write_text("")
    os.chmod(loose, 0o644)
    os.close(open_private(loose, append=True))
    assert mode(loose) == 0o600


def test_run_outputs_that_are_links_or_in_missing_folders_are_refused_before_any_work(tmp_path, data, capsys):
    clip = str(data / "videos" / "short_hamilton_clip.mp4")
    target = tmp_path / "target"
    target.write_text("precious\n")
    (tmp_path / "link.mp4").symlink_to(target)
    cases = [
        (["--record", str(tmp_path / "link.mp4")], "symbolic link"),
        (["--log-json", str(tmp_path / "link.mp4")], "symbolic link"),
        (["--record", str(tmp_path / "nowhere" / "out.mp4")], "does not exist"),
        (["--log-json", str(tmp_path / "nowhere" / "out.jsonl")], "does not exist"),
    ]
    for extra, says in cases:
        code, _, err = run(capsys, "run", "--camera", clip, "--no-window", "--frames", "2", *extra)
        assert code == 2 and says in err and err.count("\n") == 1, (extra, err)
    assert target.read_text() == "precious\n" and not (tmp_path / "nowhere").exists()


def test_config_output_paths_in_missing_or_shared_folders_are_refused(tmp_path, data, capsys):
    clip = str(data / "videos" / "short_hamilton_clip.mp4")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    for door, says in (
        ("events_log: nowhere/events.jsonl", "does not exist"),
        ("unknown_dir: nowhere/unknown", "does not exist"),
        (f"unknown_dir: {shared}", "everyone can write into it"),
    ):
        config = tmp_path / "c.yaml"
        config.write_text(f"door:\n  {door}\n")
        code, _, err = run(capsys, "--config", str(config), "run", "--camera", clip, "--no-window", "--frames", "2")
        assert code == 2 and says in err and err.count("\n") == 1, (door, err)
    assert mode(shared) == 0o1777 and not (tmp_path / "nowhere").exists()


def test_other_commands_check_their_outputs_first_and_create_no_parent(tmp_path, data, make_gallery, capsys):
    kf = make_gallery({"Tony_Blair": [1, 2], "George_W_Bush": [1, 2]})
    one = str(photo(data, "Tony_Blair", 1))
    for argv in (
        ["encode", one, "-o", str(tmp_path / "nowhere" / "x.jsonl")],
        ["calibrate", "--known-faces", str(kf), "--plot", str(tmp_path / "nowhere" / "h.png")],
        ["enroll", "Ada", one, "--known-faces", str(tmp_path / "nowhere" / "kf")],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "does not exist" in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "nowhere").exists()


def test_an_existing_private_folder_of_others_is_left_alone(tmp_path):
    shared = tmp_path / "drop"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(OutputError, match="everyone can write"):
        ensure_private_dir(shared)
    assert mode(shared) == 0o1777
    readable = tmp_path / "mine"
    readable.mkdir()
    os.chmod(readable, 0o755)
    ensure_private_dir(readable)
    assert mode(readable) == 0o700
    link = tmp_path / "link"
    link.symlink_to(readable, target_is_directory=True)
    with pytest.raises(OutputError, match="symbolic link"):
        ensure_private_dir(link)


def test_unknown_promote_of_a_link_touches_nothing_outside(tmp_path, data, capsys):
    outside = tmp_path / "outside.jpg"
    shutil.copy(photo(data, "Tony_Blair", 1), outside)
    os.chmod(outside, 0o644)
    unknown = tmp_path / "unknown"
    unknown.mkdir(mode=0o700)
    (unknown / "20260101-000000-t1.jpg").symlink_to(outside)
    config = tmp_path / "c.yaml"
    config.write_text(f"known_faces: {tmp_path / 'kf'}\ndoor:\n  unknown_dir: {unknown}\n")
    (tmp_path / "kf").mkdir()  # the gallery exists: the link is what is refused
    code, _, err = run(capsys, "--config", str(config), "unknown", "promote", "20260101-000000-t1", "Eve")
    assert code == 2 and err.count("\n") == 1
    assert mode(outside) == 0o644 and not (tmp_path / "kf" / "Eve").exists()
