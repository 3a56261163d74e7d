"""Frame sources refuse frames no camera livecam supports would give (issue 10)."""

from __future__ import annotations

import cv2
import numpy as np

from livecam.cli import main


def test_an_oversized_image_or_video_as_camera_is_one_line_exit_2(tmp_path, capsys):
    still = tmp_path / "huge.png"
    cv2.imwrite(str(still), np.zeros((3000, 12000, 3), np.uint8))  # 36 MP: decodable, but no camera
    video = tmp_path / "huge.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (8200, 4400))
    for _ in range(2):
        writer.write(np.zeros((4400, 8200, 3), np.uint8))
    writer.release()
    (tmp_path / "kf").mkdir()  # an empty gallery (a missing one is refused)
    for path, size in ((still, "12000x3000"), (video, "8200x4400")):
        code = main(["run", "--camera", str(path), "--no-window", "--known-faces", str(tmp_path / "kf")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and f"frames are {size}, more than 8K" in err, err


def test_live_detection_looks_at_a_bounded_copy_of_a_big_frame(engine, monkeypatch, data):
    from livecam.detection import MAX_DETECT_PIXELS, Detector
    from livecam.faces import FaceEngine
    from livecam.images import load_image

    seen: list[int] = []
    real = FaceEngine.detect

    def spy(self, image, upsample=0, detector=None):
        seen.append(image.shape[0] * image.shape[1])
        return real(self, image, upsample, detector)

    monkeypatch.setattr(FaceEngine, "detect", spy)
    face = cv2.cvtColor(load_image(data / "identities" / "Tony_Blair" / "1.jpg"), cv2.COLOR_RGB2GRAY)
    frame = np.full((2160, 3840), 100, np.uint8)  # a 4K camera
    frame[900:1400, 1700:2200] = cv2.resize(face, (500, 500))
    boxes = Detector(engine, min_face_px=100)(frame)
    assert len(seen) == 1 and seen[0] <= MAX_DETECT_PIXELS
    assert len(boxes) == 1 and 1700 <= boxes[0].center[0] <= 2200  # found, in full-frame coordinates
