"""The face engine: finding faces in an image, encoding them with a model (dlib, FaceNet, MobileFaceNet, or their
fusion), and matching encodings against the gallery. It knows nothing of cameras, tracks or doors.

Everything outside the engine imports these names from here; its modules are its own business."""

from __future__ import annotations

from .batch import PEER_GONE, EncoderError, EngineSettings, encode_files, encode_path, recv_arrays, send_arrays
from .faces import (
    MODEL_FILES,
    Box,
    Face,
    FaceEngine,
    ModelError,
    ModelNotFoundError,
    dlib_build_info,
    face_distance,
    find_model,
)
from .gallery import (
    Gallery,
    cache_path,
    gallery_stats,
    load_gallery,
    pick_subject,
    read_cache,
    scan_photos,
    write_cache,
)
from .images import MAX_FILE_BYTES, ImageError, decode_image, is_image_path, iter_image_files, load_image
from .matching import Match, Matcher
from .mobilefacenet import find_weights as find_mobilefacenet_weights
from .stages import FrameDetector, LiveEngine

__all__ = [
    # encoding photos (in a pool of processes) and the encoder pipe's wire format
    "EngineSettings",
    "EncoderError",
    "PEER_GONE",
    "encode_files",
    "encode_path",
    "recv_arrays",
    "send_arrays",
    # faces and the models
    "Box",
    "Face",
    "FaceEngine",
    "FrameDetector",
    "LiveEngine",
    "MODEL_FILES",
    "ModelError",
    "ModelNotFoundError",
    "dlib_build_info",
    "face_distance",
    "find_model",
    "find_mobilefacenet_weights",
    # the gallery and its cache
    "Gallery",
    "cache_path",
    "gallery_stats",
    "load_gallery",
    "pick_subject",
    "read_cache",
    "scan_photos",
    "write_cache",
    # reading images
    "ImageError",
    "MAX_FILE_BYTES",
    "decode_image",
    "is_image_path",
    "iter_image_files",
    "load_image",
    # matching
    "Match",
    "Matcher",
]
