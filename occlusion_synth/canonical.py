"""The canonical 256x256 face frame and the landmark contract shared by every module.

Every face the builder touches is brought into one frame: CANONICAL_SIZE x CANONICAL_SIZE
pixels with the eyes, nose and mouth at ``CANONICAL_POINTS``. Coordinates are (x, y) in
output pixels, "left" means image-left.

CelebA aligned images (178x218, or any size with that aspect such as the half-size copies)
reach the frame by one fixed transform: crop the 178x178 square whose top edge is at y=30
(in 178x218 units), then resize to 256x256 (``celeba_crop_box``). The canonical positions of
the five CelebA points are the CelebA mean landmarks mapped through that transform; every
other photo is aligned to them with a similarity transform (``occlusion_synth.faces``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CANONICAL_SIZE = 256

#: The five CelebA points, in CelebA's order.
FIVE_POINTS: tuple[str, ...] = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")

#: Points a provider may know, or that are estimated from the mean shape fitted to the five.
EXTRA_POINTS: tuple[str, ...] = (
    "nose_bridge",
    "chin",
    "jaw_left",
    "jaw_right",
    "brow_left",
    "brow_right",
    "forehead",
)

POINT_NAMES: tuple[str, ...] = FIVE_POINTS + EXTRA_POINTS

#: CelebA aligned-image geometry (official 178x218 images).
CELEBA_ALIGNED_SIZE = (178, 218)
CELEBA_CROP_TOP = 30  # in 178x218 units; the 178x178 square below it is kept

#: Mean face shape in the canonical frame. The five points are CelebA's mean annotations
#: (measured on the CelebA sample) mapped through the fixed crop; the extra points are
#: the mean of MediaPipe Face Mesh points on CelebA faces in the same frame.
MEAN_SHAPE: dict[str, tuple[float, float]] = {
    "left_eye": (99.7, 116.6),
    "right_eye": (154.8, 116.7),
    "nose_tip": (125.8, 151.6),
    "mouth_left": (102.5, 175.4),
    "mouth_right": (152.0, 175.7),
    "nose_bridge": (126.8, 115.5),
    "chin": (127.2, 217.8),
    "jaw_left": (80.2, 184.7),
    "jaw_right": (177.3, 185.3),
    "brow_left": (94.9, 102.7),
    "brow_right": (159.7, 102.8),
    "forehead": (127.2, 71.5),
}

CANONICAL_POINTS = np.array([MEAN_SHAPE[n] for n in FIVE_POINTS], dtype=np.float64)


def mean_shape_array(names: tuple[str, ...] = POINT_NAMES) -> np.ndarray:
    """Return the mean shape for ``names`` as an (N, 2) float array."""
    return np.array([MEAN_SHAPE[n] for n in names], dtype=np.float64)


def celeba_crop_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The fixed CelebA crop (left, top, right, bottom) for an aligned image of this size."""
    scale = width / CELEBA_ALIGNED_SIZE[0]
    top = CELEBA_CROP_TOP * scale
    return 0.0, top, float(width), top + width


@dataclass
class Landmarks:
    """Named landmark points of one face in the canonical 256x256 frame.

    ``points`` maps every name of ``POINT_NAMES`` to (x, y). ``estimated`` lists the names
    that were filled in from the mean shape rather than detected or annotated.
    ``dense`` optionally holds MediaPipe's 468 mesh points, (468, 2), same frame.
    """

    points: dict[str, tuple[float, float]]
    provider: str
    estimated: frozenset[str] = field(default_factory=frozenset)
    dense: np.ndarray | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        return np.asarray(self.points[name], dtype=np.float64)

    def array(self, names: tuple[str, ...] = POINT_NAMES) -> np.ndarray:
        """(N, 2) float array of the named points, in order."""
        return np.array([self.points[n] for n in names], dtype=np.float64)

    @property
    def inter_ocular(self) -> float:
        """Distance between the eye centres in pixels."""
        return float(np.linalg.norm(self["right_eye"] - self["left_eye"]))

    @property
    def roll(self) -> float:
        """Angle of the eye line in radians (positive: right eye lower, image coordinates)."""
        d = self["right_eye"] - self["left_eye"]
        return float(np.arctan2(d[1], d[0]))

    def flat(self) -> dict[str, float]:
        """``{"<name>_x": x, "<name>_y": y}`` for every canonical point (manifest columns)."""
        out: dict[str, float] = {}
        for n in POINT_NAMES:
            x, y = self.points[n]
            out[f"{n}_x"] = float(x)
            out[f"{n}_y"] = float(y)
        return out
