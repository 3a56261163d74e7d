from __future__ import annotations

import json
import shutil
import stat

import numpy as np
import pytest

from livecam.cli import main
from livecam.config import Config, resolved
from livecam.models import MODELS


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_encode_contract_in_input_order_with_errors(capsys, data, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    inputs = [
        str(data / "identities" / "Tony_Blair" / "1.jpg"),
        str(bad),
        str(data / "negatives" / "skimage_brick.png"),
        str(empty),
        str(data / "groups" / "2008_001009.jpg"),
    ]
    code, out, err = run(capsys, "encode", "--workers", "2", *inputs)
    assert code == 1  # some inputs failed; the rest were still processed
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == inputs
    model = resolved(Config()).encoding.model  # the default: mobilefacenet where set-up installed it
    assert all(set(r) == {"path", "model", "faces", "error"} and r["model"] == model for r in records)
    blair, broken, brick, zero, group = records
    assert blair["error"] is None and len(blair["faces"]) == 1
    face = blair["faces"][0]
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    assert len(face["encoding"]) == MODELS[model].dimension and all(isinstance(v, float) for v in face["encoding"])
    assert broken["faces"] == [] and "broken.jpg" in broken["error"] and "\n" not in broken["error"]
    assert zero["faces"] == [] and "empty" in zero["error"]
    assert brick == {"path": inputs[2], "model": model, "faces": [], "error": None}  # no face is not an error
    assert len(group["faces"]) == 2
    assert "broken.jpg" in err and "Traceback" not in err


def test_encode_walks_folders_sorted_and_exits_0(capsys, data, tmp_path):
    folder = tmp_path / "photos"
    (folder / "b").mkdir(parents=True)
    shutil.copy(data / "identities" / "Tony_Blair" / "1.jpg", folder / "b" / "z.jpg")
    shutil.copy(data / "identities" / "Tony_Blair" / "2.jpg", folder / "a.jpg")
    (folder / "readme.txt").write_text("not an image")
    code, out, _ = run(capsys, "encode", str(folder), "--workers", "1")
    assert code == 0
    paths = [json.loads(line)["path"] for line in out.splitlines()]
    assert paths == [str(folder / "a.jpg"), str(folder / "b" / "z.jpg")]


def test_encode_same_vectors_with_one_or_two_workers(capsys, data):
    inputs = [str(data / "identities" / "Colin_Powell" / f"{n}.jpg") for n in (1, 2, 3)]
    _, one, _ = run(capsys, "encode", "--workers", "1", *inputs)
    _, two, _ = run(capsys, "encode", "--workers", "2", *inputs)
    a = [json.loads(line) for line in one.splitlines()]
    b = [json.loads(line) for line in two.splitlines()]
    for x, y in zip(a, b, strict=True):
        assert x["faces"][0]["box"] == y["faces"][0]["box"]
        assert np.allclose(x["faces"][0]["encoding"], y["faces"][0]["encoding"], atol=1e-5)


def test_encode_npy_and_output_file_are_private(capsys, data, tmp_path):
    out = tmp_path / "enc.npy"
    code, _, _ = run(
        capsys,
        "encode",
        "--format",
        "npy",
        "-o",
        str(out),
        "--workers",
        "1",
        str(data / "groups" / "2008_001009.jpg"),
        str(data / "identities" / "Tony_Blair" / "1.jpg"),
    )
    assert code == 0
    arr = np.load(out, allow_pickle=False)
    assert arr.shape == (3, MODELS[resolved(Config()).encoding.model].dimension) and arr.dtype == np.float32
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "argv",
    [
        ["encode"],
        ["encode", "--format", "xml", "a.jpg"],
        ["encode", "--format", "npy", "a.jpg"],
        ["encode", "--upsample", "9", "a.jpg"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("livecam: error:") and err.count("\n") == 1


def test_bad_config_key_exit_2_naming_the_key(capsys, tmp_path, data):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("matching:\n  threshhold: 0.4\n")
    code, _, err = run(capsys, "--config", str(cfg), "encode", str(data / "identities" / "Tony_Blair" / "1.jpg"))
    assert code == 2 and "matching.threshhold" in err and err.count("\n") == 1


def test_verify_same_and_different(capsys, data):
    ident = data / "identities"
    code, out, _ = run(
        capsys, "verify", "--json", str(ident / "Tony_Blair" / "1.jpg"), str(ident / "Tony_Blair" / "5.jpg")
    )
    same = json.loads(out)
    verify = MODELS[resolved(Config()).encoding.model].verify_threshold
    assert code == 0 and same["same"] is True and same["distance"] < verify
    code, out, _ = run(capsys, "verify", str(ident / "Tony_Blair" / "1.jpg"), str(ident / "Colin_Powell" / "1.jpg"))
    assert code == 1 and out.startswith("different people")  # exit 1: a script can branch on it


def test_verify_photo_without_face_is_one_line_error(capsys, data):
    code, _, err = run(
        capsys,
        "verify",
        str(data / "negatives" / "skimage_brick.png"),
        str(data / "identities" / "Tony_Blair" / "1.jpg"),
    )
    assert code == 2 and "skimage_brick.png" in err and "no face" in err and "Traceback" not in err


def test_identify_names_known_and_not_strangers(capsys, data, make_gallery):
    root = make_gallery({"Tony_Blair": [1, 2, 3], "Colin_Powell": [1, 2, 3]})
    ident = data / "identities"
    code, out, _ = run(
        capsys,
        "identify",
        "--json",
        "--known-faces",
        str(root),
        str(ident / "Tony_Blair" / "12.jpg"),
        str(ident / "Laura_Bush" / "1.jpg"),
    )
    assert code == 0
    blair, laura = (json.loads(line) for line in out.splitlines())
    assert blair["faces"][0]["name"] == "Tony_Blair"
    assert laura["faces"][0]["name"] == "unknown"
    # why she is not named: who she came closest to, and how far
    assert laura["faces"][0]["nearest"] in ("Tony_Blair", "Colin_Powell")
    assert laura["faces"][0]["distance"] > 0.45


def test_check_reports_a_fast_dlib_and_models(capsys):
    code, out, _ = run(capsys, "check")
    assert code == 0
    assert "BLAS=yes" in out, out
    assert "dlib_face_recognition_resnet_model_v1.dat" in out
    assert "SLOW" not in out


def test_a_newcomers_command_line(tmp_path, capsys, data, make_gallery):
    """Global flags after the command, plain `livecam`, enroll walking a folder (issue 11)."""
    code, out, _ = run(capsys)
    assert code == 2 and "enroll" in out and "identify" in out  # the commands, not only "a command is required"
    bad = tmp_path / "bad.yaml"
    bad.write_text("matching: {treshold: 1}\n")
    code, _, err = run(capsys, "gallery", "list", "--config", str(bad), "--known-faces", str(tmp_path / "kf"))
    assert code == 2 and "treshold" in err  # --config after the command is read too
    (tmp_path / "known_faces").mkdir()  # an empty gallery (a missing one is refused)
    code, _, err = run(capsys, "identify", "-q", str(data / "identities" / "Tony_Blair" / "1.jpg"))
    assert "livecam: gallery" not in err  # -q after the command is quiet
    folder = tmp_path / "ada"
    folder.mkdir()
    for n in (1, 2):
        shutil.copy(data / "identities" / "Tony_Blair" / f"{n}.jpg", folder / f"{n}.jpg")
    code, out, _ = run(capsys, "enroll", "Ada", str(folder), "--known-faces", str(tmp_path / "kf"))
    assert code == 0 and out.count("accepted") == 2, out


def test_a_missing_gallery_is_one_line_and_exit_2_for_every_command_that_reads_it(tmp_path, data, capsys):
    """`run --known-faces knwon_faces` warned "no enrolled faces" and ran a door that named no one (sending
    unknown events for its own people); `identify --known-faces /nonexistent` exited 0 (issue 17)."""
    clip = str(data / "videos" / "short_hamilton_clip.mp4")
    photo = str(data / "identities" / "Tony_Blair" / "1.jpg")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    (tmp_path / "unknown").mkdir(mode=0o700)
    (tmp_path / "unknown" / "20260101-000000-t1.jpg").write_bytes(
        (data / "identities" / "Tony_Blair" / "2.jpg").read_bytes()
    )
    commands = [
        ["run", "--camera", clip, "--no-window"],
        ["bench", clip],
        ["identify", photo],
        ["calibrate"],
        ["gallery", "list"],
        ["gallery", "remove", "Tony_Blair"],
        ["gallery", "rename", "Tony_Blair", "Anthony_Blair"],
        ["unknown", "promote", "20260101-000000-t1", "Tony_Blair"],
    ]
    for gallery, says in (("knwon_faces", "no such gallery folder"), (str(a_file), "is not a folder")):
        for argv in commands:
            code, out, err = run(capsys, *argv, "--known-faces", gallery)
            assert code == 2 and err.count("\n") == 1 and out == "", (argv, err)
            assert err.startswith(f"livecam: error: {gallery}: {says}") and "Traceback" not in err, (argv, err)
    # the config's known_faces is checked the same way
    config = tmp_path / "door.yaml"
    config.write_text("known_faces: knwon_faces\n")
    code, _, err = run(capsys, "--config", str(config), "identify", photo)
    assert code == 2 and f"{tmp_path / 'knwon_faces'}: no such gallery folder" in err
    assert not (tmp_path / "knwon_faces").exists() and a_file.read_text() == "not a folder\n"
    assert (tmp_path / "unknown" / "20260101-000000-t1.jpg").is_file()  # nothing was promoted anywhere


def test_an_empty_gallery_still_runs_with_a_warning_and_enroll_makes_a_missing_one(tmp_path, data, capsys):
    empty = tmp_path / "known_faces"
    empty.mkdir()
    code, out, err = run(capsys, "identify", str(data / "identities" / "Tony_Blair" / "1.jpg"))
    assert code == 0 and "unknown" in out and "no enrolled faces" in err
    fresh = tmp_path / "new_gallery"
    code, out, _ = run(capsys, "enroll", "Tony_Blair", str(data / "identities" / "Tony_Blair" / "1.jpg"),
                       "--known-faces", str(fresh))  # fmt: skip
    assert code == 0 and (fresh / "Tony_Blair").is_dir()


def test_gallery_without_an_action_lists_the_actions(capsys):
    """It said "the following arguments are required: action, names" (issue 18)."""
    code, _, err = run(capsys, "gallery")
    assert code == 2 and "list | remove NAME | rename OLD NEW" in err and len(err.strip().splitlines()) == 1
