from __future__ import annotations

import numpy as np
import pytest
from conftest import photo

from livecam.engine.faces import Box, FaceEngine, ModelNotFoundError, face_distance, find_model
from livecam.engine.images import load_image


def test_finds_one_face_per_lfw_portrait(data, engine):
    for person in ("George_W_Bush", "Serena_Williams", "Junichiro_Koizumi"):
        rgb = load_image(photo(data, person, 1))
        faces = engine.faces(rgb)
        assert len(faces) >= 1, person
        face = faces[0]
        # LFW portraits are centred 250x250 crops: the subject's face is near the middle
        cx, cy = face.box.center
        assert 90 < cx < 160 and 90 < cy < 160, (person, face.box)
        assert face.encoding.shape == (128,) and face.encoding.dtype == np.float32


def test_same_person_closer_than_different_people(data, engine):
    def enc(person, n):
        return engine.faces(load_image(photo(data, person, n)))[0].encoding

    bush = [enc("George_W_Bush", n) for n in (1, 2, 3)]
    others = [enc(p, 1) for p in ("Colin_Powell", "Tony_Blair", "Hugo_Chavez")]
    same = [face_distance(bush[i], bush[j]) for i in range(3) for j in range(i + 1, 3)]
    different = [face_distance(b, o) for b in bush for o in others]
    assert max(same) < 0.5 < min(different)


def test_no_face_in_photos_without_people(data, engine):
    for name in ("skimage_coffee.png", "skimage_brick.png", "dlib_horses.jpg"):
        assert engine.faces(load_image(data / "negatives" / name)) == [], name


def test_group_photo_yields_every_face_largest_first(data, engine):
    rgb = load_image(data / "groups" / "2007_007763.jpg")
    faces = engine.faces(rgb)
    assert len(faces) >= 6  # 7 annotated; HOG at upsample 1 finds 7 per labels.csv
    areas = [f.box.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    h, w = rgb.shape[:2]
    assert all(0 <= f.box.left < f.box.right <= w and 0 <= f.box.top < f.box.bottom <= h for f in faces)


def test_flip_averaging_changes_little_but_something(data):
    rgb = load_image(photo(data, "Tony_Blair", 2))
    plain = FaceEngine(flip_average=False)
    flipped = FaceEngine(flip_average=True)
    box = plain.detect(rgb, 1)[0]
    a, b = plain.encode(rgb, [box])[0], flipped.encode(rgb, [box])[0]
    assert 0 < face_distance(a, b) < 0.2
    # the mirror chip alone gives a different vector; the average lies between
    chip = plain.chips(rgb, [box])[0]
    mirror = plain.encode_chips([np.ascontiguousarray(chip[:, ::-1])])[0]
    assert np.allclose(b, (a + mirror) / 2, atol=1e-5)


def test_try_harder_finds_small_faces(data, engine):
    # a portrait shrunk so the face is ~40 px: invisible to HOG at upsample 0
    import cv2

    rgb = load_image(photo(data, "Tony_Blair", 1))
    small = cv2.resize(rgb, (90, 90), interpolation=cv2.INTER_AREA)
    assert engine.detect(small, 0) == []
    boxes = engine.detect_still(small, upsample=0, max_upsample=2)
    assert len(boxes) == 1


def test_missing_model_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "face_recognition_models", None)
    with pytest.raises(ModelNotFoundError) as err:
        find_model("resnet", tmp_path)
    assert "dlib_face_recognition_resnet_model_v1.dat" in str(err.value)
    assert "pip install face-recognition-models" in str(err.value)
    assert "\n" not in str(err.value)


def test_models_dir_overrides_the_package(tmp_path):
    (tmp_path / "shape_predictor_5_face_landmarks.dat").write_bytes(b"x")
    assert find_model("shape5", tmp_path) == tmp_path / "shape_predictor_5_face_landmarks.dat"
    assert find_model("resnet", tmp_path).parent.name == "models"  # falls back to the package


def test_models_are_not_loaded_at_import():
    import livecam.engine.faces as faces

    engine = faces.FaceEngine()
    assert "_net" not in engine.__dict__ and "_hog" not in engine.__dict__


def test_box_helpers():
    b = Box(10, 50, 40, 20)
    assert (b.width, b.height, b.area) == (30, 30, 900)
    assert b.scaled(2) == Box(20, 100, 80, 40)
    assert b.clipped(30, 45) == Box(10, 45, 30, 20)
    assert b.as_list() == [10, 50, 40, 20]
