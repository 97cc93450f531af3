"""Per-face photographic statistics the compositor matches occluders to.

Everything here is measured once per face (``face_stats``) and reused for every occluder and
every sample of that face: the low-frequency luminance (the face's shading), the mean colour
and exposure, the direction the light comes from, the sensor noise level and the blur.
Images are float32 on the 0..255 scale, RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Luma weights (Rec. 601), RGB order.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

#: Chromaticity (colour / its mean) of skin under neutral light, for the white-balance
#: estimate: a face redder or bluer than this suggests a coloured illuminant.
NEUTRAL_SKIN_CHROMA = np.array([1.24, 0.95, 0.81], dtype=np.float32)

#: Side of the coarse grid the shading is computed on (the frame is 256 pixels).
_SHADING_GRID = 32

#: Immerkaer's noise-estimation kernel (a Laplacian difference that cancels smooth images).
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclass(frozen=True)
class FaceStats:
    """What the compositor needs to know about one face photo (all float32, 0..255 scale).

    ``shading``: HxW low-frequency luminance of the face's light (extrapolated from the
    face region over hair, clothes and background); ``face_luma``: mean luminance of the central
    face region; ``face_rgb``: its mean colour; ``light_dir``: unit (x, y) vector pointing
    towards the light in image coordinates; ``noise_sigma``: estimated sensor noise (grey
    levels); ``blur_sigma``: estimated Gaussian blur of the photo in pixels.
    """

    shading: np.ndarray
    face_luma: float
    face_rgb: np.ndarray
    light_dir: tuple[float, float]
    noise_sigma: float
    blur_sigma: float


def luminance(img: np.ndarray) -> np.ndarray:
    """HxW float32 luma of an HxWx3 RGB image."""
    return img.astype(np.float32, copy=False) @ LUMA


def noise_sigma(gray: np.ndarray) -> float:
    """Estimate additive noise (grey levels) with Immerkaer's method (1996)."""
    g = gray.astype(np.float32, copy=False)
    h, w = g.shape
    if h < 3 or w < 3:
        return 0.0
    resp = cv2.filter2D(g, cv2.CV_32F, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)
    resp = np.abs(resp[1:-1, 1:-1])
    # Edges inflate the estimate: ignore the strongest 10 % of responses (structure, not noise).
    cut = np.percentile(resp, 90)
    kept = resp[resp <= cut]
    if kept.size == 0:
        return 0.0
    # 0.8237: mean of a half-normal below its 90th percentile, relative to its full mean.
    return float(np.sqrt(np.pi / 2.0) * kept.mean() / (6.0 * 0.8237))


def sharpness_ratio(gray: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Mean squared Laplacian over mean squared gradient: about c / sigma^2 for blur sigma.

    A scale-free variance-of-the-Laplacian measure, so a face and an occluder of different
    contrast can be compared; ``weight`` restricts it to a region (e.g. an occluder's alpha).
    """
    g = gray.astype(np.float32, copy=False)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1)
    grad = gx * gx + gy * gy
    lap2 = lap * lap
    if weight is not None:
        lap2 = lap2 * weight
        grad = grad * weight
    den = float(grad.sum())
    if den <= 1e-6:
        return float("inf")
    return float(lap2.sum()) / den


#: ``sharpness_ratio`` of a blurred edge is about _RATIO_C / (_EDGE_S0_SQ + sigma^2)
#: (calibrated on anti-aliased discs blurred by known sigmas).
_RATIO_C = 0.125
_EDGE_S0_SQ = 0.077


#: Natural images carry texture finer than their blur, which makes ``sharpness_ratio`` read
#: them as sharper than they are: measured on scikit-image's astronaut blurred by known
#: sigmas (1, 1.5, 2 -> read as 0.82, 1.15, 1.43), the true blur is about 1.35x the reading.
_TEXTURE_CORRECTION = 1.35


def blur_sigma_from_ratio(ratio: float, natural: bool = False) -> float:
    """Convert ``sharpness_ratio`` to an approximate Gaussian blur sigma in pixels.

    ``natural``: the ratio was measured on a photo (see ``_TEXTURE_CORRECTION``), not on a
    clean edge.
    """
    if not np.isfinite(ratio) or ratio <= 0:
        return 0.0
    sigma = float(np.sqrt(max(_RATIO_C / ratio - _EDGE_S0_SQ, 0.0)))
    return sigma * _TEXTURE_CORRECTION if natural else sigma


def _face_weights(size: int) -> np.ndarray:
    """Elliptic weight of the central face region on a size x size grid of the frame."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    # The canonical face spans roughly x 70..185, y 60..230 of 256.
    cx, cy = c, c * 1.12
    rx, ry = size * 0.24, size * 0.32
    d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    return np.clip(1.0 - d, 0.0, 1.0)


def face_stats(target: np.ndarray) -> FaceStats:
    """Measure a uint8 (or 0..255 float) HxWx3 RGB face once, for every occluder on it."""
    img = target.astype(np.float32, copy=False)
    h, w = img.shape[:2]
    gray = luminance(img)
    small = cv2.resize(gray, (_SHADING_GRID, _SHADING_GRID), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT)

    wgt = _face_weights(_SHADING_GRID)
    wsum = float(wgt.sum())
    face_luma = float((small * wgt).sum() / wsum)

    # The shading is the *face's* light, not the albedo of hair, clothes or background:
    # weight cells by the face region and by how skin-like their brightness is, and fill
    # the rest by normalised convolution (it extends the face's light smoothly outwards).
    like = np.exp(-(((small - face_luma) / (0.45 * max(face_luma, 1.0))) ** 2))
    sw = (wgt * like).astype(np.float32)
    num = cv2.GaussianBlur(small * sw, (0, 0), 2.5, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(sw, (0, 0), 2.5, borderType=cv2.BORDER_REFLECT)
    filled = num / np.maximum(den, 1e-4)
    conf = np.clip(den / max(float(den.max()), 1e-6) * 3.0, 0.0, 1.0)
    lit = conf * filled + (1.0 - conf) * face_luma
    shading = cv2.resize(lit.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    small_rgb = cv2.resize(img, (_SHADING_GRID, _SHADING_GRID), interpolation=cv2.INTER_AREA)
    face_rgb = (small_rgb * wgt[..., None]).sum(axis=(0, 1)) / wsum

    # Light direction: slope of a plane fitted to the shading over the face region.
    yy, xx = np.mgrid[0:_SHADING_GRID, 0:_SHADING_GRID].astype(np.float32)
    sel = wgt > 0.05
    design = np.stack([np.ones(int(sel.sum()), np.float32), xx[sel], yy[sel]], axis=1)
    ws = np.sqrt(wgt[sel])
    coef, *_ = np.linalg.lstsq(design * ws[:, None], small[sel] * ws, rcond=None)
    gx, gy = float(coef[1]), float(coef[2])
    # Light usually comes from above: bias a weak gradient towards the top.
    gy -= 0.15
    norm = float(np.hypot(gx, gy)) or 1.0
    light_dir = (gx / norm, gy / norm)

    y0, y1, x0, x1 = int(h * 0.25), int(h * 0.92), int(w * 0.25), int(w * 0.75)
    core = gray[y0:y1, x0:x1]
    return FaceStats(
        shading=shading,
        face_luma=max(face_luma, 1.0),
        face_rgb=np.maximum(face_rgb.astype(np.float32), 1.0),
        light_dir=light_dir,
        noise_sigma=noise_sigma(core),
        blur_sigma=blur_sigma_from_ratio(sharpness_ratio(core), natural=True),
    )


def colour_cast(face_rgb: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """Per-channel gain (mean 1) that moves a neutral object towards the scene's illuminant.

    The face's chromaticity is compared with that of skin under neutral light; only the
    difference (the illuminant's tint) is transferred, softened by ``strength``, so a white
    mask picks up a warm or cool cast but never turns skin-coloured.
    """
    chroma = face_rgb / float(face_rgb.mean())
    cast = (chroma / NEUTRAL_SKIN_CHROMA) ** strength
    cast = np.clip(cast / float(cast.mean()), 0.85, 1.15)
    return cast.astype(np.float32)


def exposure_gain(face_luma: float, reference: float = 120.0, strength: float = 0.55) -> float:
    """Global brightness factor for an occluder on a face of mean luma ``face_luma``.

    Under-exposed photos darken objects, over-exposed ones brighten them; softened by
    ``strength`` because part of a face's darkness is its skin tone, not the light.
    """
    return float(np.clip((face_luma / reference) ** strength, 0.45, 1.3))
