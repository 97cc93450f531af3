"""Objects resting on one another: eyeglasses or sunglasses worn with a mask sit on it.

With a mask and a pair of glasses on one face, the glasses slide down the nose until the
lower rims of their lenses rest on the mask's upper edge (at most ``MAX_DROP`` inter-ocular
distances), as they do in photos; the compositor's contact shadow then falls on the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from .canonical import Landmarks
from .layers import Layer

#: Largest slide of the glasses down onto a mask (inter-ocular distances).
MAX_DROP = 0.12
#: Alpha that counts as solid when finding rims and edges.
_SOLID = 0.5


def _lowest(alpha: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per column, the lowest solid row (-1 where none)."""
    solid = alpha[:, cols] > _SOLID
    rows = np.arange(alpha.shape[0])[:, None]
    return np.where(solid.any(0), (solid * rows).max(0), -1)


def _highest(alpha: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per column, the highest solid row (a large number where none)."""
    solid = alpha[:, cols] > _SOLID
    big = alpha.shape[0] * 4
    rows = np.arange(alpha.shape[0])[:, None]
    return np.where(solid, rows, big).min(0)


def rest_on_mask(glasses: Layer, mask: Layer, lm: Landmarks) -> float:
    """Move ``glasses`` (in place) down onto ``mask``; returns the drop in pixels (0: they
    touch or overlap it already, or the two never meet under the lenses)."""
    iod = max(lm.inter_ocular, 1e-3)
    xs = []
    for eye in ("left_eye", "right_eye"):
        c = lm[eye][0]
        xs.append(np.arange(int(c - 0.2 * iod), int(c + 0.2 * iod) + 1))
    cols = np.clip(np.concatenate(xs), 0, glasses.alpha.shape[1] - 1)
    bottom = _lowest(glasses.alpha, cols)
    top = _highest(mask.alpha, cols)
    ok = (bottom >= 0) & (top < mask.alpha.shape[0])
    if not ok.any():
        return 0.0
    gap = float(np.min(top[ok] - bottom[ok])) - 1.0
    drop = float(np.clip(gap, 0.0, MAX_DROP * iod))
    if drop <= 0.0:
        return 0.0
    M = np.float32([[1, 0, 0], [0, 1, drop]])
    size = glasses.alpha.shape[::-1]

    def move(a: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(a, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    glasses.rgb = move(glasses.rgb)
    glasses.alpha = move(glasses.alpha)
    if glasses.contact is not None:
        glasses.contact = move(glasses.contact)
    glasses.params["rests_on_mask_px"] = round(drop, 2)
    return drop
