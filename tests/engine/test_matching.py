from __future__ import annotations

import math

import numpy as np

from livecam.engine.batch import EngineSettings
from livecam.engine.gallery import load_gallery
from livecam.engine.images import load_image
from livecam.engine.matching import DEFAULT_MARGIN, DEFAULT_THRESHOLD, Matcher


def brute_force(queries, encodings, labels, n_people):
    d = np.linalg.norm(queries[:, None, :] - encodings[None, :, :], axis=2)
    return np.stack([d[:, labels == p].min(axis=1) for p in range(n_people)], axis=1)


def test_vectorized_distances_equal_brute_force():
    rng = np.random.default_rng(1)
    enc = rng.normal(0, 0.1, (300, 128)).astype(np.float32)
    labels = rng.integers(0, 17, 300)
    labels[:17] = np.arange(17)  # every person present
    m = Matcher(enc, labels, [f"p{i}" for i in range(17)])
    q = rng.normal(0, 0.1, (5, 128)).astype(np.float32)
    assert np.allclose(m.person_distances(q), brute_force(q, enc, labels, 17), atol=1e-4)


def test_empty_gallery_is_unknown():
    m = Matcher(np.zeros((0, 128)), np.zeros(0), [])
    match = m.match_one(np.zeros(128))
    assert match.name is None and math.isinf(match.distance)


def test_known_people_named_strangers_not(make_gallery, engine, data):
    root = make_gallery({"George_W_Bush": [1, 2, 3], "Colin_Powell": [1, 2, 3], "Tony_Blair": [1, 2, 3]})
    g = load_gallery(root, EngineSettings(), 1, engine)
    m = g.matcher(DEFAULT_THRESHOLD, DEFAULT_MARGIN)

    def who(person, n):
        face = engine.faces(load_image(data / "identities" / person / f"{n}.jpg"))[0]
        return m.match_one(face.encoding)

    for person in ("George_W_Bush", "Colin_Powell", "Tony_Blair"):
        match = who(person, 10)  # a photo not in the gallery
        assert match.name == person and match.distance <= DEFAULT_THRESHOLD and match.margin >= DEFAULT_MARGIN
    for stranger in ("Serena_Williams", "Hugo_Chavez", "Laura_Bush"):
        match = who(stranger, 1)
        assert match.name is None and match.nearest is not None and match.distance > DEFAULT_THRESHOLD


def test_margin_rule_refuses_a_face_between_two_people():
    a = np.zeros(128, np.float32)
    b = np.zeros(128, np.float32)
    b[0] = 0.1
    m = Matcher(np.stack([a, b]), np.array([0, 1]), ["A", "B"], threshold=0.5, margin=0.04)
    middle = np.zeros(128, np.float32)
    middle[0] = 0.05  # equally close to both
    assert m.match_one(middle).name is None
    assert m.match_one(middle).nearest in ("A", "B")
    assert m.match_one(a).name == "A"
