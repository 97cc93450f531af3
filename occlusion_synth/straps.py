"""Ear loops back to the ears for worn masks (cut from photos without them, or drawn with stubs).

A mask cut from a photo rarely keeps its loops: they run beside the face, over hair and
background that the cut leaves out. Worn on another face, such a mask looks pasted on. Here
each side gets two shaded cords, from the mask's upper and lower side corners back to the
ear (at the face's outline, between the eye line and the nose), fading where they pass
behind it, in the mask's own colour a little lighter (``add_ear_loops``). On a turned face
the far side's loops are hidden by the head, as the mask's far side is
(``placement._far_keep``); hair that lies over the face is put over them afterwards, as over
the mask (``sample.put_behind_hair``).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .canonical import CANONICAL_SIZE, Landmarks
from .layers import Layer

S = CANONICAL_SIZE

#: Cord thickness, in inter-ocular distances (3.2 canonical px, as the drawn masks' loops:
#: thinner ones vanish in the blur and grain of a CelebA-sized photo).
CORD_IOD = 0.058
#: Where a loop meets the ear: just outside the face's outline (half-widths from the eyes'
#: midpoint, in IODs), the upper strand at the top of the ear (a little above the eye
#: line), the lower one behind the earlobe (depths below the eye line, IODs).
EAR_HALF_WIDTH = 1.12
EAR_DEPTH = (-0.05, 0.55)
#: The last share of a cord fades out, passing behind the ear.
FADE_FROM = 0.6
#: A strand shorter than this (IODs: the mask's corner at the ear already) is not drawn.
MIN_REACH = 0.05


def _corner(xs: np.ndarray, ys: np.ndarray, across: np.ndarray, down: np.ndarray, band, side):
    """The mask's outermost solid pixel on ``side`` (+1 along the eye line, -1 against it)
    among those (``xs``, ``ys``; ``across``/``down`` from the eyes' midpoint) whose depth
    lies in ``band`` (frame px); or None."""
    sel = (down >= band[0]) & (down <= band[1])
    if not sel.any():
        return None
    k = int(np.argmax(side * across[sel]))
    return np.array([xs[sel][k], ys[sel][k]], np.float64)


#: Supersampling of the cords' drawing (cv2 lines, anti-aliased, then area-averaged).
_SS = 4


def _cord(path: np.ndarray, width: float, cover: np.ndarray, shade: np.ndarray) -> None:
    """Draw a round cord along ``path`` (N, 2 frame px) into ``cover`` (coverage, max) and
    ``shade`` (lit along its middle, dark at its edges), in place; it fades out over its
    last part (``FADE_FROM``), passing behind the ear."""
    r = width / 2
    x0, y0 = np.maximum(np.floor(path.min(0) - r - 2), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(path.max(0) + r + 2), S).astype(int)
    if x1 <= x0 or y1 <= y0:
        return
    h, w = (y1 - y0) * _SS, (x1 - x0) * _SS
    full = np.zeros((h, w), np.float32)
    core = np.zeros((h, w), np.float32)
    pts = np.rint((path - [x0 - 0.5, y0 - 0.5]) * _SS - 0.5).astype(np.int32)
    n = len(pts) - 1
    for k in range(n):  # each piece as strong as the cord still is there
        t = (k + 0.5) / n
        a = float(np.clip((1.0 - t) / (1.0 - FADE_FROM), 0.0, 1.0) ** 1.5)
        seg = pts[k : k + 2].reshape(-1, 1, 2)
        cv2.polylines(full, [seg], False, a, max(int(round(width * _SS)), 1), cv2.LINE_AA)
        cv2.polylines(core, [seg], False, a, max(int(round(width * _SS * 0.45)), 1), cv2.LINE_AA)
    size = (x1 - x0, y1 - y0)
    c = cv2.resize(full, size, interpolation=cv2.INTER_AREA)
    lit = cv2.resize(core, size, interpolation=cv2.INTER_AREA) / np.maximum(c, 1e-6)
    box = (slice(y0, y1), slice(x0, x1))
    shade[box] = np.where(c > cover[box], 0.75 + 0.3 * np.clip(lit, 0.0, 1.0), shade[box])
    cover[box] = np.maximum(cover[box], c)


def add_ear_loops(layer: Layer, lm: Landmarks, keep: np.ndarray | None = None) -> None:
    """Draw ear loops into the worn mask ``layer`` in place (under the fabric), in its own
    colour a little lighter; ``keep`` (HxW, 1 visible .. 0 hidden by the head) hides the far
    side's. Records ``layer.params["ear_loops"]`` (the sides that got them)."""
    solid = layer.alpha > 0.5
    ys, xs = np.nonzero(solid)
    if len(xs) == 0:
        return
    iod = max(lm.inter_ocular, 1e-3)
    u = np.array([np.cos(lm.roll), np.sin(lm.roll)])
    n = np.array([-u[1], u[0]])
    mid = (lm["left_eye"] + lm["right_eye"]) / 2
    across = (xs - mid[0]) * u[0] + (ys - mid[1]) * u[1]
    down = (xs - mid[0]) * n[0] + (ys - mid[1]) * n[1]
    top, bottom = float(down.min()), float(down.max())
    h = max(bottom - top, 1.0)
    bands = ((top, top + 0.22 * h), (top + 0.5 * h, top + 0.72 * h))
    colour = np.median(layer.rgb[ys[::7], xs[::7]], axis=0)
    colour = np.clip(colour + 0.15 * (1.0 - colour), 0.0, 1.0).astype(np.float32)
    cover = np.zeros((S, S), np.float32)
    shade = np.ones((S, S), np.float32)
    sides: list[str] = []
    for side, name in ((-1.0, "left"), (1.0, "right")):
        drawn = False
        for band, depth in zip(bands, EAR_DEPTH, strict=True):
            p0 = _corner(xs, ys, across, down, band, side)
            ear = mid + side * EAR_HALF_WIDTH * iod * u + depth * iod * n
            if p0 is None or float(np.linalg.norm(ear - p0)) < MIN_REACH * iod:
                continue
            bend = (p0 + ear) / 2 + side * 0.05 * iod * u  # bowed out round the cheek
            t = np.linspace(0.0, 1.0, 12)[:, None]
            path = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * bend + t**2 * ear
            _cord(path, CORD_IOD * iod, cover, shade)
            drawn = True
        if drawn:
            sides.append(name)
    x, y, w, h_ = cv2.boundingRect(cv2.compare(cover, 0.0, cv2.CMP_GT))
    if w == 0 or h_ == 0:
        return
    box = (slice(y, y + h_), slice(x, x + w))
    c = cover[box] * (keep[box] if keep is not None else 1.0)
    al = layer.alpha[box]
    under = c * (1.0 - al)
    if not (under > 0).any():
        return
    a = al + under
    cord = colour[None, None, :] * shade[box][..., None]
    rgb = layer.rgb[box]
    mixed = (rgb * al[..., None] + cord * under[..., None]) / np.maximum(a, 1e-6)[..., None]
    layer.rgb = layer.rgb.copy()
    layer.rgb[box] = np.where(under[..., None] > 0, mixed, rgb)
    layer.alpha = layer.alpha.copy()
    layer.alpha[box] = np.minimum(a, 1.0)
    params: dict[str, Any] = {"sides": sides, "width_px": round(CORD_IOD * iod, 2)}
    layer.params["ear_loops"] = params
