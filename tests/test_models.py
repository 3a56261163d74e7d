"""The model registry: each model's spec is what its engine, the config and the cache use (models.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import photo

from livecam.config import Config, ConfigError, parse_config, resolved
from livecam.engine.batch import EngineSettings
from livecam.engine.images import load_image
from livecam.models import DEFAULT_MODEL, FALLBACK_MODEL, MODELS, spec_of


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_models_engine_gives_embeddings_of_its_spec(data, name):
    engine = EngineSettings(model=name, flip_average=False).build()
    assert engine.spec is MODELS[name]
    faces = engine.faces(load_image(photo(data, "Tony_Blair", 1)))
    assert len(faces) == 1 and faces[0].encoding.shape == (MODELS[name].dimension,)
    assert np.isfinite(faces[0].encoding).all()


def test_a_null_distance_in_the_config_is_the_models_own():
    for name, spec in MODELS.items():
        cfg = resolved(parse_config({"encoding": {"model": name}}))
        assert cfg.matching.threshold == spec.threshold and cfg.matching.margin == spec.margin
        assert cfg.voting.instant_distance == spec.instant_distance
    mine = resolved(parse_config({"encoding": {"model": "facenet"}, "matching": {"threshold": 0.8}}))
    assert mine.matching.threshold == 0.8 and mine.matching.margin == MODELS["facenet"].margin
    assert resolved(Config()).matching.threshold == MODELS[DEFAULT_MODEL].threshold


def test_a_null_model_is_mobilefacenet_where_it_can_run():
    cfg = resolved(Config())
    assert Config().encoding.model is None
    assert cfg.encoding.model == DEFAULT_MODEL == "mobilefacenet"


def test_without_mobilefacenets_weights_a_null_model_is_dlib_said_in_one_line(data, monkeypatch, tmp_path, capsys):
    """A machine set up without MobileFaceNet: `encode` still works, with dlib, and says so once, no traceback."""
    import json

    import livecam.engine.mobilefacenet
    from livecam.cli import main

    monkeypatch.setattr(livecam.engine.mobilefacenet, "installed_weights", lambda: tmp_path / "absent.tflite")
    assert main(["encode", str(photo(data, "Tony_Blair", 1))]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record["model"] == FALLBACK_MODEL == "dlib" and len(record["faces"][0]["encoding"]) == 128
    said = [line for line in err.splitlines() if "mobilefacenet" in line]
    assert len(said) == 1 and "cannot run here (its weights are not installed" in said[0] and "using dlib" in said[0]
    assert "Traceback" not in err
    # chosen explicitly, it is an error naming what is missing (one line, exit 2), not a silent dlib
    assert main(["encode", "--model", "mobilefacenet", str(photo(data, "Tony_Blair", 1))]) == 2
    err = capsys.readouterr().err
    assert "MobileFaceNet weights not found" in err and "Traceback" not in err


def test_an_unknown_model_is_refused():
    with pytest.raises(ConfigError, match="encoding.model must be one of dlib, facenet, fusion"):
        parse_config({"encoding": {"model": "arcface"}})
    with pytest.raises(ValueError, match="unknown model"):
        spec_of("arcface")


def test_every_spec_is_coherent():
    for spec in MODELS.values():
        assert spec.instant_distance < spec.threshold < spec.verify_threshold < spec.same_face_distance
        assert 0 < spec.margin < spec.threshold and 0 < spec.unknown_gap < spec.threshold
        assert spec.threshold < spec.unknown_eager_within and spec.duplicate_distance < spec.instant_distance


def test_a_detector_is_a_registry_line(data, capsys):
    """`--detector mtcnn` (one function in facenet.py, one line in models.DETECTORS) finds the face, with any model."""
    import json

    from livecam.cli import main

    assert main(["encode", "--detector", "mtcnn", str(photo(data, "Tony_Blair", 1))]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["faces"]) == 1 and len(record["faces"][0]["encoding"]) == MODELS[record["model"]].dimension
    with pytest.raises(ConfigError, match="detection.detector must be one of hog, cnn, mtcnn"):
        parse_config({"detection": {"detector": "yolo"}})


class ThumbAligner:
    """A toy model's aligner: the face box, resized to 8x8 grey (stages.Aligner)."""

    def __init__(self, models, models_dir=None):
        pass

    def load(self):
        pass

    def chips(self, rgb, boxes):
        import cv2

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return [cv2.resize(grey[b.top : b.bottom, b.left : b.right], (8, 8)) for b in boxes]


class ThumbEmbedder:
    """...and its embedder (stages.ChipEmbedder): the thumbnail, unit length."""

    def __init__(self, models_dir, models, flip_average=True, jitters=0):
        self.flip_average = flip_average

    def load(self):
        pass

    def with_flip(self, flip_average):
        return ThumbEmbedder(None, None, flip_average)

    def encode_chips(self, chips):
        v = np.array([c.reshape(-1) for c in chips], np.float32).reshape(-1, 64)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)


def test_a_model_is_its_stages_and_one_registry_entry(data, tmp_path, monkeypatch):
    """A new model needs no engine of its own: an aligner, an embedder and a spec (README, "Adding a model")."""
    import dataclasses

    from livecam import models
    from livecam.engine.gallery import load_gallery

    toy = dataclasses.replace(
        MODELS["dlib"],
        name="toy",
        dimension=64,
        aligner="test_models:ThumbAligner",
        embedder="test_models:ThumbEmbedder",
    )
    monkeypatch.setitem(models.MODELS, "toy", toy)
    settings = EngineSettings(model="toy", flip_average=False)
    engine = settings.build().load()
    assert engine.spec is toy and type(engine.embedder).__name__ == "ThumbEmbedder"
    faces = engine.faces(load_image(photo(data, "Tony_Blair", 1)))  # dlib's detector, the toy's chips
    assert len(faces) == 1 and faces[0].encoding.shape == (64,)
    # the gallery, its cache (one per model) and the matcher follow from the spec
    root = tmp_path / "known_faces" / "Tony_Blair"
    root.mkdir(parents=True)
    root.joinpath("1.jpg").write_bytes(photo(data, "Tony_Blair", 1).read_bytes())
    gallery = load_gallery(root.parent, settings, workers=1, engine=engine)
    assert (
        gallery.matcher(toy.threshold, toy.margin).dimension == 64
        and (root.parent / ".livecam-cache-toy.npz").is_file()
    )
