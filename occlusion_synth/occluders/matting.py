"""A soft matte and clean edge colours from a binary object mask (for harvested occluders).

A hand-made mask is binary: cutting an object with it leaves a hard, stair-stepped outline
that carries a rim of whatever lay behind the object. ``refine`` turns the mask into a soft
alpha inside a narrow band around its outline (closed-form matting from ``pymatting`` when
that package is installed, else an edge-aware guided filter of the mask by the photo), and
``decontaminate`` estimates the object's own colour at the soft pixels, so the background's
colour does not come along with the cut-out.

Images are float32 RGB in [0, 1]; masks are boolean; every function works on the mask's
bounding box (grown by the band) only.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Matting methods: ``auto`` picks ``pymatting`` when installed, else ``guided``.
METHODS = ("auto", "pymatting", "guided")


def pymatting_available() -> bool:
    """Whether the optional ``pymatting`` package can be imported."""
    try:
        import pymatting  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_method(method: str) -> str:
    """The concrete method ``method`` stands for (``auto`` -> installed best)."""
    if method not in METHODS:
        raise ValueError(f"matting method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        return "pymatting" if pymatting_available() else "guided"
    return method


def _disc(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def trimap(mask: np.ndarray, band: int) -> np.ndarray:
    """float32 trimap: 1 inside the mask eroded by ``band`` px, 0 outside it dilated by
    ``band`` px, 0.5 in between (the pixels whose alpha is estimated)."""
    m = mask.astype(np.uint8)
    inner = cv2.erode(m, _disc(band))
    outer = cv2.dilate(m, _disc(band))
    tri = np.full(m.shape, 0.5, np.float32)
    tri[inner > 0] = 1.0
    tri[outer == 0] = 0.0
    return tri


def _box_mean(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` (HxW) steered by a grey ``guide`` (HxW), after
    He, Sun and Tang's guided filter: a local linear model ``src ~ a * guide + b``."""
    g = guide.astype(np.float32)
    p = src.astype(np.float32)
    mg, mp = _box_mean(g, r), _box_mean(p, r)
    cov = _box_mean(g * p, r) - mg * mp
    var = _box_mean(g * g, r) - mg * mg
    a = cov / (var + eps)
    b = mp - a * mg
    return _box_mean(a, r) * g + _box_mean(b, r)


def _bbox(mask: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (
        max(int(xs.min()) - pad, 0),
        max(int(ys.min()) - pad, 0),
        min(int(xs.max()) + pad + 1, w),
        min(int(ys.max()) + pad + 1, h),
    )


def refine(image: np.ndarray, mask: np.ndarray, band: int = 2, method: str = "auto") -> np.ndarray:
    """Soft alpha (HxW float32 in [0, 1]) from a binary ``mask`` of an object in ``image``.

    Only pixels within ``band`` px of the mask's outline get a fractional value; deeper
    inside the alpha is 1, further outside 0. ``method``: see ``METHODS``.
    """
    method = resolve_method(method)
    alpha = np.zeros(mask.shape, np.float32)
    if not mask.any():
        return alpha
    band = max(int(band), 1)
    x0, y0, x1, y1 = _bbox(mask, 3 * band + 4)
    img = np.ascontiguousarray(image[y0:y1, x0:x1], np.float32)
    m = mask[y0:y1, x0:x1]
    tri = trimap(m, band)
    if method == "pymatting":
        from pymatting import estimate_alpha_cf

        a = estimate_alpha_cf(img.astype(np.float64), tri.astype(np.float64))
        a = np.asarray(a, np.float32)
    else:
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        a = guided_filter(grey, m.astype(np.float32), max(band, 2), 1e-3)
    a = np.clip(a, 0.0, 1.0)
    a[tri == 1.0] = 1.0
    a[tri == 0.0] = 0.0
    a[a < 1.0 / 255] = 0.0
    alpha[y0:y1, x0:x1] = a
    return alpha


def _spread(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: ``values`` (HxWx3) averaged over the pixels of ``weight``,
    reaching out about ``sigma`` px and further at coarser scales (no gaps left)."""
    out = np.zeros_like(values)
    have = np.zeros(weight.shape, np.float32)
    for s in (sigma, 3 * sigma, 9 * sigma):
        num = cv2.GaussianBlur(values * weight[..., None], (0, 0), s)
        den = cv2.GaussianBlur(weight, (0, 0), s)
        est = num / np.maximum(den, 1e-6)[..., None]
        take = ((den > 1e-4) & (have == 0)).astype(np.float32)
        out += est * take[..., None]
        have = np.maximum(have, take)
    return out


def decontaminate(image: np.ndarray, alpha: np.ndarray, method: str = "auto") -> np.ndarray:
    """The object's own colour (HxWx3 float32 in [0, 1]) where ``alpha`` is soft.

    ``image = alpha * F + (1 - alpha) * B``: ``pymatting``'s multilevel foreground
    estimation solves it when installed; otherwise ``B`` is spread in from the clear
    background, ``F`` solved from it where alpha is large and spread in from the solid
    interior where alpha is small. Solid pixels keep their colour; fully clear ones keep
    the photo's (they are invisible).
    """
    method = resolve_method(method)
    out = np.array(image, np.float32, copy=True)
    soft = (alpha > 0) & (alpha < 1)
    if not soft.any():
        return out
    x0, y0, x1, y1 = _bbox(alpha > 0, 8)
    img = np.ascontiguousarray(image[y0:y1, x0:x1], np.float32)
    a = alpha[y0:y1, x0:x1]
    if method == "pymatting":
        from pymatting import estimate_foreground_ml

        fg = np.asarray(estimate_foreground_ml(img.astype(np.float64), a.astype(np.float64)))
        fg = np.clip(fg, 0.0, 1.0).astype(np.float32)
    else:
        solid = (a >= 0.98).astype(np.float32)
        clear = (a <= 0.02).astype(np.float32)
        f_in = _spread(img, solid, 2.0) if solid.any() else img
        bg = _spread(img, clear, 2.0) if clear.any() else img
        a3 = a[..., None]
        solved = np.clip((img - (1 - a3) * bg) / np.maximum(a3, 1e-3), 0.0, 1.0)
        w = a3 * a3  # trust the solution where the object dominates the pixel
        fg = w * solved + (1 - w) * f_in
    s = soft[y0:y1, x0:x1]
    region = out[y0:y1, x0:x1]
    region[s] = fg[s]
    return out


def edge_softness(alpha: np.ndarray) -> float:
    """Mean width (px) of the soft band: fractional pixels per pixel of outline length."""
    soft = int(((alpha > 0.02) & (alpha < 0.98)).sum())
    solid = (alpha >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(solid, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    length = sum(cv2.arcLength(c, True) for c in contours)
    return float(soft / length) if length > 0 else 0.0
