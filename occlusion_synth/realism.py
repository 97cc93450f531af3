"""Per-face photographic statistics the compositor matches occluders to.

Everything here is measured once per face (``face_stats``) and reused for every occluder and
every sample of that face: the low-frequency luminance (the face's shading), the mean colour
and exposure, the direction the light comes from, the sensor noise level and the blur.
Images are float32 on the 0..255 scale, RGB.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

#: Luma weights (Rec. 601), RGB order.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

#: Chromaticity (colour / its mean) of skin under neutral light, for the white-balance
#: estimate: a face redder or bluer than this suggests a coloured illuminant.
NEUTRAL_SKIN_CHROMA = np.array([1.24, 0.95, 0.81], dtype=np.float32)
#: Bounds of a channel's cast gain: wide enough for a stage's orange or a screen's blue
#: light (a grey mask kept grey under it reads as pasted on), narrow enough that a skin
#: tone's own redness never paints a white mask pink.
CAST_RANGE = (0.72, 1.35)

#: Side of the coarse grid the shading is computed on (the frame is 256 pixels).
_SHADING_GRID = 32

#: Immerkaer's noise-estimation kernel (a Laplacian difference that cancels smooth images).
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclass(frozen=True)
class FaceStats:
    """What the compositor needs to know about one face photo (all float32, 0..255 scale).

    ``shading``: HxW low-frequency luminance of the face's light (extrapolated from the
    face region over hair, clothes and background); ``face_luma``: mean luminance of the central
    face region; ``face_rgb``: its mean colour; ``scene_rgb``: the mean colour of the rest of
    the frame (hair, clothes, background); ``light_dir``: unit (x, y) vector pointing
    towards the light in image coordinates; ``noise_sigma``: estimated sensor noise (grey
    levels); ``blur_sigma``: estimated Gaussian blur of the photo in pixels.
    ``source_scale``: frame pixels per source pixel of an upsampled photo (else 1): then the
    noise is measured at the source's resolution (grey levels per source pixel) and the
    blur is the source's own, in frame pixels: what the photo had before it was upsampled.
    """

    shading: np.ndarray
    face_luma: float
    face_rgb: np.ndarray
    scene_rgb: np.ndarray
    light_dir: tuple[float, float]
    noise_sigma: float
    blur_sigma: float
    source_scale: float = 1.0


def luminance(img: np.ndarray) -> np.ndarray:
    """HxW float32 luma of an HxWx3 RGB image."""
    img = np.ascontiguousarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        return img @ LUMA
    return cv2.transform(img, LUMA[None])  # one pass, 2x faster than a matmul


def noise_sigma(gray: np.ndarray) -> float:
    """Estimate additive noise (grey levels) with Immerkaer's method (1996)."""
    g = gray.astype(np.float32, copy=False)
    h, w = g.shape
    if h < 3 or w < 3:
        return 0.0
    resp = cv2.filter2D(g, cv2.CV_32F, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)
    resp = np.abs(resp[1:-1, 1:-1]).ravel()
    # Edges inflate the estimate: ignore the strongest 10 % of responses (structure, not noise).
    # The responses at or below the (linearly interpolated) 90th percentile are those at or
    # below the order statistic k = floor(0.9 (n - 1)): one partition, no sort.
    k = int(0.9 * (resp.size - 1))
    part = np.partition(resp, k)
    cut = part[k]
    ties = part[k + 1 :]
    extra = int(np.count_nonzero(ties == cut))
    kept_sum = float(part[: k + 1].sum(dtype=np.float64)) + extra * float(cut)
    # 0.8237: mean of a half-normal below its 90th percentile, relative to its full mean.
    return float(np.sqrt(np.pi / 2.0) * (kept_sum / (k + 1 + extra)) / (6.0 * 0.8237))


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


@functools.lru_cache(maxsize=1)
def _grid() -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """The shading grid's face weights, their sum, and the weighted least-squares fit of a
    plane (1, x, y) over the face region as a (3, N) projector of the cells ``sel``."""
    wgt = _face_weights(_SHADING_GRID)
    yy, xx = np.mgrid[0:_SHADING_GRID, 0:_SHADING_GRID].astype(np.float32)
    sel = wgt > 0.05
    design = np.stack([np.ones(int(sel.sum()), np.float32), xx[sel], yy[sel]], axis=1)
    ws = np.sqrt(wgt[sel]).astype(np.float64)
    fit = np.linalg.pinv(design.astype(np.float64) * ws[:, None]) * ws[None, :]
    for a in (wgt, sel, fit):
        a.setflags(write=False)
    return wgt, float(wgt.sum()), sel, fit


#: Above this ``source_scale`` a face counts as upsampled (noise and blur measured at source).
UPSAMPLED = 1.05
#: Noise measured on an upsampled photo brought back to its source's grid reads about half
#: its true level (the round trip smooths the finest grain): measured on i.i.d. noise
#: upsampled cubically by 1.5 to 4 and area-downsampled back, true / read = 1.7 to 2.45.
_RESAMPLED_NOISE = 2.0


def _core_luma(img: np.ndarray, scale: float) -> np.ndarray:
    """Luma of the face's core (the middle half across, a quarter to 92 % down), where noise
    and blur are measured; for an upsampled photo (``scale`` > 1) area-averaged back to the
    source's pixel grid. Only the core is converted and resampled, not the whole frame."""
    h, w = img.shape[:2]
    if scale > 1.0:  # the core's box on the source's grid, and the frame pixels it spans
        sw, sh = max(int(round(w / scale)), 8), max(int(round(h / scale)), 8)
        y0, y1, x0, x1 = int(sh * 0.25), int(sh * 0.92), int(sw * 0.25), int(sw * 0.75)
        fy, fx = h / sh, w / sw
        ya, yb = int(round(y0 * fy)), int(round(y1 * fy))
        xa, xb = int(round(x0 * fx)), int(round(x1 * fx))
        gray = luminance(img[ya:yb, xa:xb])
        return cv2.resize(gray, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    y0, y1, x0, x1 = int(h * 0.25), int(h * 0.92), int(w * 0.25), int(w * 0.75)
    return luminance(img[y0:y1, x0:x1])


def face_stats(target: np.ndarray, source_scale: float = 1.0) -> FaceStats:
    """Measure a uint8 (or 0..255 float) HxWx3 RGB face once, for every occluder on it.

    ``source_scale`` (frame pixels per source pixel): for an upsampled photo (CelebA at half
    size: 2.9) noise and blur are measured on the face brought back to the source's
    resolution; measured on the upsampled frame they read far too low (its grain spans
    several pixels), and an occluder matched to them stays clean and crisp."""
    img = np.asarray(target).astype(np.float32, copy=False)
    h, w = img.shape[:2]
    wgt, wsum, sel, fit = _grid()
    # the coarse grid's colour; its luma is the luma of the frame area-averaged (both linear)
    small_rgb = cv2.resize(img, (_SHADING_GRID, _SHADING_GRID), interpolation=cv2.INTER_AREA)
    small = luminance(small_rgb)
    face_rgb = (small_rgb * wgt[..., None]).sum(axis=(0, 1)) / wsum
    scene_rgb = small_rgb[wgt == 0].mean(axis=0)
    small = cv2.GaussianBlur(small, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT)
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

    # Light direction: slope of a plane fitted to the shading over the face region.
    coef = fit @ small[sel].astype(np.float64)
    gx, gy = float(coef[1]), float(coef[2])
    # Light usually comes from above: bias a weak gradient towards the top.
    gy -= 0.15
    norm = float(np.hypot(gx, gy)) or 1.0
    light_dir = (gx / norm, gy / norm)

    scale = float(source_scale) if source_scale > UPSAMPLED else 1.0
    core = _core_luma(img, scale)
    return FaceStats(
        shading=shading,
        face_luma=max(face_luma, 1.0),
        face_rgb=np.maximum(face_rgb.astype(np.float32), 1.0),
        scene_rgb=np.maximum(scene_rgb.astype(np.float32), 1.0),
        light_dir=light_dir,
        noise_sigma=noise_sigma(core) * (_RESAMPLED_NOISE if scale > 1.0 else 1.0),
        blur_sigma=blur_sigma_from_ratio(sharpness_ratio(core), natural=True) * scale,
        source_scale=scale,
    )


def colour_cast(face_rgb: np.ndarray, scene_rgb: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """Per-channel gain (mean 1) that moves a neutral object towards the scene's illuminant.

    The face's chromaticity is compared with that of skin under neutral light; the difference
    is the illuminant's tint only as far as the rest of the frame (``scene_rgb``, grey-world)
    leans the same way. A channel where the two disagree gets no cast, and one where they
    agree the smaller of the two: a ruddy or olive complexion in a neutral scene leaves a
    white mask white, while an orange stage or a blue screen light tints everything. Softened
    by ``strength``, so a white mask never turns skin-coloured.
    """
    skin = np.log(face_rgb / float(face_rgb.mean()) / NEUTRAL_SKIN_CHROMA)
    grey = np.log(scene_rgb / float(scene_rgb.mean()))
    agree = np.sign(skin) == np.sign(grey)
    tint = np.where(agree, np.sign(skin) * np.minimum(np.abs(skin), np.abs(grey)), 0.0)
    cast = np.exp(strength * tint)
    cast = np.clip(cast / float(cast.mean()), *CAST_RANGE)
    return cast.astype(np.float32)


def exposure_gain(face_luma: float, reference: float = 120.0, strength: float = 0.55) -> float:
    """Global brightness factor for an occluder on a face of mean luma ``face_luma``.

    Under-exposed photos darken objects, over-exposed ones brighten them; softened by
    ``strength`` because part of a face's darkness is its skin tone, not the light.
    """
    return float(np.clip((face_luma / reference) ** strength, 0.45, 1.3))


#: How far beyond the face oval (inter-ocular distances) hair may cover an occluder.
HAIR_REACH_IOD = 0.9
#: Faces turned further than this (``placement.estimate_yaw``) get no hair estimate.
HAIR_MAX_YAW = 0.4
#: Widening of the ellipse fitted through the named points (without the dense mesh).
OVAL_WIDEN = 1.12
#: Least Lab distance between the hair colour and the skin's / the background's for hair to
#: be told apart at all (else no hair is estimated).
HAIR_CONTRAST = 10.0


def face_oval(landmarks, shape: tuple[int, int]) -> np.ndarray:
    """uint8 map (0/1) of the face inside its outline: the Face Mesh oval when the dense mesh
    is there, else an ellipse fitted through the jaw, chin, forehead and temples (the named
    points, which CelebA's five annotations are extended to from the canonical mean shape),
    widened by ``OVAL_WIDEN`` (those points lie inside the outline)."""
    from occlusion_synth.placement import _FACE_OVAL

    lm = landmarks
    out = np.zeros(shape, np.uint8)
    if lm.dense is not None:
        pts = np.rint(lm.dense[list(_FACE_OVAL)]).astype(np.int32)
        cv2.fillPoly(out, [pts], 1)
        return out
    bl, br = lm["brow_left"], lm["brow_right"]
    pts = np.array(
        [lm["jaw_left"], lm["jaw_right"], lm["chin"], lm["forehead"],
         bl + 0.3 * (bl - br), br + 0.3 * (br - bl)],
        np.float32,
    )  # fmt: skip
    (cx, cy), (ew, eh), ang = cv2.fitEllipse(pts)
    cv2.ellipse(out, ((cx, cy), (ew * OVAL_WIDEN, eh * 1.02), ang), 1, -1)
    return out


def _dist2(lab: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared Lab distance of every pixel of ``lab`` (HxWx3 float32) from colour ``c``."""
    d = cv2.subtract(lab, tuple(float(v) for v in c) + (0.0,))
    return cv2.transform(cv2.multiply(d, d), np.ones((1, 3), np.float32))


def hair_cover(image: np.ndarray, landmarks) -> np.ndarray:
    """HxW float32 in [0, 1]: where hair hangs beside the face, in front of anything worn
    there (ear loops, straps, glasses temples).

    Estimated once per face, cheaply and deterministically: a colour model of the hair just
    above the face oval (median Lab) against the skin's and the background's (the frame's
    top corners), applied only in a band beside the face oval between the brows and the
    mouth (where loops and temples run; hair over the forehead is left alone, caps and
    glasses sit on it). All zeros for a face turned past ``HAIR_MAX_YAW``, and when the
    hair's colour cannot be told from the skin's or the background's (bald heads, hair the
    colour of the wall behind)."""
    from occlusion_synth.placement import estimate_yaw

    lm = landmarks
    h, w = image.shape[:2]
    empty = np.zeros((h, w), np.float32)
    if abs(estimate_yaw(lm)) > HAIR_MAX_YAW:  # a turned face's outline is not known well
        return empty
    iod = max(float(lm.inter_ocular), 10.0)
    oval = face_oval(lm, (h, w))
    if not oval.any():
        return empty
    r = max(int(round(HAIR_REACH_IOD * iod)), 2)
    ring = (cv2.distanceTransform(1 - oval, cv2.DIST_L2, 3) <= r).view(np.uint8)
    x0, y0, bw, bh = cv2.boundingRect(ring)
    ring = (ring[y0 : y0 + bh, x0 : x0 + bw] & (1 - oval[y0 : y0 + bh, x0 : x0 + bw])).view(bool)
    inside = oval[y0 : y0 + bh, x0 : x0 + bw].view(bool)
    crop = image[y0 : y0 + bh, x0 : x0 + bw]
    # height along the face's own vertical: 0 at the brows, 1 at the mouth
    u = np.array([np.cos(lm.roll), np.sin(lm.roll)])
    brow = (lm["brow_left"] + lm["brow_right"]) / 2 - (x0, y0)
    mouth = (lm["mouth_left"] + lm["mouth_right"]) / 2 - (x0, y0)
    span = max(float(np.dot(mouth - brow, (-u[1], u[0]))), 1.0)
    ys = (np.arange(bh, dtype=np.float32) - brow[1]) * np.float32(u[0])
    xs = (np.arange(bw, dtype=np.float32) - brow[0]) * np.float32(-u[1])
    below = np.add(xs[None, :], ys[:, None])
    below /= np.float32(span)
    top = ring & (below < -0.5)
    side = ring & (below > 0.0) & (below < 1.0)
    skin_px = inside & (below > 0.45) & (below < 0.9)
    if np.count_nonzero(top) < 30 or np.count_nonzero(skin_px) < 30 or not side.any():
        return empty
    # Lab only over the boxes of the pixels read (a per-pixel conversion: the same values)
    lab_top, in_top = _lab_box(crop, top)
    hair = _median_lab(lab_top, in_top)
    skin = _median_lab(*_lab_box(crop, skin_px))
    corners = np.concatenate([image[:8, :8].reshape(-1, 3), image[:8, -8:].reshape(-1, 3)])
    bg = np.median(_lab(corners[None])[0].astype(np.float32), axis=0)
    if min(float(np.hypot.reduce(hair - skin)), float(np.hypot.reduce(hair - bg))) < HAIR_CONTRAST:
        return empty
    spread = float(np.median(np.sqrt(_dist2(lab_top.astype(np.float32), hair)[in_top])))
    sx, sy, sw, sh = cv2.boundingRect(side.view(np.uint8))
    px = _lab(crop[sy : sy + sh, sx : sx + sw]).astype(np.float32)
    d_h = _dist2(px, hair)
    # clearly closer to the hair's colour than to the skin's or the background's
    is_hair = side[sy : sy + sh, sx : sx + sw] & (d_h < max(2.5 * spread, 15.0) ** 2)
    is_hair &= d_h < 0.5 * _dist2(px, skin)
    is_hair &= d_h < 0.5 * _dist2(px, bg)
    m = cv2.morphologyEx(is_hair.view(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    # The soft edge (a Gaussian of sigma 1: OpenCV's kernel reaches 4 px) over the side box
    # and twice that reach around it, clipped to the ring's box: every pixel further out stays
    # zero, and the blur at the ring box's own border reflects as it would over the whole box.
    r = 8
    bx0, by0 = max(sx - r, 0), max(sy - r, 0)
    bx1, by1 = min(sx + sw + r, bw), min(sy + sh + r, bh)
    soft = np.zeros((by1 - by0, bx1 - bx0), np.float32)
    soft[sy - by0 : sy - by0 + sh, sx - bx0 : sx - bx0 + sw] = m
    soft = cv2.GaussianBlur(soft, (0, 0), 1.0)
    soft *= ring[by0:by1, bx0:bx1]
    empty[y0 + by0 : y0 + by1, x0 + bx0 : x0 + bx1] = soft
    return empty


def _lab(rgb: np.ndarray) -> np.ndarray:
    """Lab (OpenCV's scaling for the input's dtype) of an HxWx3 RGB image."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab)


def _lab_box(rgb: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lab of ``rgb`` over the bounding box of the bool map ``where``, and ``where`` there."""
    x, y, w, h = cv2.boundingRect(where.view(np.uint8))
    return _lab(rgb[y : y + h, x : x + w]), where[y : y + h, x : x + w]


def _median_lab(lab: np.ndarray, where: np.ndarray) -> np.ndarray:
    """float32 median of each channel of ``lab`` where ``where`` is set, as ``np.median(
    lab[where], axis=0)``; for 8-bit Lab from a histogram of each channel (no sorting)."""
    if lab.dtype != np.uint8:
        return np.median(lab[where].astype(np.float32), axis=0)
    mask = where.view(np.uint8)
    n = int(np.count_nonzero(mask))
    out = np.empty(3, np.float32)
    for c in range(3):
        cum = np.cumsum(cv2.calcHist([lab], [c], mask, [256], [0, 256])[:, 0])
        lo = np.searchsorted(cum, (n - 1) // 2, side="right")
        hi = np.searchsorted(cum, n // 2, side="right")
        out[c] = (np.float32(lo) + np.float32(hi)) / np.float32(2)
    return out
