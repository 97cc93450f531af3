"""Per-sample folds and creases of a drawn fabric occluder, lit by the face's own light.

A drawn mask or scarf is placed with ``Layer.surface``: for every pixel of its box, the
canonical template point it shows. Here a height field is built in those template
coordinates, so it bends with the warped fabric (round the chin, over the nose, narrowing
on the far side of a turned face), and shades the layer by its slope towards the face's
light (``realism.FaceStats.light_dir``) plus a little occlusion in its hollows:

- **pleats** (medical masks): 2-3 folds, each a lit lip over a shadowed step, sagging in
  the middle and pinched together towards the bound side edges; their number, spacing,
  sag, tilt and depth are drawn per sample, so no two masks repeat exactly.
- **form** (all): the fabric rounds across the face and under the chin, and a mask is
  tented over the nose, so the side facing the light is brighter.
- **creases** (cloth masks, scarves): 1-3 tension creases running from the ear-loop
  corners or the sides towards the middle, plus a soft cross-wise wave; rigid respirators
  (N95/KN95, moulded) get none: their assets carry their own moulded form.

Each sample's draws are recorded in ``Layer.params["drape"]``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .layers import Layer
from .realism import LUMA

#: Fabric categories (draped when drawn); the pleated ones fold in pleats, the others crease.
FABRIC = frozenset({"medical_mask", "cloth_mask", "n95_mask", "scarf"})
PLEATED = frozenset({"medical_mask"})
#: Name parts of moulded, rigid masks: not draped (their assets are drawn with their form).
RIGID = ("n95", "kn95")

#: How much of a pleat shows in the middle of the mask (stretched over the nose and chin),
#: rising to all of it at the bound sides.
PLEAT_MIDDLE = 0.6
#: A pleat's height (of the fold's full step) and how far its shadow reaches below the fold
#: (template px): real pleats read as thin fold lines on an even face of fabric; deeper or
#: wider ones shaded the mask in broad horizontal bands, which blind reviewers took for a
#: drawn template.
PLEAT_HEIGHT = 0.55
PLEAT_SHADOW = 4.0

#: Slope shading and hollow darkening at full depth.
SLOPE_GAIN = 0.65
HOLLOW_GAIN = 0.3
#: Share of the fabric's overall form (``_body``: round across the face, tented over the
#: nose) that the key light's slope shading sees. At full relief a side-lit mask split
#: into a bright and a dark half down the nose line, which blind reviewers called a pasted
#: template in two of two rounds; the form still darkens towards the rim (``VIEW_GAIN``).
BODY_LIGHT = 0.45
#: Largest slope (template px per template px) the light shading takes.
MAX_SLOPE = 1.4
#: Sheen added (0..1 scale) to black fabric on a slope facing the light squarely; less on
#: lighter fabric (by the square of its darkness), where the slope shading shows instead.
SHEEN = 0.12
#: Sheen (0..1 scale, by the square of the fabric's darkness) along a pleat's lip, where the
#: fold turns up to the room's light: black pleated masks in photos show each pleat as a grey
#: band over a dark fold line; the slope light alone left them a flat black patch.
PLEAT_SHEEN = 0.16
#: Darkening of fabric turned fully away from the camera (by 1 - its normal's z).
VIEW_GAIN = 0.8
#: Light from above added to the face's light direction (sky, ceiling), so folds show
#: under a light from the side too.
AMBIENT_ABOVE = 0.8


def _pleats(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Height field (template px) of a pleated mask's folds, and the draws."""
    n = int(rng.integers(2, 4))
    top, bottom = float(rng.uniform(150, 158)), float(rng.uniform(196, 206))
    jit = rng.uniform(-1.5, 1.5, 4)
    sag = float(rng.uniform(2.5, 7.0))
    pinch = float(rng.uniform(0.25, 0.45))
    tilt = float(rng.uniform(-2.0, 2.0))
    depth = float(rng.uniform(0.8, 1.2))
    phase = float(rng.uniform(0, 2 * np.pi))
    ax = np.clip(np.abs(u - 127.0) * (1 / 62.0), 0, 1)
    ax2 = ax * ax
    mid = (top + bottom) / 2
    wave = 0.35 * np.sin(u * (1 / 9.0) + phase) + tilt * (u - 127.0) * (1 / 60.0)
    h = np.zeros_like(u)
    hollow = np.zeros_like(u)
    lips = np.zeros_like(u)
    for i in range(n):
        p0 = top + i * (bottom - top) / max(n - 1, 1) + float(jit[i])
        py = mid + (p0 - mid) * (1 - pinch * ax2) + sag * 0.6 * (1 - ax2) + wave
        q = v - py
        lip = np.exp(-(((q + 1.6) * (1 / 2.4)) ** 2))
        # the step down to the next pleat, eased over ~4 px: a cliff read as a drawn line
        ramp = np.clip((q + 2.0) * (1 / 4.0), 0.0, 1.0)
        step = np.exp(-np.maximum(q, 0) * (1 / PLEAT_SHADOW)) * ramp * ramp * (3.0 - 2.0 * ramp)
        h += PLEAT_HEIGHT * (0.45 * lip - 0.9 * step)  # one fold line per pleat
        hollow += PLEAT_HEIGHT * step
        lips += lip
    info = {
        "kind": "pleats",
        "count": n,
        "sag": round(sag, 2),
        "pinch": round(pinch, 3),
        "tilt": round(tilt, 2),
        "depth": round(depth, 3),
    }
    # the fabric is stretched flat over the nose and chin: the pleats open up towards the
    # bound sides and show least in the middle
    spread = depth * (PLEAT_MIDDLE + (1.0 - PLEAT_MIDDLE) * ax)
    extra = {"_hollow": hollow * spread, "_lips": np.clip(lips * spread, 0.0, 1.0)}
    return (h * spread).astype(np.float32), {**info, **extra}


#: Where tension creases start (template coordinates): the ear-loop corners and the sides.
_CREASE_STARTS = ((182.0, 145.0), (72.0, 145.0), (176.0, 192.0), (78.0, 192.0))


def _creases(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Height field (template px) of 1-3 tension creases and a soft cross-wise wave."""
    n = int(rng.integers(1, 4))
    starts = rng.permutation(len(_CREASE_STARTS))[:3]
    ends = rng.uniform((112.0, 150.0), (142.0, 205.0), (3, 2))
    widths = rng.uniform(3.0, 6.5, 3)
    heights = rng.uniform(0.6, 1.4, 3) * rng.choice([-1.0, 1.0], 3)
    period = float(rng.uniform(14.0, 24.0))
    phase = float(rng.uniform(0, 2 * np.pi))
    amp = float(rng.uniform(0.15, 0.4))  # under the stronger slope light, more read as stripes
    h = (amp * np.sin(v * (1 / period) * 2 * np.pi + phase + 0.02 * u)).astype(np.float32)
    for k in range(n):
        p0 = np.array(_CREASE_STARTS[int(starts[k])])
        d = ends[k] - p0
        length2 = float(d @ d)
        t = np.clip(((u - p0[0]) * d[0] + (v - p0[1]) * d[1]) * (1 / length2), 0, 1)
        dist2 = (u - p0[0] - t * d[0]) ** 2 + (v - p0[1] - t * d[1]) ** 2
        fade = np.sqrt(np.clip(np.sin(np.pi * t), 0, 1))  # the crease dies out at its ends
        h += heights[k] * np.exp(-dist2 * (1 / widths[k] ** 2)) * fade
    info = {"kind": "creases", "count": n, "wave_period": round(period, 2), "wave": round(amp, 3)}
    return h, {**info, "_hollow": np.clip(-h, 0, None) * 0.5}


_ACROSS, _CHIN, _NOSE = 38.0, 13.0, 7.0
#: Half-width (template px) of the tent over the nose: a broad ridge, not a crease.
_NOSE_WIDTH = 19.0


def _body(u: np.ndarray, v: np.ndarray, nose: bool) -> np.ndarray:
    """Height (template px) of the fabric's overall form: round across the face, turning
    under the chin, and (for a mask) tented over the nose, so the side facing the light is
    the brighter one and the nose casts its side into shade."""
    across = -_ACROSS * ((u - 127.0) * (1 / 62.0)) ** 2
    chin = -_CHIN * np.clip((v - 190.0) * (1 / 35.0), 0, None) ** 2
    h = across + chin
    if nose:
        fade = np.clip((168.0 - v) * (1 / 30.0), 0, 1)
        h = h + _NOSE * np.exp(-(((u - 127.0) * (1 / _NOSE_WIDTH)) ** 2)) * fade
    return h.astype(np.float32)


def _body_tilt(u: np.ndarray, v: np.ndarray, nose: bool) -> np.ndarray:
    """1 - the z of the form's normal (0 facing the camera .. 1 edge-on), from its slopes in
    template coordinates: the warp into the frame (which folds on a turned face) plays no
    part."""
    gu = -2.0 * _ACROSS * (u - 127.0) * (1 / 62.0**2)
    gv = -2.0 * _CHIN * np.clip((v - 190.0) * (1 / 35.0), 0, None) * (1 / 35.0)
    if nose:
        bump = _NOSE * np.exp(-(((u - 127.0) * (1 / _NOSE_WIDTH)) ** 2))
        fade = np.clip((168.0 - v) * (1 / 30.0), 0, 1)
        gu = gu + bump * fade * (-2.0 * (u - 127.0) * (1 / _NOSE_WIDTH**2))
        gv = gv - bump * ((v > 138.0) & (v < 168.0)) * (1 / 30.0)
    return (1.0 - 1.0 / np.sqrt(1.0 + gu * gu + gv * gv)).astype(np.float32)


def _facing(h: np.ndarray, per_px: np.ndarray, light: tuple[float, float]) -> np.ndarray:
    """How squarely the height field ``h`` (template px) faces ``light`` at each frame
    pixel (-1..1), from its slope per template px (``per_px``: template px per frame px)."""
    hx = cv2.Sobel(h, cv2.CV_32F, 1, 0, ksize=1) * (0.5 / per_px)
    hy = cv2.Sobel(h, cv2.CV_32F, 0, 1, ksize=1) * (0.5 / per_px)
    # slopes past MAX_SLOPE are where the warp folds (a profile face), not the fabric
    big = np.sqrt(hx * hx + hy * hy)
    cap = np.minimum(1.0, MAX_SLOPE / np.maximum(big, 1e-6))
    return np.clip(-(hx * light[0] + hy * light[1]) * cap, -1.0, 1.0)


def drape(layer: Layer, light_dir: tuple[float, float], rng: np.random.Generator) -> None:
    """Shade ``layer``'s fabric in place by per-sample folds (see the module docstring).

    No-op (and no draws) for a layer without ``surface``, not of fabric or a rigid mask."""
    if layer.surface is None or layer.category not in FABRIC or any(r in layer.name for r in RIGID):
        return
    x0, y0, u, v = layer.surface
    h_, w_ = u.shape
    if h_ < 3 or w_ < 3:
        return
    if layer.category in PLEATED:
        h, info = _pleats(u, v, rng)
    else:
        h, info = _creases(u, v, rng)
    nose = layer.category != "scarf"
    body = _body(u, v, nose)
    hollow = info.pop("_hollow")
    lips = info.pop("_lips", None)
    # template px per frame px at each pixel (the warp's area scale), to turn the frame
    # gradient into a slope per template px; where the warp folds (a turned face's far side)
    # the template is squeezed and its slopes stay those of the fabric, not of the fold
    ux, uy = cv2.Sobel(u, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(u, cv2.CV_32F, 0, 1, ksize=1)
    vx, vy = cv2.Sobel(v, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(v, cv2.CV_32F, 0, 1, ksize=1)
    per_px = np.sqrt(np.maximum(np.abs(ux * vy - uy * vx) * 0.25, 1e-6))
    # the face's key light, plus the sky or ceiling light from above every photo has
    lx, ly = light_dir[0], light_dir[1] - AMBIENT_ABOVE
    norm = max(float(np.hypot(lx, ly)), 1e-6)
    light = (lx / norm, ly / norm)
    # the folds with a share of the form shade the fabric; the whole form makes its sheen
    facing = _facing(h + BODY_LIGHT * body, per_px, light)
    facing_full = _facing(h + body, per_px, light)
    shade = 1.0 + SLOPE_GAIN * facing
    shade *= 1.0 - HOLLOW_GAIN * np.clip(hollow, 0, 1.5)
    # whatever the light, the fabric turning away from the camera (round the cheeks, under
    # the chin) gets less of the room's light: darker by how far its normal leans away
    shade *= 1.0 - VIEW_GAIN * _body_tilt(u, v, nose)
    box = layer.rgb[y0 : y0 + h_, x0 : x0 + w_]
    a = layer.alpha[y0 : y0 + h_, x0 : x0 + w_]
    f = np.where(a > 0, shade, 1.0).astype(np.float32)
    # dark fabric shows the light as a sheen on the slopes facing it, not as brightness
    sheen = SHEEN * np.clip(facing_full, 0.0, 1.0) ** 2
    if lips is not None:
        sheen = sheen + PLEAT_SHEEN * lips
    sheen = np.where(a > 0, sheen, 0.0).astype(np.float32)
    dark = 1.0 - box @ LUMA
    rgb = layer.rgb.copy()
    rgb[y0 : y0 + h_, x0 : x0 + w_] = np.clip(
        box * f[..., None] + (sheen * dark * dark)[..., None], 0.0, 1.0
    )
    layer.rgb = rgb
    params: dict[str, Any] = info
    layer.params["drape"] = params
