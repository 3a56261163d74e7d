from __future__ import annotations

import logging
import os
import shutil
import stat

import numpy as np
import pytest

from livecam.batch import EngineSettings
from livecam.gallery import CACHE_NAME, load_gallery, read_cache, scan_photos

SETTINGS = EngineSettings()
PEOPLE = {"George_W_Bush": [1, 2], "Colin_Powell": [1, 2], "Serena_Williams": [1]}


def load(root, engine, **kw):
    return load_gallery(root, SETTINGS, workers=1, engine=engine, **kw)


def test_builds_labels_and_a_private_cache(make_gallery, engine):
    root = make_gallery(PEOPLE)
    g = load(root, engine)
    assert g.names == ["Colin_Powell", "George_W_Bush", "Serena_Williams"]
    assert g.counts() == {"Colin_Powell": 2, "George_W_Bush": 2, "Serena_Williams": 1}
    assert g.encodings.shape == (5, 128) and g.encoded_now == 5
    cache = root / CACHE_NAME
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    # the cache loads without pickle
    with np.load(cache, allow_pickle=False) as npz:
        assert npz["encodings"].shape == (5, 128)


def test_second_load_encodes_nothing_and_matches(make_gallery, engine):
    root = make_gallery(PEOPLE)
    first = load(root, engine)
    second = load(root, engine)
    assert second.encoded_now == 0
    assert np.array_equal(first.encodings, second.encodings)
    assert first.photos == second.photos


def test_only_new_or_changed_photos_are_encoded(make_gallery, engine, data):
    root = make_gallery(PEOPLE)
    load(root, engine)
    make_gallery({"Tony_Blair": [1]}, root)  # new person
    shutil.copy(data / "identities" / "George_W_Bush" / "3.jpg", root / "George_W_Bush" / "1.jpg")  # changed
    (root / "Colin_Powell" / "2.jpg").unlink()  # removed
    g = load(root, engine)
    assert g.encoded_now == 2
    assert g.counts() == {"Colin_Powell": 1, "George_W_Bush": 2, "Serena_Williams": 1, "Tony_Blair": 1}
    assert set(read_cache(root / CACHE_NAME, SETTINGS)) == set(g.photos)


def test_photo_without_a_face_is_skipped_with_a_warning(make_gallery, engine, data, caplog):
    root = make_gallery(PEOPLE)
    shutil.copy(data / "negatives" / "skimage_coffee.png", root / "Serena_Williams" / "coffee.png")
    (root / "Serena_Williams" / "broken.jpg").write_bytes(b"not a jpeg")
    with caplog.at_level(logging.WARNING):
        g = load(root, engine)
    assert "Serena_Williams/coffee.png" in g.skipped and "no face" in g.skipped["Serena_Williams/coffee.png"]
    assert "Serena_Williams/broken.jpg" in g.skipped
    assert any("coffee.png" in r.message and "no face" in r.message for r in caplog.records)
    assert g.counts()["Serena_Williams"] == 1
    # skipped photos are remembered: no re-encoding, no repeated warning
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = load(root, engine)
    assert again.encoded_now == 0 and not caplog.records


def test_group_photo_without_a_dominant_face_is_skipped(make_gallery, engine, data):
    root = make_gallery(PEOPLE)
    shutil.copy(data / "groups" / "2007_007763.jpg", root / "Colin_Powell" / "group.jpg")
    g = load(root, engine)
    assert "faces and none clearly the largest" in g.skipped["Colin_Powell/group.jpg"]


def test_single_file_per_person_layout(tmp_path, data, engine):
    root = tmp_path / "kf"
    root.mkdir()
    shutil.copy(data / "identities" / "Tony_Blair" / "1.jpg", root / "Tony_Blair.jpg")
    (root / "notes.txt").write_text("ignored")
    os.mkdir(root / "x.jpg")  # a folder with an image name is a person folder, not a photo
    g = load(root, engine)
    assert g.names == ["Tony_Blair"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "edit"])
def test_damaged_cache_is_detected_and_rebuilt(make_gallery, engine, caplog, damage):
    root = make_gallery(PEOPLE)
    good = load(root, engine)
    cache = root / CACHE_NAME
    raw = cache.read_bytes()
    if damage == "truncate":
        cache.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        cache.write_bytes(os.urandom(2000))
    else:  # a valid npz whose encodings were altered: only the checksum can tell
        with np.load(cache, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["encodings"] = arrays["encodings"] + 0.01
        np.savez(cache, **arrays)
    with caplog.at_level(logging.WARNING):
        rebuilt = load(root, engine)
    assert any("rebuilding" in r.message for r in caplog.records)
    assert rebuilt.encoded_now == 5
    assert np.allclose(rebuilt.encodings, good.encodings, atol=1e-6)


def test_scan_skips_hidden_and_symlinked_folders(tmp_path, make_gallery):
    root = make_gallery({"Tony_Blair": [1]})
    (root / ".trash").mkdir()
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert [p.relpath for p in scan_photos(root)] == ["Tony_Blair/1.jpg"]


def test_missing_folder_is_an_empty_gallery(tmp_path, engine):
    g = load(tmp_path / "nothing", engine)
    assert len(g) == 0 and g.names == []
