from __future__ import annotations

import cv2
import numpy as np
import pytest

from livecam.cli import main
from livecam.config import Config, resolved
from livecam.door.calibrate import calibrate
from livecam.engine.batch import EngineSettings
from livecam.engine.gallery import load_gallery
from livecam.models import MODELS

PEOPLE = {p: [1, 2, 3, 4, 5] for p in ("George_W_Bush", "Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Serena_Williams")}


def test_suggested_threshold_separates_the_people(make_gallery, engine):
    g = load_gallery(make_gallery(PEOPLE), EngineSettings(), 1, engine)
    cal = calibrate(g, far=0.01)
    assert len(cal.genuine) == 5 * 10 and len(cal.impostor) == 25 * 24 // 2 - 50
    false_accepts = (cal.impostor <= cal.threshold).mean()
    assert false_accepts <= 0.01
    assert cal.tar >= 0.9  # these LFW people are well apart
    assert np.median(cal.genuine) < cal.threshold < np.median(cal.impostor)
    a, b = cal.lookalikes[0].a.split("/")[0], cal.lookalikes[0].b.split("/")[0]
    assert a != b and cal.lookalikes[0].distance == pytest.approx(cal.impostor.min(), abs=1e-5)


def test_cli_calibrate_prints_and_plots(make_gallery, tmp_path, capsys):
    root = make_gallery(PEOPLE)
    plot = tmp_path / "cal.png"
    assert main(["calibrate", "--known-faces", str(root), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    default = MODELS[resolved(Config()).encoding.model].threshold  # the model `calibrate` ran with
    assert "closest look-alikes" in out
    if "suggested matching.threshold" in out:
        assert float(out.split("for FAR 0.001: ")[1].split()[0]) <= default and "keep" not in out
    else:  # a small gallery allows looser than the default: one recommendation, to keep it, and why
        assert f"matching.threshold: keep {default:.3f}. This gallery alone would allow" in out and "strangers" in out
        assert "suggested" not in out  # a "suggested" value beside "keep" read as a contradiction
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[1] == 900
    # both distributions were drawn: green and red bars
    assert ((image[..., 1] > 150) & (image[..., 2] < 190) & (image[..., 0] < 190)).sum() > 500
    assert ((image[..., 2] > 200) & (image[..., 1] < 190)).sum() > 500


def test_calibrate_needs_two_people(make_gallery, capsys):
    root = make_gallery({"Tony_Blair": [1, 2]})
    assert main(["calibrate", "--known-faces", str(root)]) == 2
    assert "at least two" in capsys.readouterr().err


@pytest.mark.parametrize("far", ["2", "1", "0", "-0.1", "nan", "inf", "lots"])
def test_far_must_be_a_rate(far, capsys):
    """`--far 2` was accepted and calibrated to nothing meaningful (issue 18)."""
    assert main(["calibrate", "--far", far]) == 2
    err = capsys.readouterr().err
    assert "--far" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_no_plot_is_written_unless_asked(make_gallery, tmp_path, capsys):
    """calibration.png appeared in the current folder without --plot (issue 18)."""
    root = make_gallery({p: [1, 2, 3] for p in ("Tony_Blair", "Colin_Powell", "George_W_Bush")})
    assert main(["calibrate", "--known-faces", str(root)]) == 0
    assert not list(tmp_path.glob("*.png")) and "histogram" not in capsys.readouterr().out
