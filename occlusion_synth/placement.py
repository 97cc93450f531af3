"""Landmark-anchored placement: an occluder asset warped into the canonical 256x256 frame.

Rules (named in each sidecar's ``placement.rule``):

- ``eyewear``: lens centres onto the eyes; width from the inter-ocular distance, height from
  the eye-to-mouth distance, rotated with the eye line. Head yaw (from the nose tip's offset)
  turns a frame bent on an arc in front of the eyes: the far lens narrows and moves towards
  the near one, the near one widens, and the far temple ends at the face outline.
- ``face_warp``: masks and scarves; a thin-plate spline through the landmark anchors (nose
  bridge, nose tip, mouth corners, chin, jaw) maps the asset onto the face.
- ``from_edge`` / ``from_below`` / ``from_above``: hands, phones, microphones, cups, caps;
  a similarity puts the asset's ``target`` anchor on a target region with its ``entry``
  anchor pointing at an image edge. The asset's border row at the entry is replicated, so an
  arm or a handle continues until the image edge clips it (a cap is drawn whole with a clear
  border, so it sits on the head at its own size and nothing is replicated). A harvested
  prop, cut by its photo's edge anywhere, has only its entry end run on, along the entry
  direction (``_extrude``), never its other borders.

Warps run on premultiplied colour over the bounding box only, from a mip level near the
output scale (so downscaling is anti-aliased), with bilinear filtering.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .boxes import points_box
from .canonical import CANONICAL_SIZE, MEAN_SHAPE, Landmarks
from .layers import Layer
from .occluders.library import Occluder
from .occluders.schema import Range

S = CANONICAL_SIZE
#: Direction from the target towards each entry edge; arms reach the side edges from below.
EDGE_DIRS = {"bottom": (0.0, 1.0), "top": (0.0, -1.0), "left": (-0.8, 0.6), "right": (0.8, 0.6)}
_MEAN_FACE_RATIO = float(
    np.linalg.norm(
        (np.add(MEAN_SHAPE["mouth_left"], MEAN_SHAPE["mouth_right"]) / 2)
        - (np.add(MEAN_SHAPE["left_eye"], MEAN_SHAPE["right_eye"]) / 2)
    )
    / np.linalg.norm(np.subtract(MEAN_SHAPE["right_eye"], MEAN_SHAPE["left_eye"]))
)
_MEAN_YAW = float(
    (MEAN_SHAPE["nose_tip"][0] - (MEAN_SHAPE["left_eye"][0] + MEAN_SHAPE["right_eye"][0]) / 2)
    / (MEAN_SHAPE["right_eye"][0] - MEAN_SHAPE["left_eye"][0])
)


# -- landmarks helpers ---------------------------------------------------------------------
def target_point(lm: Landmarks, name: str) -> np.ndarray:
    """A named target region's centre in the frame (see ``schema.TARGET_NAMES``)."""
    if name == "eyes":
        return (lm["left_eye"] + lm["right_eye"]) / 2
    if name == "mouth":
        return (lm["mouth_left"] + lm["mouth_right"]) / 2
    if name == "brows":
        return (lm["brow_left"] + lm["brow_right"]) / 2
    if name in ("cheek_left", "cheek_right"):
        s = name.split("_")[1]
        return 0.35 * lm[f"{s}_eye"] + 0.35 * lm[f"mouth_{s}"] + 0.3 * lm[f"jaw_{s}"]
    return lm[name]


def estimate_yaw(lm: Landmarks) -> float:
    """Head yaw in [-1, 1] from the nose tip's offset along the eye line (+: turned right,
    i.e. the image-right side of the face is the far side)."""
    return float(np.clip(_nose_offset(lm) * 2.5, -1.0, 1.0))


def _nose_offset(lm: Landmarks) -> float:
    """The nose tip's offset along the eye line from the eyes' midpoint, in inter-ocular
    units, relative to the mean shape's (0 for a frontal face)."""
    return _points_offset(lm["left_eye"], lm["right_eye"], lm["nose_tip"])


def _points_offset(left_eye, right_eye, nose_tip) -> float:
    """``_nose_offset`` of three points (any coordinates)."""
    left, right, nose = (np.asarray(p, np.float64) for p in (left_eye, right_eye, nose_tip))
    d = right - left
    iod = max(float(np.linalg.norm(d)), 1e-6)
    return float(np.dot(nose - (left + right) / 2, d / iod)) / iod - _MEAN_YAW


#: The mean face's mouth width in inter-ocular units (a nose offset along the mouth line,
#: in mouth widths, times this is one in IODs).
_MOUTH_PER_IOD = float(
    np.linalg.norm(np.subtract(MEAN_SHAPE["mouth_right"], MEAN_SHAPE["mouth_left"]))
    / np.linalg.norm(np.subtract(MEAN_SHAPE["right_eye"], MEAN_SHAPE["left_eye"]))
)

#: Largest difference of yaw (``estimate_yaw`` units) between the face a harvested
#: face-worn occluder was cut from and the face it goes on: beyond it the warp folds the
#: cut-out (a mask photographed from the front does not wrap a profile).
MAX_POSE_GAP = 0.35


def source_yaw(occ: Occluder) -> float | None:
    """``estimate_yaw`` of the face a harvested face-worn occluder was cut from (from its
    anchors; 0, frontal, when it has no eye and nose anchors), or None for a drawn one."""
    pts = occ.anchors.points
    if occ.harvest is None or occ.placement.rule != "face_warp":
        return None
    pairs = (("left_eye", "right_eye", 1.0), ("mouth_left", "mouth_right", _MOUTH_PER_IOD))
    for left, right, unit in pairs:  # the eyes, else the mouth corners
        if {left, right, "nose_tip"} <= pts.keys():
            offset = _points_offset(pts[left], pts[right], pts["nose_tip"]) * unit
            return float(np.clip(offset * 2.5, -1.0, 1.0))
    return 0.0


def pose_fits(occ: Occluder, lm: Landmarks, yaw: float | None = None) -> bool:
    """Whether ``occ`` can be warped onto the face of ``lm`` (``yaw``: its ``estimate_yaw``,
    when already known): a drawn occluder when the face is turned at most its category's
    ``max_yaw``, a harvested face-worn one when the two faces are turned alike
    (``MAX_POSE_GAP``)."""
    own = source_yaw(occ)
    limit = occ.traits.max_yaw if occ.harvest is None else None
    if own is None and limit is None:
        return True
    yaw = estimate_yaw(lm) if yaw is None else yaw
    if own is not None:
        return abs(yaw - own) <= MAX_POSE_GAP
    return abs(yaw) <= limit


def outline_region(alpha: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """The area inside a layer's outline: ``alpha > threshold`` with enclosed holes filled.

    A clear lens has zero alpha but lies inside its frame, so this is the region used to ask
    whether an eye is behind a pair of eyeglasses.
    """
    solid = (alpha > threshold).astype(np.uint8)
    pad = np.pad(solid, 1)
    flood = pad.copy()
    mask = np.zeros((pad.shape[0] + 2, pad.shape[1] + 2), np.uint8)
    cv2.floodFill(flood, mask, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return solid.astype(bool) | holes


# -- per-asset precomputation ------------------------------------------------------------
def _prepare(occ: Occluder) -> dict[str, Any]:
    """Premultiplied mip levels and a contact map, computed once per asset and process."""
    if "levels" in occ.cache:
        return occ.cache
    rgba = occ.rgba.astype(np.float32) / 255.0
    a = rgba[..., 3:4]
    prem = np.concatenate([rgba[..., :3] * a, a], axis=2)
    contact = np.zeros(occ.rgba.shape[:2], np.float32)
    spec = occ.material.contact
    for x, y, r in spec.points:
        cv2.circle(contact, (int(round(x)), int(round(y))), max(1, int(round(r))), 1.0, -1)
    if contact.any():
        contact = cv2.GaussianBlur(contact, (0, 0), 3)
    edge = spec.edge_px
    if edge > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * edge + 1, 2 * edge + 1))
        inner = cv2.erode(a[..., 0], k)
        contact = np.maximum(contact, np.clip(a[..., 0] - inner, 0, 1))
    contact *= a[..., 0]
    levels = []
    img, con = prem, contact
    while True:
        levels.append((np.round(img * 255).astype(np.uint8), np.round(con * 255).astype(np.uint8)))
        if max(img.shape[:2]) < 96:
            break
        h, w = img.shape[:2]
        img = cv2.resize(img, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        con = cv2.resize(con, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(occ.rgba[..., 3])
    occ.cache["levels"] = levels
    occ.cache["has_contact"] = bool(contact.max() > 0.01)
    occ.cache["bbox"] = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    return occ.cache


def _det_scale(m: np.ndarray) -> float:
    """Area scale factor of a 2x2 linear map (sqrt of |det|), without LAPACK."""
    return float(np.sqrt(abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0])))


def _level_for(scale: float, n_levels: int) -> int:
    """The mip level whose pixels are at most ~1.6x output pixels (bilinear stays smooth)."""
    lvl = int(np.floor(np.log2(max(1.0 / max(scale, 1e-6), 1.0) / 1.6))) + 1 if scale < 0.625 else 0
    return int(np.clip(lvl, 0, n_levels - 1))


def _level_matrix(level: int) -> np.ndarray:
    """3x3 map from level-``level`` pixel coords to level-0 pixel coords (pixel centres)."""
    f = float(2**level)
    return np.array([[f, 0, 0.5 * f - 0.5], [0, f, 0.5 * f - 0.5], [0, 0, 1]])


def _to_layer(occ: Occluder, prem: np.ndarray, con: np.ndarray | None, box, params) -> Layer:
    x0, y0, x1, y1 = box
    rgb = np.zeros((S, S, 3), np.float32)
    alpha = np.zeros((S, S), np.float32)
    contact = np.zeros((S, S), np.float32)
    if x1 > x0 and y1 > y0:
        a8 = prem[..., 3:4]
        a = a8[..., 0].astype(np.float32) * np.float32(1.0 / 255.0)
        # straight colour = premultiplied / alpha; both in 0..255 so the scale cancels
        rgb[y0:y1, x0:x1] = np.minimum(
            prem[..., :3].astype(np.float32) / np.maximum(a8, 1).astype(np.float32), 1.0
        )
        alpha[y0:y1, x0:x1] = a
        if con is not None:
            contact[y0:y1, x0:x1] = np.minimum(con.astype(np.float32) * np.float32(1 / 255), a)
    return Layer(
        rgb=rgb,
        alpha=alpha,
        name=occ.name,
        category=occ.category,
        contact=contact,
        gloss=occ.material.gloss,
        params=params,
    )


def _warp_affine(occ: Occluder, M: np.ndarray, extend: bool, params: dict) -> Layer:
    """Warp with a 2x3 affine ``M`` (asset level-0 pixels -> frame)."""
    cache = _prepare(occ)
    scale = _det_scale(M[:2, :2])
    lvl = _level_for(scale, len(cache["levels"]))
    img, con = cache["levels"][lvl]
    M33 = np.vstack([M, [0, 0, 1]])
    M3 = M33 @ _level_matrix(lvl)
    bx0, by0, bx1, by1 = cache["bbox"]
    corners = np.array([[bx0, by0, 1], [bx1, by0, 1], [bx0, by1, 1], [bx1, by1, 1]]).T
    pts = (M33 @ corners)[:2].T
    if extend:  # the replicated border row runs on along the asset's entry direction
        far = np.array(params.get("entry_dir", (0.0, 0.0))) * 2 * S
        pts = np.vstack([pts, pts + far])
    box = points_box(pts, S)
    x0, y0, x1, y1 = box
    params["level"] = lvl
    if x1 <= x0 or y1 <= y0:
        return _to_layer(occ, img[:0, :0], None, box, params)
    T = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ M3
    # A drawn prop's arm is cut straight along its entry border row, so replicating the
    # border runs it on to the edge; a harvested one is cut anywhere (by its photo's edge),
    # so only its end is extruded, along the entry direction (``_extrude``).
    along = extend and occ.harvest is not None
    border = cv2.BORDER_REPLICATE if extend and not along else cv2.BORDER_CONSTANT
    size = (x1 - x0, y1 - y0)
    prem = cv2.warpAffine(img, T[:2], size, flags=cv2.INTER_LINEAR, borderMode=border)
    if along:
        prem = _extrude(occ, lvl, img, T, prem)
    c = None
    if cache["has_contact"]:
        c = cv2.warpAffine(con, T[:2], size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return _to_layer(occ, prem, c, box, params)


#: The part of an extended harvested prop that runs on to the image edge: silhouette points
#: within this share of its length (along the entry direction) of its entry end.
END_BAND = 0.35
#: Largest step (px per 1 px line) between the ends of neighbouring lines along one cut.
MAX_STEP = 2.5
#: A harvested hand's forearm is at least this share of the hand's width across its entry
#: direction (its photo often cuts it at the fingers or the wrist's edge, a narrow cut),
#: rounded: darker towards its sides by ``ARM_ROUND``.
ARM_SHARE = 0.55
ARM_ROUND = 0.3


def _end_profile(occ: Occluder, lvl: int, img: np.ndarray) -> dict[str, np.ndarray]:
    """The entry end of an asset's silhouette at mip level ``lvl``, once per asset and level.

    Along the entry direction ``d`` (asset ``target`` -> ``entry``), each line across it
    (1 px bins of ``r``, the coordinate along ``n``, perpendicular) ends at its solid pixel
    furthest along ``d`` (``s_end``). The lines of the cut carry that pixel's colour on, the
    others nothing: from the furthest end, neighbouring lines whose ends join it (steps of
    at most ``MAX_STEP``) and lie within ``END_BAND`` of the silhouette's entry end."""
    key = ("end_profile", lvl)
    if key in occ.cache:
        return occ.cache[key]
    d = np.asarray(occ.anchors["entry"], np.float64) - np.asarray(occ.anchors["target"])
    d /= max(float(np.linalg.norm(d)), 1e-9)
    n = np.array([-d[1], d[0]])
    a = img[..., 3]
    ys, xs = np.nonzero(a >= 250)
    if len(xs) == 0:
        ys, xs = np.nonzero(a >= 128)
    s = xs * d[0] + ys * d[1]
    r = np.rint(xs * n[0] + ys * n[1]).astype(np.int64)
    rmin = int(r.min())
    order = np.lexsort((s, r))  # by bin, then along d: each bin's last is its end
    last = np.r_[np.nonzero(np.diff(r[order]))[0], len(order) - 1]
    ends = order[last]
    nb = int(r.max()) - rmin + 1
    s_end = np.full(nb, float(s.max()), np.float64)
    prem = np.zeros((nb, 4), np.float64)
    s_end[r[ends] - rmin] = s[ends]
    px = img[ys[ends], xs[ends]].astype(np.float64)
    px[:, :3] *= 255.0 / np.maximum(px[:, 3:4], 1.0)  # solid: full alpha
    px[:, 3] = 255.0
    filled = np.zeros(nb, bool)
    filled[r[ends] - rmin] = True
    prem_all = np.zeros((nb, 4), np.float64)
    prem_all[r[ends] - rmin] = px
    # the cut: the run of lines around the furthest end whose ends join up (a straight or
    # slanted cut), stopping at a jump (a thumb or finger beside the arm ends elsewhere)
    near = filled & (s_end >= s.max() - END_BAND * (s.max() - s.min()))
    i0 = int(np.argmax(np.where(filled, s_end, -np.inf)))
    lo = hi = i0
    while lo > 0 and near[lo - 1] and abs(s_end[lo - 1] - s_end[lo]) <= MAX_STEP:
        lo -= 1
    while hi < nb - 1 and near[hi + 1] and abs(s_end[hi + 1] - s_end[hi]) <= MAX_STEP:
        hi += 1
    if occ.traits.skin_tint:
        lo, hi, arm = _forearm(prem_all[lo : hi + 1][filled[lo : hi + 1]], lo, hi, nb)
        prem[lo : hi + 1] = arm
    else:
        prem[lo : hi + 1] = prem_all[lo : hi + 1]
    prof = {"d": d, "n": n, "r": np.arange(nb, dtype=np.float64) + rmin, "s_end": s_end}
    prof["prem"] = prem
    occ.cache[key] = prof
    return prof


def _forearm(cut: np.ndarray, lo: int, hi: int, nb: int) -> tuple[int, int, np.ndarray]:
    """The lines (``lo``..``hi`` of ``nb``) and colours (premultiplied RGBA, 0..255) of a
    harvested hand's forearm: the cut widened to ``ARM_SHARE`` of the hand around its
    middle, in the cut's median colour, rounded (``ARM_ROUND``) with a soft edge line."""
    want = min(nb, max(hi - lo + 1, int(round(ARM_SHARE * nb))))
    lo = int(np.clip((lo + hi + 1 - want) // 2, 0, nb - want))
    hi = lo + want - 1
    colour = np.median(cut[:, :3], axis=0) if len(cut) else np.full(3, 128.0)
    t = np.linspace(-1.0, 1.0, want) if want > 1 else np.zeros(1)
    a = np.ones(want)
    a[[0, -1]] = 0.5
    rgb = colour[None] * (1.0 - ARM_ROUND * t[:, None] ** 2)
    return lo, hi, np.concatenate([rgb * a[:, None], 255.0 * a[:, None]], axis=1)


def _extrude(
    occ: Occluder, lvl: int, img: np.ndarray, T: np.ndarray, prem: np.ndarray
) -> np.ndarray:
    """``prem`` (the warped body, uint8 premultiplied RGBA) over the asset's entry end run on
    along the entry direction to the edge of the box (``T``: level pixels -> box pixels)."""
    prof = _end_profile(occ, lvl, img)
    h, w = prem.shape[:2]
    inv = np.linalg.inv(T)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    px = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    py = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    d, n = prof["d"], prof["n"]
    s = px * d[0] + py * d[1]
    r = px * n[0] + py * n[1]
    start = np.interp(r, prof["r"], prof["s_end"])
    # past the end of its line (starting under the solid end, where the body hides it)
    on = np.clip(s - start + 2.0, 0.0, 1.0)
    ext = np.stack(
        [np.interp(r, prof["r"], prof["prem"][:, k], left=0.0, right=0.0) * on for k in range(4)],
        axis=-1,
    )
    body = prem.astype(np.float64)
    out = body + ext * (1.0 - body[..., 3:4] / 255.0)
    return np.rint(np.clip(out, 0.0, 255.0)).astype(np.uint8)


# -- thin-plate spline ---------------------------------------------------------------------
def _tps_fit(src: np.ndarray, dst: np.ndarray, reg: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Fit a TPS mapping ``src`` (N,2) -> ``dst`` (N,2); returns (centres, coefficients)."""
    n = len(src)
    d2 = ((src[:, None] - src[None]) ** 2).sum(-1)
    K = np.where(d2 > 0, d2 * np.log(np.maximum(d2, 1e-12)), 0.0) + reg * np.eye(n)
    P = np.hstack([np.ones((n, 1)), src])
    A = np.zeros((n + 3, n + 3))
    A[:n, :n], A[:n, n:], A[n:, :n] = K, P, P.T
    b = np.zeros((n + 3, 2))
    b[:n] = dst
    ok, coef = cv2.solve(A, b, flags=cv2.DECOMP_LU)  # no BLAS threads for a 10x10 system
    if not ok:
        coef = np.linalg.lstsq(A, b, rcond=None)[0]
    return src, coef


def _tps_apply(model: tuple[np.ndarray, np.ndarray], pts: np.ndarray) -> np.ndarray:
    c, coef = model
    d2 = ((pts[:, None] - c[None]) ** 2).sum(-1)
    U = np.where(d2 > 0, d2 * np.log(np.maximum(d2, 1e-12)), 0.0)
    n = len(c)
    return U @ coef[:n] + coef[n] + pts @ coef[n + 1 :]


def _warp_tps(
    occ: Occluder, src: np.ndarray, dst: np.ndarray, params: dict, T: np.ndarray | None = None
) -> Layer:
    """Warp by a thin-plate spline taking asset points ``src`` onto frame points ``dst``.

    ``T`` (canonical -> asset pixels, a drawn asset's template) also records, for every
    pixel of the box, the canonical template point it shows (``Layer.surface``)."""
    cache = _prepare(occ)
    fwd = _tps_fit(src, dst)
    scale = _det_scale(fwd[1][-2:])
    lvl = _level_for(scale, len(cache["levels"]))
    img, con = cache["levels"][lvl]
    bx0, by0, bx1, by1 = cache["bbox"]
    gx, gy = np.meshgrid(np.linspace(bx0, bx1, 5), np.linspace(by0, by1, 5))
    edge = np.stack([gx.ravel(), gy.ravel()], 1)
    box = points_box(_tps_apply(fwd, edge), S)
    x0, y0, x1, y1 = box
    params["level"] = lvl
    if x1 <= x0 or y1 <= y0:
        return _to_layer(occ, img[:0, :0], None, box, params)
    # inverse map evaluated on a coarse grid, then interpolated to every pixel of the box
    inv = _tps_fit(dst, src)
    step = 8
    nx, ny = (x1 - x0) // step + 2, (y1 - y0) // step + 2
    cx, cy = np.meshgrid(x0 + np.arange(nx) * step, y0 + np.arange(ny) * step)
    m = _tps_apply(inv, np.stack([cx.ravel(), cy.ravel()], 1).astype(np.float64))
    f = float(2**lvl)
    m = (m + 0.5) / f - 0.5  # level-0 pixel coords -> level pixel coords
    mx = _grid_interp(m[:, 0].reshape(ny, nx), step, x1 - x0, y1 - y0)
    my = _grid_interp(m[:, 1].reshape(ny, nx), step, x1 - x0, y1 - y0)
    prem = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    c = None
    if cache["has_contact"]:
        c = cv2.remap(con, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    layer = _to_layer(occ, prem, c, box, params)
    if T is not None:
        a0 = (m + 0.5) * f - 0.5  # back to level-0 asset pixels
        Ti = cv2.invertAffineTransform(T)
        uv = a0 @ Ti[:, :2].T + Ti[:, 2]
        u = _grid_interp(uv[:, 0].reshape(ny, nx), step, x1 - x0, y1 - y0)
        v = _grid_interp(uv[:, 1].reshape(ny, nx), step, x1 - x0, y1 - y0)
        layer.surface = (x0, y0, u, v)
    return layer


def _grid_interp(g: np.ndarray, step: int, w: int, h: int) -> np.ndarray:
    """Bilinear upsampling of grid values sampled every ``step`` pixels to ``h`` x ``w``."""
    g = g.astype(np.float32)
    # warpAffine with a pure scaling places grid node k at pixel k*step exactly
    M = np.array([[1.0 / step, 0, 0], [0, 1.0 / step, 0]], np.float32)
    return cv2.warpAffine(
        g, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


# -- the rules ----------------------------------------------------------------------------
def _uniform(rng: np.random.Generator, r: Range | None, default: float) -> float:
    """A draw from range ``r``; no draw for no range (``default``) or an empty one (its low)."""
    if r is None:
        return default
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _rot(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _jitter(occ: Occluder, rng: np.random.Generator) -> dict[str, float]:
    pl = occ.placement
    return {
        "scale": _uniform(rng, pl.scale_jitter, 1.0),
        "rotation_deg": _uniform(rng, pl.rotation_jitter_deg, 0.0),
        "offset_x": _uniform(rng, pl.offset_x, 0.0),
        "offset_y": _uniform(rng, pl.offset_y, 0.0),
    }


#: Eyewear model in half-inter-ocular units: the frame front bends on an arc of this radius
#: and sits this far in front of the eyes; the nose tip is this far in front of the eyes.
_FRAME_RADIUS, _FRAME_DEPTH, _NOSE_DEPTH = 3.0, 0.2, 1.0
#: Largest shift (inter-ocular units) that puts an eyewear bridge over the nose bridge.
_BRIDGE_PULL = 0.12
#: Face outline at eye height lies about this far (half-IOD units) beyond the jaw point.
_EDGE_BEYOND_JAW = 0.35
#: How far (half-IOD units, at full profile) the far lens may reach past the face outline.
_LENS_OVERHANG = 0.25
#: Mesh indices of the MediaPipe face oval, in order around the face.
_FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip


def yaw_angle(lm: Landmarks) -> float:
    """Head yaw in radians from the nose tip's offset along the eye line, with the nose
    ``_NOSE_DEPTH`` half-IODs in front of the eyes (+: image-right side is the far side)."""
    return float(np.clip(np.arctan(2.0 * _nose_offset(lm) / _NOSE_DEPTH), -1.1, 1.1))


def face_edge(lm: Landmarks, mid: np.ndarray, u: np.ndarray, side: float) -> float:
    """Distance along ``u`` from ``mid`` to the face outline on the ``side`` (+1 or -1) at
    the height of ``mid``: the dense mesh's oval when present, else past the jaw point."""
    if lm.dense is not None:
        P = lm.dense[list(_FACE_OVAL)].astype(np.float64) - mid
        X, Y = P @ u, P @ np.array([-u[1], u[0]])
        X2, Y2 = np.roll(X, -1), np.roll(Y, -1)
        hit = (Y * Y2 <= 0) & (Y != Y2)
        if hit.sum() >= 2:
            xs = X[hit] + (-Y[hit]) / (Y2[hit] - Y[hit]) * (X2[hit] - X[hit])
            return float(xs.max() if side > 0 else -xs.min())
    e = lm.inter_ocular / 2
    jaw = lm["jaw_right"] if side > 0 else lm["jaw_left"]
    return float(side * np.dot(jaw - mid, u)) + _EDGE_BEYOND_JAW * e


def _frame_profile(theta: float, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image position along the eye line (half-IOD units of the turned face, eyes at about
    +-1) and relative depth of frame points at arc length ``t`` from the bridge."""
    phi = t / _FRAME_RADIUS
    norm = _FRAME_RADIUS * np.sin(1.0 / _FRAME_RADIUS)
    x = _FRAME_RADIUS * np.sin(phi) / norm
    z = _FRAME_DEPTH + _FRAME_RADIUS * (np.cos(phi) - 1.0)
    c, s = np.cos(theta), np.sin(theta)
    X = (x * c + z * s) / c
    X = np.maximum.accumulate(X)  # the part turned past the silhouette folds away
    depth = -x * s + z * c
    return X, depth


def _lens_span(occ: Occluder, a_mid: np.ndarray, a_dir: np.ndarray) -> float:
    """Half-width of the frame front in asset pixels along ``a_dir`` from ``a_mid``: columns
    at least a third as tall as the tallest (thin temple stubs beyond it are excluded)."""
    if "lens_span" not in occ.cache:
        a = occ.rgba[..., 3].astype(np.float32)
        cols = (a > 127).sum(0)
        xs = np.nonzero(cols >= cols.max() / 3)[0]
        proj = (np.array([xs.min(), xs.max()], np.float64) - a_mid[0]) * a_dir[0]
        occ.cache["lens_span"] = float(np.abs(proj).max())
    return occ.cache["lens_span"]


def _place_eyewear(occ: Occluder, lm: Landmarks, rng: np.random.Generator) -> Layer:
    j = _jitter(occ, rng)
    el, er = lm["left_eye"], lm["right_eye"]
    iod = max(lm.inter_ocular, 1e-3)
    u = (er - el) / iod
    n = np.array([-u[1], u[0]])
    centre = (el + er) / 2
    mid = centre + (j["offset_x"] * u + j["offset_y"] * n) * iod
    R = _rot(j["rotation_deg"])
    u, n = R @ u, R @ n
    al, ar = np.asarray(occ.anchors["left_eye"]), np.asarray(occ.anchors["right_eye"])
    dist_a = float(np.linalg.norm(ar - al))
    a_dir = (ar - al) / dist_a
    a_n = np.array([-a_dir[1], a_dir[0]])
    a_mid = (al + ar) / 2
    e_img = iod * j["scale"] / 2  # image pixels per half-IOD unit along the eye line
    sx = e_img * 2 / dist_a
    mouth = target_point(lm, "mouth")
    face_h = float(np.linalg.norm(mouth - centre))
    sy = float(np.clip(face_h / _MEAN_FACE_RATIO / dist_a * j["scale"], 0.8 * sx, 1.6 * sx))
    theta = yaw_angle(lm)
    # asset profile: arc length t (half-IOD units) -> image offset along u, vertical factor
    cache = _prepare(occ)
    bx0, by0, bx1, by1 = cache["bbox"]
    corners = np.array([[bx0, by0], [bx1, by0], [bx0, by1], [bx1, by1]]) - a_mid
    ta = corners @ a_dir / (dist_a / 2)
    va = corners @ a_n
    t = np.linspace(ta.min() - 0.05, ta.max() + 0.05, 97)
    X, depth = _frame_profile(theta, t)
    g = np.clip(1.0 + 0.15 * depth, 0.6, 1.3)  # nearer parts look a little taller
    # the far temple goes behind the head at the face outline; the lens, in front of the
    # face, is never cut
    side = 1.0 if theta >= 0 else -1.0
    face = face_edge(lm, centre, u, side) / e_img
    span = side * _lens_span(occ, a_mid, a_dir) / (dist_a / 2)
    lens_end = side * float(np.interp(span, t, X))
    eye = side * float(np.interp(side, t, X))  # where the far lens centre lands
    room = max(face + _LENS_OVERHANG * abs(np.sin(theta)) - eye, 0.25 * (abs(span) - 1.0))
    if abs(theta) > 0.05 and lens_end - eye > room:  # squeeze the far lens onto the face
        far = side * t > 1.0
        X[far] = side * eye + (X[far] - side * eye) * room / (lens_end - eye)
        lens_end = eye + room
    edge = max(face + max(0.0, 0.35 - 1.5 * abs(theta)), lens_end + 0.15)
    # the bridge rests on the nose: a detected nose bridge moves the frame along the eye
    # line until its bridge (t = 0) lies over it (at most ``_BRIDGE_PULL`` IODs)
    bridge_shift = 0.0
    if "nose_bridge" not in lm.estimated:
        want = float(np.dot(lm["nose_bridge"] - mid, u)) / e_img
        got = float(np.interp(0.0, t, X))
        bridge_shift = float(np.clip((want - got) * e_img, -_BRIDGE_PULL * iod, _BRIDGE_PULL * iod))
        mid = mid + u * bridge_shift
        edge -= side * bridge_shift / e_img  # the face outline stays where it is
    box_pts = []
    for v in (va.min(), va.max()):
        for k in (0, -1):
            p = mid + u * X[k] * e_img + n * v * sy * g[k]
            box_pts.append(p)
    gi = np.argmax(g)
    for v in (va.min(), va.max()):
        box_pts.append(mid + u * X[gi] * e_img + n * v * sy * g[gi])
    box = points_box(np.array(box_pts), S)
    lvl = _level_for(min(sx, sy), len(cache["levels"]))
    img, con = cache["levels"][lvl]
    params = {
        "rule": "eyewear",
        "scale": round(sx, 4),
        "scale_y": round(sy, 4),
        "rotation_deg": round(float(np.rad2deg(np.arctan2(u[1], u[0]))), 2),
        "jitter_rotation_deg": round(j["rotation_deg"], 2),
        "offset_iod": [round(j["offset_x"], 3), round(j["offset_y"], 3)],
        "yaw": round(estimate_yaw(lm), 3),
        "yaw_deg": round(float(np.rad2deg(theta)), 1),
        "far_edge_iod": round(float(edge) / 2, 3),
        "bridge_shift_px": round(bridge_shift, 2),
        "anchors": ["left_eye", "right_eye"],
        "target": "eyes",
        "level": lvl,
    }
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return _to_layer(occ, img[:0, :0], None, box, params)
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    px, py = gx - mid[0], gy - mid[1]
    Xp = (px * u[0] + py * u[1]) / e_img
    Yp = px * n[0] + py * n[1]
    tp = np.interp(Xp, X, t)  # X is non-decreasing; flat (folded) runs pick their first t
    gp = np.interp(tp, t, g)
    vp = Yp / (sy * gp)
    tq = tp * (dist_a / 2)
    f = float(2**lvl)
    mx = ((a_mid[0] + a_dir[0] * tq + a_n[0] * vp + 0.5) / f - 0.5).astype(np.float32)
    my = ((a_mid[1] + a_dir[1] * tq + a_n[1] * vp + 0.5) / f - 0.5).astype(np.float32)
    keep = np.clip((edge - side * Xp) * e_img + 0.5, 0.0, 1.0).astype(np.float32)
    outside = (Xp < X[0]) | (Xp > X[-1])
    keep[outside] = 0.0
    prem = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    prem = np.round(prem.astype(np.float32) * keep[..., None]).astype(np.uint8)
    c = None
    if cache["has_contact"]:
        c = cv2.remap(con, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        c = np.round(c.astype(np.float32) * keep).astype(np.uint8)
    return _to_layer(occ, prem, c, box, params)


#: Face Mesh points a drawn mask or scarf also follows when the dense mesh is known: the
#: face outline from the cheekbones round the jaw to under the chin, the cheeks and the
#: nose ridge, at their mean canonical positions (median of Face Mesh on CelebA faces,
#: made left-right symmetric), so the rim hugs this face's jaw line and cheeks.
FIT_POINTS: dict[int, tuple[float, float]] = {
    234: (66.4, 133.0), 454: (188.2, 133.0), 93: (67.1, 145.9), 323: (187.5, 145.9),
    132: (68.9, 160.0), 361: (185.7, 160.0), 58: (72.7, 174.6), 288: (181.9, 174.6),
    136: (84.9, 195.5), 365: (169.7, 195.5), 150: (92.9, 203.4), 379: (161.7, 203.4),
    149: (100.0, 208.6), 378: (154.6, 208.6), 176: (107.5, 213.5), 400: (147.1, 213.5),
    148: (116.2, 216.8), 377: (138.4, 216.8), 50: (84.4, 146.3), 280: (170.2, 146.3),
    118: (88.3, 134.4), 347: (166.3, 134.4), 197: (127.3, 128.8),
}  # fmt: skip


#: Beyond this yaw (``estimate_yaw``) the far side's outline points are left out of the fit.
FIT_MAX_YAW = 0.6


def _near_side(x: np.ndarray | float, yaw: float) -> np.ndarray | bool:
    """Whether canonical x lies on the near side of a face turned by ``yaw`` (up to 10
    canonical px past the midline)."""
    return (np.asarray(x) - 127.3) * np.sign(yaw) < 10.0


def _similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity taking points ``a`` (N, 2) onto ``b``."""
    ca, cb = a.mean(0), b.mean(0)
    a0, b0 = a - ca, b - cb
    den = max(float((a0**2).sum()), 1e-9)
    p = float((a0 * b0).sum()) / den
    q = float((a0[:, 0] * b0[:, 1] - a0[:, 1] * b0[:, 0]).sum()) / den
    A = np.array([[p, -q], [q, p]])
    return np.hstack([A, (cb - A @ ca)[:, None]])


def _template(occ: Occluder, names: list[str]) -> np.ndarray | None:
    """2x3 map from canonical coordinates to a drawn face-worn asset's pixels: a similarity
    fitted to its named anchors (exact for the drawn library, which is drawn on a scaled
    copy of the canonical frame); None for a harvested asset or too few anchors."""
    if occ.harvest is not None or len(names) < 3:
        return None
    canon = np.array([MEAN_SHAPE[k] for k in names], np.float64)
    asset = np.array([occ.anchors[k] for k in names], np.float64)
    return _similarity(canon, asset)


def _fit_points(T: np.ndarray | None, lm: Landmarks) -> tuple[np.ndarray, np.ndarray]:
    """Extra (asset, frame) point pairs along the face outline for a drawn face-worn asset
    (canonical -> asset map ``T``) on a face with the dense mesh: ``FIT_POINTS``."""
    empty = np.zeros((0, 2))
    if T is None or lm.dense is None:
        return empty, empty
    pts = np.array(list(FIT_POINTS.values()), np.float64)
    idx = list(FIT_POINTS)
    yaw = estimate_yaw(lm)
    if abs(yaw) > FIT_MAX_YAW:  # the far outline folds onto the silhouette: near side only
        keep = _near_side(pts[:, 0], yaw)
        pts, idx = pts[keep], [i for i, k in zip(idx, keep, strict=True) if k]
    src = pts @ T[:, :2].T + T[:, 2]
    dst = lm.dense[idx].astype(np.float64)
    return src, dst


#: Beyond this yaw (``estimate_yaw``) a face is seen nearly in profile: the far side's named
#: anchors (the far jaw angle and mouth corner) lie on or behind the near ones, and pinning
#: the template to them folds it over itself (a mask with a hole through it). They are left
#: out; the far side follows the near side's fit and ``_clip_far_side`` ends it at the
#: silhouette.
PROFILE_YAW = 0.75


def _anchor_names(occ: Occluder, lm: Landmarks) -> list[str]:
    """The asset's anchors the face has, less the far side's on a face in profile (for an
    asset pinned to both jaw angles: one worn on one side only keeps its own)."""
    names = [k for k in occ.anchors.points if k in lm.points]
    yaw = estimate_yaw(lm)
    if abs(yaw) <= PROFILE_YAW or not {"jaw_left", "jaw_right"} <= set(names):
        return names
    near = [k for k in names if k not in MEAN_SHAPE or _near_side(MEAN_SHAPE[k][0], yaw)]
    return near if len(near) >= 3 else names


def _place_face_warp(occ: Occluder, lm: Landmarks, rng: np.random.Generator) -> Layer:
    j = _jitter(occ, rng)
    names = _anchor_names(occ, lm)
    src = np.array([occ.anchors[k] for k in names], np.float64)
    dst = np.array([lm[k] for k in names], np.float64)
    iod = max(lm.inter_ocular, 1e-3)
    c = dst.mean(0)
    T = _template(occ, names)
    fit_src, fit_dst = _fit_points(T, lm)
    src, dst = np.vstack([src, fit_src]), np.vstack([dst, fit_dst])
    u = np.array([np.cos(lm.roll), np.sin(lm.roll)])
    n = np.array([-u[1], u[0]])
    R = _rot(j["rotation_deg"])
    dst = c + (dst - c) @ R.T * j["scale"] + (j["offset_x"] * u + j["offset_y"] * n) * iod
    params = {
        "rule": "face_warp",
        "scale": round(j["scale"], 4),
        "rotation_deg": round(float(np.rad2deg(lm.roll)) + j["rotation_deg"], 2),
        "offset_iod": [round(j["offset_x"], 3), round(j["offset_y"], 3)],
        "yaw": round(estimate_yaw(lm), 3),
        "anchors": names,
        "fit_points": len(fit_src),
        "target": "lower_face",
    }
    layer = _warp_tps(occ, src, dst, params, T)
    _clip_far_side(layer, lm)
    return layer


#: From this yaw (``estimate_yaw``) on, a drawn mask ends at the face's far silhouette.
CLIP_MIN_YAW = 0.25


#: The head across the cheeks, for the far silhouette of a face without the dense mesh: an
#: ellipse of half-width ``_HEAD_HALF_WIDTH`` and half-depth ``_HEAD_HALF_DEPTH`` (IODs)
#: about an axis ``_EYES_DEPTH`` behind the eyes' midpoint, turned by ``yaw_angle``; the
#: outline narrows towards the chin (an ellipse down to ``_JAW_DROP`` x nose-to-chin).
_HEAD_HALF_WIDTH, _HEAD_HALF_DEPTH, _EYES_DEPTH = 0.98, 1.15, 0.75
_JAW_DROP = 1.2


def _far_keep(lm: Landmarks, yaw: float) -> np.ndarray:
    """HxW float32: 1 on the near side of a turned face's far silhouette, 0 beyond it."""
    gy, gx = np.mgrid[0:S, 0:S].astype(np.float32)
    if lm.dense is not None:
        hull = cv2.convexHull(np.rint(lm.dense * 4).astype(np.int32))
        inside = np.zeros((S, S), np.uint8)
        cv2.fillConvexPoly(inside, hull, 255, cv2.LINE_AA, shift=2)
        keep = inside.astype(np.float32) * np.float32(1 / 255)
        u = np.array([np.cos(lm.roll), np.sin(lm.roll)]) * np.sign(yaw)
        far = (gx - lm["nose_tip"][0]) * u[0] + (gy - lm["nose_tip"][1]) * u[1]
        return np.maximum(keep, np.clip(1.0 - far * 0.25, 0.0, 1.0))
    theta = abs(yaw_angle(lm))
    iod = max(lm.inter_ocular, 1e-3)
    half = np.hypot(_HEAD_HALF_WIDTH * np.cos(theta), _HEAD_HALF_DEPTH * np.sin(theta))
    reach = (half - _EYES_DEPTH * np.sin(theta)) * iod  # from the eyes' midpoint, far side
    u = np.array([np.cos(lm.roll), np.sin(lm.roll)]) * np.sign(yaw)
    n = np.array([-np.sin(lm.roll), np.cos(lm.roll)])  # down the face
    mid = (lm["left_eye"] + lm["right_eye"]) / 2
    across = (gx - mid[0]) * u[0] + (gy - mid[1]) * u[1]
    nose_down = float(np.dot(lm["nose_tip"] - mid, n))
    drop = max(float(np.dot(lm["chin"] - mid, n)) - nose_down, 1.0) * _JAW_DROP
    t = np.clip(((gx - mid[0]) * n[0] + (gy - mid[1]) * n[1] - nose_down) / drop, 0.0, 1.0)
    edge = reach * np.sqrt(1.0 - t * t)
    return np.clip((edge - across) * 0.5 + 0.5, 0.0, 1.0).astype(np.float32)


def far_side_keep(lm: Landmarks) -> np.ndarray | None:
    """HxW float32 (1 visible .. 0 behind the head) of a turned face's far side, or None
    for a face turned less than ``CLIP_MIN_YAW``."""
    yaw = estimate_yaw(lm)
    return _far_keep(lm, yaw) if abs(yaw) >= CLIP_MIN_YAW else None


#: Over this share of an IOD below the brow line, the far-side cut fades in (``_above_brows``).
BROW_FADE = 0.3


def _above_brows(lm: Landmarks) -> np.ndarray:
    """HxW float32: 1 above the brow line, falling to 0 ``BROW_FADE`` IODs below it."""
    gy, gx = np.mgrid[0:S, 0:S].astype(np.float32)
    n = np.array([-np.sin(lm.roll), np.cos(lm.roll)])  # down the face
    brows = (lm["brow_left"] + lm["brow_right"]) / 2
    down = (gx - brows[0]) * n[0] + (gy - brows[1]) * n[1]
    return np.clip(1.0 - down / (BROW_FADE * max(lm.inter_ocular, 1e-3)), 0.0, 1.0)


def _clip_far_side(layer: Layer, lm: Landmarks) -> None:
    """On a turned face, cut a drawn mask's far side (beyond the nose, away from the camera)
    at the face's silhouette, so the fabric and its far ear loop never hang in the
    background: the convex hull of the dense mesh (nose and lips included) when there is
    one, else a turned head's outline from the five points (``_far_keep``). Above the brows
    nothing is cut: what a worn object has there (a headset's band) passes over the top of
    the head, which shows on both sides."""
    keep = far_side_keep(lm)
    if keep is None:
        return
    keep = np.maximum(keep, _above_brows(lm))
    layer.alpha = layer.alpha * keep
    if layer.contact is not None:
        layer.contact = layer.contact * keep
    layer.params["far_side_clipped"] = True


def _place_from_edge(occ: Occluder, lm: Landmarks, rng: np.random.Generator) -> Layer:
    pl = occ.placement
    j = _jitter(occ, rng)
    targets = sorted(pl.targets)
    target = targets[int(rng.integers(len(targets)))]
    edges = pl.targets[target]
    edge = edges[int(rng.integers(len(edges)))]
    flip = pl.flip and bool(rng.integers(2))
    h, w = occ.rgba.shape[:2]
    ta, ea = np.asarray(occ.anchors["target"]), np.asarray(occ.anchors["entry"])
    F = np.eye(3)
    if flip:
        F = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]])
        ta = np.array([w - 1 - ta[0], ta[1]])
        ea = np.array([w - 1 - ea[0], ea[1]])
    iod = max(lm.inter_ocular, 1e-3)
    u = np.array([np.cos(lm.roll), np.sin(lm.roll)])
    n = np.array([-u[1], u[0]])
    pt = target_point(lm, target) + (j["offset_x"] * u + j["offset_y"] * n) * iod
    d_f = _rot(j["rotation_deg"]) @ np.asarray(EDGE_DIRS[edge])
    d_a = ea - ta
    theta = np.arctan2(d_f[1], d_f[0]) - np.arctan2(d_a[1], d_a[0])
    width_iod = _uniform(rng, pl.width_iod, 2.5)
    s = width_iod * iod / w
    extend = pl.extend
    if not extend:  # grow until the entry end reaches the image edge region
        reach = float(np.linalg.norm(d_a)) * s
        need = _edge_distance(pt, d_f) - 0.04 * S
        if reach < need:
            s *= need / max(reach, 1e-6)
    A = s * _rot(float(np.rad2deg(theta)))
    M = np.hstack([A, (pt - A @ ta)[:, None]])
    M = (np.vstack([M, [0, 0, 1]]) @ F)[:2]
    params = {
        "rule": pl.rule,
        "scale": round(s, 4),
        "rotation_deg": round(float(np.rad2deg(theta)), 2),
        "jitter_rotation_deg": round(j["rotation_deg"], 2),
        "offset_iod": [round(j["offset_x"], 3), round(j["offset_y"], 3)],
        "width_iod": round(width_iod, 3),
        "target": target,
        "target_xy": [round(float(v), 2) for v in pt],
        "edge": edge,
        "flip": flip,
        "anchors": ["target", "entry"],
        "entry_dir": [round(float(v), 4) for v in d_f],
    }
    layer = _warp_affine(occ, M, extend, params)
    layer.transform = M
    return layer


def _edge_distance(p: np.ndarray, d: np.ndarray) -> float:
    """Distance from ``p`` along unit ``d`` to the frame border."""
    ts = []
    for k in range(2):
        if d[k] > 1e-6:
            ts.append((S - p[k]) / d[k])
        elif d[k] < -1e-6:
            ts.append(-p[k] / d[k])
    return float(min(ts)) if ts else 0.0


RULES = {
    "eyewear": _place_eyewear,
    "face_warp": _place_face_warp,
    "from_edge": _place_from_edge,
    "from_below": _place_from_edge,
    "from_above": _place_from_edge,
}


#: Per-sample colour jitter of a drawn occluder: hue turn (degrees), saturation and value
#: factors, so no template repeats exactly (skin-tinted categories are recoloured later).
HUE_JITTER_DEG = 10.0
SAT_JITTER = (0.7, 1.05)
VAL_JITTER = (0.88, 1.08)

#: RGB <-> YIQ: hue turns and saturation scales act on (I, Q), brightness on everything.
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_INV = np.linalg.inv(_YIQ)


def colour_matrix(hue_deg: float, sat: float, val: float) -> np.ndarray:
    """3x3 RGB matrix turning hue by ``hue_deg``, scaling saturation and value."""
    t = np.deg2rad(hue_deg)
    m = np.eye(3)
    m[1:, 1:] = sat * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return val * (_YIQ_INV @ m @ _YIQ)


def jitter_colour(layer: Layer, rng: np.random.Generator) -> None:
    """Recolour ``layer`` in place by a random hue turn, saturation and value (3 draws)."""
    hue = float(rng.uniform(-HUE_JITTER_DEG, HUE_JITTER_DEG))
    sat = float(rng.uniform(*SAT_JITTER))
    val = float(rng.uniform(*VAL_JITTER))
    layer.params["colour_jitter"] = {
        "hue_deg": round(hue, 2),
        "saturation": round(sat, 3),
        "value": round(val, 3),
    }
    x, y, w, h = cv2.boundingRect(cv2.compare(layer.alpha, 0.0, cv2.CMP_GT))
    if w == 0 or h == 0:
        return
    box = np.ascontiguousarray(layer.rgb[y : y + h, x : x + w])
    out = cv2.transform(box, colour_matrix(hue, sat, val).astype(np.float32))
    layer.rgb[y : y + h, x : x + w] = np.clip(out, 0.0, 1.0)


def place(occluder: Occluder, landmarks: Landmarks, rng: np.random.Generator) -> Layer:
    """Render ``occluder`` onto the face described by ``landmarks`` with random jitter of
    its geometry and (unless its category is skin-tinted) of its colour."""
    layer = RULES[occluder.placement.rule](occluder, landmarks, rng)
    if not occluder.traits.skin_tint:
        jitter_colour(layer, rng)
    return layer
