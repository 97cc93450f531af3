"""Axis-aligned pixel boxes: one type and one order (x0, y0, x1, y1), end-exclusive."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np


class Box(NamedTuple):
    """A pixel box ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    def union(self, other: Box) -> Box:
        """The smallest box holding both."""
        return Box(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )


def mask_box(mask: np.ndarray, margin: int = 0) -> Box | None:
    """The box of the true pixels of ``mask`` grown by ``margin`` and clipped; None if empty."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0 or h == 0:
        return None
    hh, ww = mask.shape
    return Box(
        max(x - margin, 0), max(y - margin, 0), min(x + w + margin, ww), min(y + h + margin, hh)
    )


def points_box(points: np.ndarray, size: int) -> Box:
    """The box of float ``points`` (N x 2, x y) with a 2-3 px margin, clipped to a square frame
    of side ``size``."""
    x0, y0 = np.floor(points.min(0)) - 2
    x1, y1 = np.ceil(points.max(0)) + 3
    x0, y0 = int(max(x0, 0)), int(max(y0, 0))
    x1, y1 = int(min(x1, size)), int(min(y1, size))
    return Box(x0, y0, max(x1, x0), max(y1, y0))
