"""`livecam check` runs each configured model once on its built-in face (issue 17)."""

from __future__ import annotations

import pytest

from livecam.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize("model", ["dlib", "fusion"])
def test_check_runs_the_configured_model_on_a_face(capsys, model):
    code, out, _ = run(capsys, "check", "--model", model)
    assert code == 0, out
    dimension = {"dlib": 128, "fusion": 640}[model]
    assert f"model {model} with detector hog, on a test face: 1 face, a {dimension}-d embedding" in out


def test_check_fails_with_one_line_when_a_model_cannot_load(capsys, tmp_path):
    """A FaceNet that cannot be read (here a damaged graph in models/) was listed as fine, exit 0."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "facenet.pb").write_bytes(b"x" * 1000)  # OpenCV crashed on this
    config = tmp_path / "config.yaml"
    config.write_text(f"models_dir: {models}\nencoding: {{model: fusion}}\n")
    code, out, _ = run(capsys, "check", "--config", str(config))
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "model fusion" in errors[0] and "facenet.pb" in errors[0], out


def test_check_fails_when_opencv_has_no_tensorflow_reader(capsys, monkeypatch):
    """What a fresh machine with opencv-python 5.1 got: FaceNet cannot load; check said nothing."""
    import cv2

    monkeypatch.delattr(cv2.dnn, "readNetFromTensorflow")
    code, out, _ = run(capsys, "check", "--model", "facenet")
    assert code == 1
    assert "ERROR: model facenet" in out and "readNetFromTensorflow" in out, out


def test_a_slow_timing_under_load_is_not_called_a_build_without_blas(capsys, monkeypatch):
    """Under load (load average 6 on 2 cores) check printed BLAS=yes and then "the SLOW kind (no BLAS) ...
    rebuild it" (issue 18): the build info decides, a timing only says the CPU is busy."""
    import livecam.check

    monkeypatch.setattr(livecam.check, "time_encoding", lambda engine, repeats=5: 250.0)
    code, out, _ = run(capsys, "check")
    assert code == 0 and "BLAS=yes" in out
    assert "no BLAS" not in out and "rebuild" not in out and "busy" in out
