"""The second embedder, FaceNet through OpenCV DNN, through every command that encodes (issue 11)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import photo

from livecam.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_encode_with_facenet_gives_unit_512d_encodings_named_by_model(data, capsys):
    code, out, _ = run(capsys, "encode", "--model", "facenet", str(photo(data, "Tony_Blair", 1)))
    record = json.loads(out)
    assert code == 0 and record["model"] == "facenet" and len(record["faces"]) == 1
    encoding = np.array(record["faces"][0]["encoding"])
    assert encoding.shape == (512,) and abs(np.linalg.norm(encoding) - 1) < 1e-3


def test_facenet_verifies_lfw_style_pairs(data):
    """Same and different LFW people, each pair through the FaceNet engine: its own threshold separates them."""
    from livecam.engine.batch import EngineSettings
    from livecam.engine.images import load_image
    from livecam.models import FACENET

    engine = EngineSettings(model="facenet", flip_average=False).build()
    people = ["Tony_Blair", "George_W_Bush", "Colin_Powell", "Serena_Williams", "Gerhard_Schroeder"]
    enc = {(p, n): engine.faces(load_image(photo(data, p, n)))[0].encoding for p in people for n in (1, 2, 3)}
    same = [np.linalg.norm(enc[p, a] - enc[p, b]) for p in people for a, b in ((1, 2), (1, 3), (2, 3))]
    different = [np.linalg.norm(enc[p, 1] - enc[q, 1]) for p in people for q in people if p < q]
    # no false accept, most of the same people accepted (about 80 % at this threshold on the tune half)
    assert min(different) > FACENET.verify_threshold, sorted(different)
    assert sum(d <= FACENET.verify_threshold for d in same) >= 0.6 * len(same), sorted(same)


def test_identify_and_run_with_facenet(tmp_path, data, make_gallery, capsys):
    kf = make_gallery({"Tony_Blair": [1, 2, 3], "George_W_Bush": [1, 2, 3]})
    tony = [str(photo(data, "Tony_Blair", n)) for n in range(4, 12)]
    colin = [str(photo(data, "Colin_Powell", n)) for n in range(1, 5)]
    code, out, _ = run(capsys, "identify", "--model", "facenet", "--known-faces", str(kf), "--json", *tony, *colin)
    names = [[f["name"] for f in json.loads(line)["faces"]] for line in out.splitlines()]
    assert all(n in (["Tony_Blair"], ["unknown"]) for n in names[:8]) and names[:8].count(["Tony_Blair"]) >= 5, names
    assert names[8:] == [["unknown"]] * 4, names  # a stranger is never named
    assert (kf / ".livecam-cache-facenet.npz").is_file()  # its own cache beside dlib's
    lin = tmp_path / "lin"
    shutil.copytree(data / "identities_extra" / "Lin_Manuel_Miranda", lin / "Lin_Manuel_Miranda")
    log = tmp_path / "run.jsonl"
    clip = str(data / "videos" / "short_hamilton_clip.mp4")
    args = ["run", "--model", "facenet", "--camera", clip, "--no-window", "--known-faces", str(lin)]
    code, _, _ = run(capsys, *args, "--log-json", str(log))
    assert code == 0
    records = [json.loads(x) for x in log.read_text().splitlines()]
    named = [r["frame"] for r in records for f in r["faces"] if f["name"] == "Lin_Manuel_Miranda"]
    assert named  # from one enrollment photo: 0.83 from it, after 4 encodings (dlib: 0.44)
    assert not [
        r["frame"] for r in records if r["frame"] >= 211 and any(f["name"] == "Lin_Manuel_Miranda" for f in r["faces"])
    ]


@pytest.mark.parametrize("model", ["dlib", "facenet"])
def test_verify_uses_the_models_own_threshold(data, capsys, model):
    from livecam.models import MODELS

    code, out, _ = run(
        capsys, "verify", "--model", model, str(photo(data, "Tony_Blair", 1)), str(photo(data, "Colin_Powell", 1))
    )
    assert code == 1 and "different" in out and f"threshold {MODELS[model].verify_threshold}" in out, out


def test_fusion_is_one_more_model(tmp_path, data, make_gallery, capsys):
    """dlib and FaceNet side by side, each scaled by its own threshold: 640 floats, and a face at both
    models' thresholds is at sqrt(2)."""
    from livecam.engine.batch import EngineSettings
    from livecam.engine.images import load_image
    from livecam.models import DLIB, FACENET

    rgb = [load_image(photo(data, "Tony_Blair", n)) for n in (1, 2)]
    fused, dlib, facenet = (EngineSettings(model=m, flip_average=False).build() for m in ("fusion", "dlib", "facenet"))
    f = [fused.faces(x)[0].encoding for x in rgb]
    d = [dlib.encode(x, [fused.faces(x)[0].box]) for x in rgb]
    n = [facenet.encode(x, [fused.faces(x)[0].box]) for x in rgb]
    assert f[0].shape == (640,)
    expected = np.hypot(np.linalg.norm(d[0] - d[1]) / DLIB.threshold, np.linalg.norm(n[0] - n[1]) / FACENET.threshold)
    assert abs(np.linalg.norm(f[0] - f[1]) - expected) < 1e-3
    kf = make_gallery({"Tony_Blair": [1, 2, 3], "George_W_Bush": [1, 2, 3]})
    code, out, _ = run(
        capsys, "identify", "--model", "fusion", "--known-faces", str(kf), "--json",
        str(photo(data, "Tony_Blair", 6)), str(photo(data, "Colin_Powell", 2)),
    )  # fmt: skip
    names = [[x["name"] for x in json.loads(line)["faces"]] for line in out.splitlines()]
    assert names[1] == ["unknown"] and names[0] in (["Tony_Blair"], ["unknown"]), names


@pytest.fixture
def broken_facenet(tmp_path):
    """A config whose models/ holds a damaged FaceNet graph: one repeated byte, which OpenCV's reader
    took for an empty graph and crashed on (SIGSEGV)."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "facenet.pb").write_bytes(b"x" * 1000)
    config = tmp_path / "broken.yaml"
    config.write_text(f"models_dir: {models}\n")
    return config


def test_a_model_that_cannot_load_is_one_line_and_exit_2(data, capsys, broken_facenet):
    """encode and verify gave an AttributeError traceback when OpenCV could not read the graph (issue 17)."""
    tony = str(photo(data, "Tony_Blair", 1))
    for argv in (["encode", tony], ["verify", tony, tony]):
        code, out, err = run(capsys, *argv, "--model", "facenet", "--config", str(broken_facenet))
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "facenet.pb" in lines[0] and "cannot load" in lines[0], err


def test_run_with_a_model_that_cannot_load_is_one_line_and_exit_2(data, tmp_path, broken_facenet):
    import subprocess
    import sys

    clip = data / "videos" / "short_hamilton_clip.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "livecam",
            "run",
            "--camera",
            str(clip),
            "--no-window",
            "--model",
            "fusion",
            "--config",
            str(broken_facenet),
            "--known-faces",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "facenet.pb" in proc.stderr and "cannot load" in proc.stderr


def test_facenet_without_opencvs_tensorflow_reader_is_a_model_error(monkeypatch):
    """opencv-python 5.1 has no cv2.dnn.readNetFromTensorflow: one line saying so, not an AttributeError."""
    import cv2

    from livecam.engine.facenet import FaceNetEmbedder
    from livecam.engine.faces import ModelLoadError

    monkeypatch.delattr(cv2.dnn, "readNetFromTensorflow")
    with pytest.raises(ModelLoadError, match="readNetFromTensorflow") as err:
        FaceNetEmbedder().load()
    assert "\n" not in str(err.value)


def test_the_graph_check_accepts_the_shipped_graph_and_refuses_damaged_ones(tmp_path):
    from livecam.engine.facenet import find_graph, graphdef_problem

    graph = find_graph(None)
    assert graphdef_problem(graph) is None
    truncated = tmp_path / "truncated.pb"
    truncated.write_bytes(graph.read_bytes()[:1_000_000])
    assert graphdef_problem(truncated) == "truncated"
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    assert graphdef_problem(empty) == "no nodes"


def test_obamas_portrait_is_one_face_for_facenet(data, capsys):
    """MTCNN also found a dark corner of this photo (box [990, 841, 1068, 776], confidence 0.91) (issue 17)."""
    obama = data / "identities_extra" / "Barack_Obama" / "1.jpg"
    code, out, _ = run(capsys, "encode", "--model", "facenet", str(obama))
    faces = json.loads(out)["faces"]
    assert code == 0 and len(faces) == 1 and faces[0]["box"] == [84, 615, 430, 372]


def test_likely_faces_rule():
    """Faces other than the largest need 0.95; the largest (a photo's subject) 0.90."""
    from livecam.engine.facenet import MTCNN_MIN_CONFIDENCE, MTCNN_SUBJECT_CONFIDENCE, likely_faces
    from livecam.engine.faces import Box

    big, small, tiny = Box(0, 100, 100, 0), Box(0, 50, 50, 0), Box(0, 20, 20, 0)
    assert likely_faces([(small, 0.99), (big, 0.92)]) == [(big, 0.92), (small, 0.99)]
    assert likely_faces([(big, 0.99), (small, 0.94), (tiny, 0.96)]) == [(big, 0.99), (tiny, 0.96)]
    assert likely_faces([(big, MTCNN_SUBJECT_CONFIDENCE - 0.01)]) == []
    assert likely_faces([(big, 0.99), (small, MTCNN_MIN_CONFIDENCE)]) == [(big, 0.99), (small, MTCNN_MIN_CONFIDENCE)]
