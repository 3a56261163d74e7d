"""livecam: real-time webcam face recognition on a small CPU."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# OpenCV's own cap on the pixels of an image it decodes (read when it first decodes one):
# a second line behind images.declared_size, for images that reach OpenCV another way
# (a video source that is a still image). Equal to images.MAX_PIXELS.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "50000000")

# OpenCV's own warnings (a missing camera printed 12 lines before livecam's one) and Qt's font
# warnings at every window start: livecam says what went wrong itself. Set before cv2 is imported.
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.fonts=false")
