"""Ear loops for worn masks that come without them (masks harvested from photos).

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
EAR_HALF_WIDTH = 1.02
EAR_DEPTH = (-0.05, 0.55)
#: The last share of a cord fades out, passing behind the ear.
FADE_FROM = 0.6
#: A strand shorter than this (IODs: the mask's corner at the ear already) is not drawn.
MIN_REACH = 0.12


def _corner(solid: np.ndarray, mid: np.ndarray, u: np.ndarray, n: np.ndarray, band, side):
    """The mask's outermost solid pixel on ``side`` (+1 along ``u``, -1 against it) among
    those whose depth along ``n`` (from ``mid``) lies in ``band`` (frame px); or None."""
    ys, xs = np.nonzero(solid)
    if len(xs) == 0:
        return None
    across = (xs - mid[0]) * u[0] + (ys - mid[1]) * u[1]
    down = (xs - mid[0]) * n[0] + (ys - mid[1]) * n[1]
    sel = (down >= band[0]) & (down <= band[1])
    if not sel.any():
        return None
    k = int(np.argmax(side * across[sel]))
    return np.array([xs[sel][k], ys[sel][k]], np.float64)


def _cord(path: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, shade) maps of a round cord along ``path`` (N, 2 frame px), fading out
    over its last part; shade is lit along its middle, dark at its edges."""
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(int(s[-1] / 0.5), 2)
    q = np.stack([np.interp(np.linspace(0, s[-1], n), s, path[:, k]) for k in (0, 1)], 1)
    r = width / 2
    x0, y0 = np.maximum(np.floor(q.min(0) - r - 2), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(q.max(0) + r + 2), S).astype(int)
    cov = np.zeros((S, S), np.float32)
    shade = np.ones((S, S), np.float32)
    if x1 <= x0 or y1 <= y0:
        return cov, shade
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d2 = (gx[..., None] - q[:, 0]) ** 2 + (gy[..., None] - q[:, 1]) ** 2
    k = d2.argmin(-1)
    d = np.sqrt(np.take_along_axis(d2, k[..., None], -1)[..., 0])
    along = k / (n - 1)
    c = np.clip(r - d + 0.5, 0.0, 1.0)
    c *= np.clip((1.0 - along) / (1.0 - FADE_FROM), 0.0, 1.0) ** 1.5
    cov[y0:y1, x0:x1] = c
    rr = np.clip(d / max(r, 1e-3), 0.0, 1.0)
    shade[y0:y1, x0:x1] = 0.72 + 0.33 * np.sqrt(1.0 - rr * rr)
    return cov, shade


def add_ear_loops(layer: Layer, lm: Landmarks, keep: np.ndarray | None = None) -> None:
    """Draw ear loops into the worn mask ``layer`` in place (under the fabric), in its own
    colour a little lighter; ``keep`` (HxW, 1 visible .. 0 hidden by the head) hides the far
    side's. Records ``layer.params["ear_loops"]`` (the sides that got them)."""
    solid = layer.alpha > 0.5
    if not solid.any():
        return
    iod = max(lm.inter_ocular, 1e-3)
    u = np.array([np.cos(lm.roll), np.sin(lm.roll)])
    n = np.array([-u[1], u[0]])
    mid = (lm["left_eye"] + lm["right_eye"]) / 2
    down = (np.nonzero(solid)[1] - mid[0]) * n[0] + (np.nonzero(solid)[0] - mid[1]) * n[1]
    top, bottom = float(down.min()), float(down.max())
    h = max(bottom - top, 1.0)
    bands = ((top, top + 0.22 * h), (top + 0.5 * h, top + 0.72 * h))
    colour = np.median(layer.rgb[solid], axis=0)
    colour = np.clip(colour + 0.15 * (1.0 - colour), 0.0, 1.0).astype(np.float32)
    cover = np.zeros((S, S), np.float32)
    shade = np.ones((S, S), np.float32)
    sides: list[str] = []
    for side, name in ((-1.0, "left"), (1.0, "right")):
        drawn = False
        for band, depth in zip(bands, EAR_DEPTH, strict=True):
            p0 = _corner(solid, mid, u, n, band, side)
            ear = mid + side * EAR_HALF_WIDTH * iod * u + depth * iod * n
            if p0 is None or float(np.linalg.norm(ear - p0)) < MIN_REACH * iod:
                continue
            bend = (p0 + ear) / 2 + side * 0.05 * iod * u  # bowed out round the cheek
            t = np.linspace(0.0, 1.0, 12)[:, None]
            path = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * bend + t**2 * ear
            c, sh = _cord(path, CORD_IOD * iod)
            shade = np.where(c > cover, sh, shade)
            cover = np.maximum(cover, c)
            drawn = True
        if drawn:
            sides.append(name)
    if keep is not None:
        cover *= keep
    under = cover * (1.0 - layer.alpha)
    if not (under > 0).any():
        return
    a = layer.alpha + under
    cord = colour[None, None, :] * shade[..., None]
    rgb = (layer.rgb * layer.alpha[..., None] + cord * under[..., None]) / np.maximum(a, 1e-6)[
        ..., None
    ]
    layer.rgb = np.where(under[..., None] > 0, rgb, layer.rgb).astype(np.float32)
    layer.alpha = np.minimum(a, 1.0).astype(np.float32)
    params: dict[str, Any] = {"sides": sides, "width_px": round(CORD_IOD * iod, 2)}
    layer.params["ear_loops"] = params
