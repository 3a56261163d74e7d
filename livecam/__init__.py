"""livecam: real-time webcam face recognition on a small CPU."""

from __future__ import annotations

__version__ = "0.1.0"
