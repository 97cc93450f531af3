"""Landmark providers and the step from source-pixel points to canonical ``Landmarks``.

A provider yields ``SourcePoints``: named points in the pixels of the source photo (at least
the five CelebA points) and, for MediaPipe, the dense 468-point mesh. ``to_canonical`` maps
them through the face's 2x3 alignment matrix and fills the names the provider lacks from
``canonical.MEAN_SHAPE`` fitted to the five points, flagging them as estimated.

Providers:

* ``celeba`` - the image's row of ``list_landmarks_align_celeba`` (see ``faces``).
* ``mediapipe`` - the legacy Face Mesh bundled in mediapipe 0.10.21 (no download), or the
  Tasks API ``FaceLandmarker`` when a ``face_landmarker.task`` file is named.
* ``auto`` - the annotation when the image has one, MediaPipe otherwise.

Mesh indices used (MediaPipe's topology; "left" = image-left, i.e. the subject's right):
eye centres are the mean of each eye's contour, brows the mean of each brow's points,
nose tip 4 (closest to CelebA's nose point), mouth corners 61 / 291, nose bridge 168,
chin 152, jaw 172 / 397, forehead 10.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .canonical import EXTRA_POINTS, FIVE_POINTS, MEAN_SHAPE, POINT_NAMES, Landmarks
from .errors import UserError

PROVIDERS: tuple[str, ...] = ("auto", "celeba", "mediapipe")

#: Number of mesh points kept as ``dense`` (the 468 of Face Mesh; iris points dropped).
DENSE_POINTS = 468

# Contours from mediapipe's face_mesh_connections (subject's right eye = image-left).
_EYE_IMAGE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
_EYE_IMAGE_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
_BROW_IMAGE_LEFT = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
_BROW_IMAGE_RIGHT = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)

#: canonical name -> mesh indices averaged to give it
MESH_POINTS: dict[str, tuple[int, ...]] = {
    "left_eye": _EYE_IMAGE_LEFT,
    "right_eye": _EYE_IMAGE_RIGHT,
    "nose_tip": (4,),
    "mouth_left": (61,),
    "mouth_right": (291,),
    "nose_bridge": (168,),
    "chin": (152,),
    "jaw_left": (172,),
    "jaw_right": (397,),
    "brow_left": _BROW_IMAGE_LEFT,
    "brow_right": _BROW_IMAGE_RIGHT,
    "forehead": (10,),
}


class LandmarkError(UserError):
    """A landmark option the user got wrong (unknown provider, missing model file)."""


@dataclass(frozen=True)
class SourcePoints:
    """Points found on one photo, in its pixel coordinates (x, y), before alignment.

    ``points`` holds only what the provider really knows (the five at least);
    ``dense`` is the (468, 2) float32 mesh when MediaPipe ran.
    """

    provider: str
    points: dict[str, tuple[float, float]]
    dense: np.ndarray | None = None

    @property
    def has_face(self) -> bool:
        """False for ``NO_FACE``, the remembered result of a detection that found nothing."""
        return bool(self.points)

    def five(self) -> np.ndarray:
        """The five CelebA points as a (5, 2) float64 array."""
        return np.array([self.points[n] for n in FIVE_POINTS], dtype=np.float64)


#: What a detector that found no face yields (cached, so it is not asked again).
NO_FACE = SourcePoints(provider="none", points={})


def mesh_to_points(mesh: np.ndarray, provider: str) -> SourcePoints:
    """Named points from a (>=468, 2) mesh in pixels."""
    dense = np.ascontiguousarray(mesh[:DENSE_POINTS], dtype=np.float32)
    points = {
        name: tuple(float(v) for v in dense[list(idx)].astype(np.float64).mean(axis=0))
        for name, idx in MESH_POINTS.items()
    }
    return SourcePoints(provider=provider, points=points, dense=dense)


# --------------------------------------------------------------------------- geometry


def apply_affine(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    a = np.linalg.inv(matrix[:, :2])
    return np.hstack([a, -a @ matrix[:, 2:3]])


def similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares similarity (rotation, uniform scale, shift) src -> dst, 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w[:, None] / w.sum()
    sm, dm = (w * src).sum(axis=0), (w * dst).sum(axis=0)
    s, d = src - sm, dst - dm
    var = (w * s**2).sum()
    if var <= 1e-12:
        raise ValueError("degenerate points")
    a = (w * s * d).sum() / var
    b = (w[:, 0] * (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0])).sum() / var
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (dm - rot @ sm)[:, None]])


_MEAN_FIVE = np.array([MEAN_SHAPE[n] for n in FIVE_POINTS], dtype=np.float64)
_MEAN_EXTRA = np.array([MEAN_SHAPE[n] for n in EXTRA_POINTS], dtype=np.float64)


def to_canonical(found: SourcePoints, matrix: np.ndarray) -> Landmarks:
    """Map source-pixel points into the canonical frame and complete the missing names."""
    known = [n for n in POINT_NAMES if n in found.points]
    mapped = apply_affine(matrix, np.array([found.points[n] for n in known]))
    points = {n: (float(x), float(y)) for n, (x, y) in zip(known, mapped, strict=True)}
    missing = [n for n in POINT_NAMES if n not in points]
    if missing:
        fit = similarity(_MEAN_FIVE, np.array([points[n] for n in FIVE_POINTS]))
        idx = [EXTRA_POINTS.index(n) for n in missing]
        for n, (x, y) in zip(missing, apply_affine(fit, _MEAN_EXTRA[idx]), strict=True):
            points[n] = (float(x), float(y))
    dense = None
    if found.dense is not None:
        dense = apply_affine(matrix, found.dense).astype(np.float32)
    return Landmarks(
        points=points, provider=found.provider, estimated=frozenset(missing), dense=dense
    )


# --------------------------------------------------------------------------- detectors


class Detector(Protocol):
    """Finds one face's mesh on an RGB image; ``name`` keys the landmark cache."""

    name: str

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """(>=468, 2) mesh in pixels of ``rgb``, or None when no face is found."""


def _quiet_mediapipe() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextmanager
def _silenced_stderr() -> Iterator[None]:
    """Hide MediaPipe's native log chatter (it writes to fd 2 directly, not via Python)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        _flush_c_stdio()  # native logs may sit in C buffers: flush them to /dev/null
        os.dup2(saved, 2)
        os.close(saved)


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no libc (not on Linux/macOS)
        pass


class FaceMeshDetector:
    """The legacy ``mediapipe.solutions.face_mesh`` model bundled with mediapipe 0.10.21."""

    name = "mediapipe"

    def __init__(self, refine_landmarks: bool = False) -> None:
        _quiet_mediapipe()
        from mediapipe.python.solutions import face_mesh

        with _silenced_stderr():
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=refine_landmarks
            )
            # the graph starts on its own threads, which log as they go: run it once here
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        with _silenced_stderr():
            result = self._mesh.process(np.ascontiguousarray(rgb))
        if not result.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        lm = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h) for p in lm], dtype=np.float64)


class FaceLandmarkerDetector:
    """MediaPipe Tasks ``FaceLandmarker`` from a user-supplied ``face_landmarker.task``."""

    def __init__(self, task_file: str | Path) -> None:
        path = Path(task_file).expanduser()
        if not path.is_file():
            raise LandmarkError(
                f"face landmarker model not found: {path} (download face_landmarker.task "
                "from MediaPipe, or leave --face-landmarker-task out to use the bundled "
                "Face Mesh)"
            )
        _quiet_mediapipe()
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
        )
        try:
            with _silenced_stderr():
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise LandmarkError(f"cannot load face landmarker model {path}: {exc}") from None
        self._mp = mp
        self.path = path
        self.name = f"mediapipe-task:{path.resolve()}"

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        image = self._mp.Image(
            image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)
        )
        try:
            with _silenced_stderr():
                result = self._landmarker.detect(image)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "error"
            raise LandmarkError(f"face landmarker model {self.path} failed: {first}") from None
        if not result.face_landmarks:
            return None
        h, w = rgb.shape[:2]
        return np.array([(p.x * w, p.y * h) for p in result.face_landmarks[0]])


_DETECTORS: dict[str, Detector] = {}

#: Plausible inter-ocular distance of an annotated face, as a fraction of the photo's width
#: (CelebA's aligned faces: about 0.22).
INTER_OCULAR_RANGE = (0.05, 0.7)


def annotation_problem(five: np.ndarray, width: int, height: int) -> str | None:
    """Why five annotated source-pixel points (eyes, nose, mouth corners, image-left first)
    cannot belong to a face in a ``width`` x ``height`` photo, or None: not finite, outside
    the photo, all at one place, eyes implausibly close or far, or out of order."""
    five = np.asarray(five, dtype=np.float64)
    if five.shape != (5, 2) or not np.isfinite(five).all():
        return "malformed landmarks (NaN or infinite value)"
    outside = (five[:, 0] < -0.5) | (five[:, 0] > width - 0.5)
    outside |= (five[:, 1] < -0.5) | (five[:, 1] > height - 0.5)
    if outside.any():
        x, y = five[int(np.argmax(outside))]
        return f"landmarks outside the image ({x:.6g}, {y:.6g} in a {width}x{height} photo)"
    if np.ptp(five, axis=0).max() < 1.0:
        return "degenerate landmarks (all five points at one place)"
    eyes = float(np.linalg.norm(five[1] - five[0]))
    low, high = INTER_OCULAR_RANGE
    if not low * width <= eyes <= high * width:
        return f"implausible inter-ocular distance ({eyes:.1f} px in a {width} px wide photo)"
    eye_y, mouth_y = five[:2, 1].mean(), five[3:, 1].mean()
    if five[0, 0] >= five[1, 0] or mouth_y <= eye_y or five[3, 0] >= five[4, 0]:
        return "implausible landmarks (eyes or mouth corners out of order)"
    return None


def detector_started() -> bool:
    """Whether this process has started a MediaPipe graph. A forked child of such a process
    hangs in MediaPipe (its graph threads are not inherited), so process pools that detect
    must then spawn their workers instead of forking them."""
    return bool(_DETECTORS)


def get_detector(task_file: str | Path | None = None) -> Detector:
    """The process-wide detector (created lazily, once): Face Mesh, or the Tasks model."""
    key = "" if task_file is None else str(Path(task_file).expanduser().resolve())
    if key not in _DETECTORS:
        _DETECTORS[key] = (
            FaceMeshDetector() if task_file is None else FaceLandmarkerDetector(task_file)
        )
    return _DETECTORS[key]


def check_provider(provider: str) -> str:
    """Validate a provider name (for options and API calls)."""
    if provider not in PROVIDERS:
        raise LandmarkError(f"unknown landmark provider {provider!r} (use {', '.join(PROVIDERS)})")
    return provider


#: Photos are resized so their longer side is at most this before detection (speed), and
#: small ones are enlarged to at least DETECT_MIN_SIDE (the detector likes some pixels).
DETECT_MAX_SIDE = 1024
DETECT_MIN_SIDE = 256


def detect_points(rgb: np.ndarray, detector: Detector) -> SourcePoints | None:
    """Run ``detector`` on a photo (rescaled for detection) and return source-pixel points."""
    import cv2

    h, w = rgb.shape[:2]
    scale = 1.0
    if max(h, w) > DETECT_MAX_SIDE:
        scale = DETECT_MAX_SIDE / max(h, w)
    elif min(h, w) < DETECT_MIN_SIDE:
        scale = DETECT_MIN_SIDE / min(h, w)
    image = rgb
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        image = cv2.resize(rgb, size, interpolation=interp)
    mesh = detector.detect(image)
    if mesh is None:
        return None
    # normalised mesh coordinates * size are pixel edges; back to source pixel centres
    sx, sy = w / image.shape[1], h / image.shape[0]
    mesh = np.asarray(mesh, dtype=np.float64) * (sx, sy) - 0.5
    provider = "mediapipe" if detector.name == "mediapipe" else "mediapipe-task"
    return mesh_to_points(mesh, provider)
