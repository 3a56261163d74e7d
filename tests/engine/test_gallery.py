from __future__ import annotations

import logging
import os
import shutil
import stat

import numpy as np
import pytest

from livecam.engine.batch import EngineSettings
from livecam.engine.gallery import CACHE_NAME, load_gallery, read_cache, scan_photos

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


# --- the cache is sealed, and read as the untrusted file it is (issue 10) ---


def _members(cache) -> dict:
    with np.load(cache, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _reseal(cache, arrays: dict) -> None:
    """Write `arrays` as a cache sealed with the current key: what livecam itself would trust."""
    from livecam.engine.gallery import _mac
    from livecam.state import cache_key

    arrays = {k: v for k, v in arrays.items() if k != "mac"}
    arrays["mac"] = np.array(_mac(cache_key(), cache.parent, arrays))
    np.savez(cache, **arrays)


def test_a_cache_written_with_another_key_is_not_trusted(make_gallery, engine, monkeypatch, tmp_path, caplog):
    """Someone who can write into known_faces/ swaps George's and Tony's encodings and seals the
    cache with a key of his own (the old SHA-256 checksum anyone could recompute): George's photos
    then matched Tony_Blair. The key lives outside the gallery, so the forgery does not verify."""
    from livecam.engine.gallery import write_cache

    root = make_gallery({"George_W_Bush": [1, 2], "Tony_Blair": [1, 2]})
    good = load(root, engine)
    cache = root / CACHE_NAME
    entries = read_cache(cache, SETTINGS)
    swapped = dict(entries)
    for g, t in (("George_W_Bush/1.jpg", "Tony_Blair/1.jpg"), ("George_W_Bush/2.jpg", "Tony_Blair/2.jpg")):
        swapped[g], swapped[t] = (
            type(entries[g])(entries[g].stamp, entries[t].encoding, ""),
            type(entries[t])(entries[t].stamp, entries[g].encoding, ""),
        )
    with monkeypatch.context() as m:
        m.setenv("XDG_STATE_HOME", str(tmp_path / "attacker-state"))
        write_cache(cache, swapped, SETTINGS)
    with caplog.at_level(logging.WARNING):
        g = load(root, engine)
    assert "not sealed by this livecam" in caplog.text and g.encoded_now == 4
    assert np.allclose(g.encodings, good.encodings, atol=1e-6)


def test_a_cache_copied_from_another_gallery_is_not_trusted(make_gallery, engine, tmp_path, caplog):
    root = make_gallery({"George_W_Bush": [1, 2]})
    load(root, engine)
    other = make_gallery({"George_W_Bush": [1, 2]}, root=tmp_path / "other")
    shutil.copy(root / CACHE_NAME, other / CACHE_NAME)
    with caplog.at_level(logging.WARNING):
        assert load(other, engine).encoded_now == 2
    assert "not sealed by this livecam" in caplog.text


@pytest.mark.parametrize(
    "damage",
    ["short-mtimes", "nan-mtimes", "nan-encodings", "2d-paths", "object-array"],
)
def test_a_sealed_cache_with_bad_arrays_is_rebuilt_not_a_crash(make_gallery, engine, caplog, damage):
    """Even sealed (a bug, an old version), arrays are checked: a short array or a NaN mtime crashed every command."""
    root = make_gallery({"George_W_Bush": [1, 2]})
    good = load(root, engine)
    cache = root / CACHE_NAME
    arrays = _members(cache)
    if damage == "short-mtimes":
        arrays["mtimes"] = arrays["mtimes"][:1]
    elif damage == "nan-mtimes":
        arrays["mtimes"] = np.array([np.nan, np.nan])
    elif damage == "nan-encodings":
        arrays["encodings"][0, 0] = np.nan
    elif damage == "2d-paths":
        arrays["paths"] = arrays["paths"].reshape(1, 2)
    else:
        arrays["sizes"] = np.array([1, 2], dtype=object)
    if damage == "object-array":
        np.savez(cache, **{k: v for k, v in arrays.items()})  # cannot be sealed: savez pickles it
    else:
        _reseal(cache, arrays)
    with caplog.at_level(logging.WARNING):
        g = load(root, engine)
    assert "gallery cache not used" in caplog.text and g.encoded_now == 2
    assert np.allclose(g.encodings, good.encodings, atol=1e-6)


def test_a_compressed_cache_is_refused_before_inflating(make_gallery, engine, caplog):
    import resource

    root = make_gallery({"George_W_Bush": [1]})
    load(root, engine)
    cache = root / CACHE_NAME
    arrays = _members(cache)
    arrays["reasons"] = np.zeros(100_000_000, np.uint8)  # 100 MB of zeros in a few hundred KB
    np.savez_compressed(cache, **arrays)
    assert cache.stat().st_size < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with caplog.at_level(logging.WARNING):
        assert read_cache(cache, SETTINGS) == {}
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KB
    assert "compressed or oversized" in caplog.text


def test_a_fifo_or_a_symlink_named_like_the_cache_is_not_read(make_gallery, engine, tmp_path):
    import threading

    root = make_gallery({"George_W_Bush": [1]})
    cache = root / CACHE_NAME
    os.mkfifo(cache)
    done = threading.Event()
    result = {}
    threading.Thread(target=lambda: (result.update(g=load(root, engine)), done.set()), daemon=True).start()
    assert done.wait(30), "a FIFO named like the cache hung the gallery load"
    assert result["g"].encoded_now == 1 and stat.S_ISREG(os.lstat(cache).st_mode)  # replaced by a real cache
    outside = tmp_path / "outside.npz"
    shutil.copy(cache, outside)
    cache.unlink()
    cache.symlink_to(outside)
    assert load(root, engine).encoded_now == 1  # not followed
    assert not cache.is_symlink()


def test_the_key_is_private_and_outside_the_gallery(make_gallery, engine):
    from livecam.state import KEY_NAME, state_dir

    root = make_gallery({"George_W_Bush": [1]})
    load(root, engine)
    key = state_dir() / KEY_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(state_dir().stat().st_mode) == 0o700
    assert root not in key.parents and os.environ["XDG_STATE_HOME"] in str(key)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=2000))
def test_property_any_bytes_as_a_cache_give_no_entries_and_no_exception(tmp_path, blob):
    cache = tmp_path / CACHE_NAME
    cache.write_bytes(blob)
    assert read_cache(cache, SETTINGS) == {}


_any_array = hnp.arrays(
    st.sampled_from([np.int64, np.float32, np.float64, np.dtype("<U8"), np.uint8]),
    hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    replaced=st.dictionaries(
        st.sampled_from(["paths", "sizes", "mtimes", "inodes", "ctimes", "encodings", "reasons"]), _any_array
    )
)
def test_property_a_sealed_cache_with_any_arrays_gives_valid_entries_or_none(tmp_path, replaced):
    from livecam.engine.gallery import Stamp, _CacheEntry, write_cache

    cache = tmp_path / CACHE_NAME
    write_cache(cache, {"A/1.jpg": _CacheEntry(Stamp(10, 20, 30, 40), np.ones(128, np.float32), "")}, SETTINGS)
    arrays = _members(cache)
    arrays.update(replaced)
    _reseal(cache, arrays)
    entries = read_cache(cache, SETTINGS)
    for entry in entries.values():
        assert entry.encoding is None or (entry.encoding.shape == (128,) and np.isfinite(entry.encoding).all())


def test_doors_sharing_one_gallery_folder_each_keep_their_own_cache(tmp_path, data, make_gallery):
    """Two doors (each with its own livecam key) and one shared gallery: with cache_dir, neither
    writes into the gallery, and neither re-encodes at its next start."""
    import subprocess
    import sys

    root = make_gallery({"Tony_Blair": [1, 2], "George_W_Bush": [1]})
    probe = data / "identities" / "Tony_Blair" / "3.jpg"
    for door in ("front", "back"):
        (tmp_path / door).mkdir()
        (tmp_path / door / "config.yaml").write_text(f"known_faces: {root}\ncache_dir: cache\n")

    def identify(door: str) -> str:
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / door / "state")}
        cfg = str(tmp_path / door / "config.yaml")
        proc = subprocess.run(
            [sys.executable, "-m", "livecam", "--config", cfg, "identify", str(probe)],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        assert "Tony_Blair" in proc.stdout
        return proc.stderr

    assert "encoding 3 new or changed" in identify("front")
    assert "encoding 3 new or changed" in identify("back")
    assert "new or changed" not in identify("front") and "new or changed" not in identify("back")
    assert not [p for p in root.iterdir() if p.name.startswith(".livecam-cache")]
    for door in ("front", "back"):
        cache = tmp_path / door / "cache"
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and len(list(cache.glob(".livecam-cache-*.npz"))) == 1


def test_a_models_new_revision_rebuilds_its_caches_and_only_its_own():
    """FaceNet's crop changed (revision 2): its caches and fusion's are rebuilt, dlib's are kept as they are."""
    from livecam.engine.gallery import _settings_tag

    assert _settings_tag(EngineSettings(model="dlib")) == "dlib/hog/1/2/True/0/True"  # as written by earlier versions
    assert _settings_tag(EngineSettings(model="facenet")).startswith("facenet.r2/")
    assert _settings_tag(EngineSettings(model="fusion")).startswith("fusion.r2/")


# --- a gallery holds only the person it names (issue 17) ---

STRANGER, PERSON = "Tony_Blair", "Bill_Clinton"
# the stranger's photos put in Bill's folder, and the (smaller) real photos of Bill that replace them
SWAPS = {"1.jpg": (1, 19), "2.jpg": (2, 25)}


def _plant_stranger(tmp_path, data) -> tuple:
    root = tmp_path / "known_faces"
    (root / PERSON).mkdir(parents=True)
    for name, (stranger_n, _) in SWAPS.items():
        shutil.copy(data / "identities" / STRANGER / f"{stranger_n}.jpg", root / PERSON / name)
    return root, root / PERSON


def _forge(path, real, in_place: bool) -> None:
    """Put the photo `real` in place of `path`, padded to its size (decoders ignore bytes after a JPEG's
    end), its mtime restored: size and mtime are as before; only the ctime (and, replaced, the inode) tell."""
    before = path.stat()
    data = real.read_bytes()
    assert len(data) <= before.st_size
    data += b"\0" * (before.st_size - len(data))
    if in_place:
        path.write_bytes(data)  # the same inode
    else:
        swap = path.with_name(".swap.jpg")
        swap.write_bytes(data)
        os.replace(swap, path)  # another inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def _forge_all(folder, data) -> None:
    for i, (name, (_, real_n)) in enumerate(SWAPS.items()):
        _forge(folder / name, data / "identities" / PERSON / f"{real_n}.jpg", in_place=i == 0)


def _name_of(matcher, engine, path) -> str | None:
    from livecam.engine.batch import encode_path

    face = encode_path(engine, SETTINGS, path).faces[0]
    return matcher.match(face.encoding[None, :])[0].name


def test_a_stranger_swapped_for_the_person_with_size_and_mtime_forged_is_encoded_again(tmp_path, data, engine):
    """A stranger's photos in Bill_Clinton/, encoded, then each swapped for a real photo of Bill padded to the
    same size with its mtime restored: keyed on (path, size, mtime), the cache went on naming the stranger
    Bill_Clinton, and listed Bill's photos. The ctime and inode of each photo are in its key now."""
    root, folder = _plant_stranger(tmp_path, data)
    probe = data / "identities" / STRANGER / "3.jpg"  # the stranger, in a photo never enrolled
    planted = load(root, engine)
    assert planted.encoded_now == 2 and _name_of(planted.matcher(0.45, 0.04), engine, probe) == PERSON
    _forge_all(folder, data)
    g = load(root, engine)
    assert g.encoded_now == 2
    assert _name_of(g.matcher(0.45, 0.04), engine, probe) is None
    clean = tmp_path / "clean" / PERSON  # Bill's own photos, encoded from scratch
    clean.mkdir(parents=True)
    for name, (_, real_n) in SWAPS.items():
        shutil.copy(data / "identities" / PERSON / f"{real_n}.jpg", clean / name)
    assert np.allclose(g.encodings, load(clean.parent, engine).encodings, atol=1e-6)
    assert load(root, engine).encoded_now == 0  # and then cached as ever


def test_renaming_a_persons_folder_keeps_their_cached_encodings(make_gallery, engine):
    """A folder renamed whole keeps its photos' inodes and ctimes: `gallery rename` encodes nothing again."""
    from livecam.cli import main

    root = make_gallery({"Tony_Blair": [1, 2], "George_W_Bush": [1]})
    load(root, engine)
    assert main(["gallery", "rename", "Tony_Blair", "Anthony_Blair", "--known-faces", str(root)]) == 0
    g = load(root, engine)
    assert g.encoded_now == 0 and g.counts() == {"Anthony_Blair": 2, "George_W_Bush": 1}


def test_a_cache_of_the_previous_version_is_rebuilt_once_with_one_line(make_gallery, engine, caplog):
    root = make_gallery({"George_W_Bush": [1, 2]})
    load(root, engine)
    cache = root / CACHE_NAME
    arrays = _members(cache)
    del arrays["inodes"], arrays["ctimes"]  # what livecam wrote before photos had a Stamp
    arrays["version"] = np.array(2)
    _reseal(cache, arrays)
    with caplog.at_level(logging.INFO):
        assert load(root, engine).encoded_now == 2
    lines = [r.message for r in caplog.records if "earlier livecam" in r.message]
    assert len(lines) == 1 and str(cache) in lines[0] and "re-encoding the gallery once" in lines[0], caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert load(root, engine).encoded_now == 0
    assert "earlier livecam" not in caplog.text


def test_a_cache_sealed_with_another_key_is_announced_once_naming_it(
    make_gallery, engine, monkeypatch, tmp_path, caplog
):
    """A state folder without a key yet (an operator's first command) rebuilt the service's cache silently;
    a foreign cache the loader meets again (it could not replace it) is not announced at every reload."""
    root = make_gallery({"George_W_Bush": [1, 2]})
    cache = root / CACHE_NAME
    with monkeypatch.context() as m:
        m.setenv("XDG_STATE_HOME", str(tmp_path / "service-state"))
        load(root, engine)
    with monkeypatch.context() as m:
        m.setenv("XDG_STATE_HOME", str(tmp_path / "operator-state"))  # no key there yet
        with caplog.at_level(logging.WARNING):
            assert load(root, engine).encoded_now == 2
    lines = [r.message for r in caplog.records if "not sealed" in r.message]
    assert len(lines) == 1 and lines[0].startswith(f"{cache}: ") and "operator-state" in lines[0], caplog.text
    # the same foreign cache read again (say by the watcher, the cache not writable): no second line
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert read_cache(cache, SETTINGS) == {} and read_cache(cache, SETTINGS) == {}
    assert caplog.text.count("not sealed") == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert read_cache(cache, SETTINGS) == {}
    assert "not sealed" not in caplog.text
