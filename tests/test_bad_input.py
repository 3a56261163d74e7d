"""Issue 5: the generated bad-input corpus through every command - one clear line, no traceback."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
from corpus import make_corpus

from livecam.cli import main
from livecam.engine.batch import EngineSettings
from livecam.engine.gallery import CACHE_NAME, load_gallery


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def test_encode_the_corpus(tmp_path, data, capsys):
    expected = make_corpus(tmp_path / "corpus", data / "identities" / "Tony_Blair" / "1.jpg")
    code, out, err = run(capsys, "encode", "--workers", "2", str(tmp_path / "corpus"))
    assert code == 1  # some inputs failed, the rest were processed
    records = {os.path.basename(r["path"]): r for r in map(json.loads, out.splitlines())}
    assert set(records) == set(expected)  # the folder named x.jpg is not an input
    for name, good in expected.items():
        r = records[name]
        if good:
            assert r["error"] is None and len(r["faces"]) == 1, name
        else:
            assert r["faces"] == [] and name in r["error"] and "\n" not in r["error"], name
            assert r["error"] in err
    assert "60000x60000" in records["bomb.png"]["error"]


def test_gallery_with_the_corpus_and_a_symlink_loop(tmp_path, data, engine, make_gallery):
    root = make_gallery({"Colin_Powell": [1, 2]})
    expected = make_corpus(root / "Tony Blair 😀", data / "identities" / "Tony_Blair" / "1.jpg")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "Tony Blair 😀" / "self").symlink_to(root / "Tony Blair 😀", target_is_directory=True)
    settings = EngineSettings()
    g = load_gallery(root, settings, 1, engine)
    bad = {f"Tony Blair 😀/{n}" for n, good in expected.items() if not good}
    assert bad <= set(g.skipped)
    assert g.counts() == {"Colin_Powell": 2, "Tony Blair 😀": sum(expected.values())}
    # the cache is still right afterwards: a second load encodes nothing and gives the same gallery
    again = load_gallery(root, settings, 1, engine)
    assert again.encoded_now == 0 and np.array_equal(again.encodings, g.encodings)
    assert os.stat(root / CACHE_NAME).st_mode & 0o777 == 0o600


def test_enroll_and_identify_the_corpus(tmp_path, data, capsys):
    corpus = tmp_path / "corpus"
    expected = make_corpus(corpus, data / "identities" / "Tony_Blair" / "1.jpg")
    files = [str(corpus / n) for n in expected] + [str(corpus / "x.jpg")]
    code, out, _ = run(capsys, "enroll", "Tony", *files, "--known-faces", str(tmp_path / "kf"))
    assert code == 0
    lines = out.splitlines()
    for name, good in expected.items():
        line = next(x for x in lines if name in x)
        if not good:
            assert line.startswith("rejected"), line
    assert any(x.startswith("rejected") and "x.jpg" in x and "directory" in x for x in lines)
    code, out, err = run(capsys, "identify", "--known-faces", str(tmp_path / "kf"), *files)
    assert code == 1
    assert sum(1 for x in err.splitlines() if "not a readable image" in x or "not a JPEG, PNG" in x) == 4


def test_run_refuses_non_videos_with_one_line(tmp_path, data, capsys):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, data / "identities" / "Tony_Blair" / "1.jpg")
    (tmp_path / "known_faces").mkdir()  # an empty gallery (a missing one is refused)
    for name in ("text.png", "zero.jpg", "x.jpg"):
        code, _, err = run(capsys, "run", "--camera", str(corpus / name), "--no-window")
        assert code == 2 and err.count("\n") == 1 and name in err, (name, err)


def test_config_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "kf").mkdir()  # an empty gallery (a missing one is refused)
    for text in ("", "[1, 2", "matching: {threshold: 'x'}", "live: {detect_every: 0}", "\x00\x01"):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(text)
        code, _, err = run(capsys, "--config", str(cfg), "gallery", "list", "--known-faces", str(tmp_path / "kf"))
        if text == "":
            assert code == 0
        else:
            assert code == 2 and err.count("\n") == 1 and str(cfg) in err, (text, err)
    shutil.rmtree(tmp_path / "kf", ignore_errors=True)
