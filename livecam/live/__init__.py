"""The live loop: frames from a source, detection on a thread, tracks, encodings in a process of their own, the
naming of each track, the overlay, and the CPU budget that paces it all. It hands what it decided to the door
through `DoorEvents` and imports nothing of the door.

Everything outside the loop imports these names from here."""

from __future__ import annotations

from . import overlay
from .budget import Costs, Governor, plan
from .capture import FileSource, LatestFrameReader, SourceError, open_source
from .detection import Detector
from .encoder import EncoderProcess
from .liveness import BLINK_LICENCE_NOTE
from .loop import DoorEvents, Outputs, run_loop
from .recognizer import FrameResult, LiveSettings, Recognizer, TrackedFace, TrackUpdate
from .reload import GalleryWatcher, gallery_listing
from .tracking import VotingRule

__all__ = [
    # the loop
    "DoorEvents",
    "Outputs",
    "run_loop",
    # its stages, built by the wiring
    "Detector",
    "EncoderProcess",
    "FileSource",
    "LatestFrameReader",
    "LiveSettings",
    "Recognizer",
    "SourceError",
    "VotingRule",
    "open_source",
    "BLINK_LICENCE_NOTE",
    # what a frame decided
    "FrameResult",
    "TrackUpdate",
    "TrackedFace",
    # the CPU budget
    "Costs",
    "Governor",
    "plan",
    # the gallery folder, watched
    "GalleryWatcher",
    "gallery_listing",
    # drawing (pure functions)
    "overlay",
]
