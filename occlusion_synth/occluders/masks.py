"""Face masks (medical, cloth, N95/KN95) and scarves, drawn on a template of the mean face.

Each asset is drawn in a scaled copy of the canonical frame (``u = (x - X0) * K``), so its
anchors are simply the template positions of the canonical landmarks; placement warps the
template landmarks onto the detected ones.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..canonical import MEAN_SHAPE
from .draw import SS, Canvas, Drawn, ellipse_outline, rgb, walk

MASK_ANCHORS = (
    "nose_bridge",
    "nose_tip",
    "mouth_left",
    "mouth_right",
    "chin",
    "jaw_left",
    "jaw_right",
)
SCARF_ANCHORS = ("nose_tip", "mouth_left", "mouth_right", "chin", "jaw_left", "jaw_right")

WARP_PLACEMENT = {
    "rule": "face_warp",
    "scale_jitter": [0.97, 1.05],
    "rotation_jitter_deg": [-2.0, 2.0],
    "offset_iod": {"x": [-0.02, 0.02], "y": [-0.04, 0.04]},
}


class Template:
    """Maps canonical-frame coordinates to asset pixels: ``(x - x0) * k, (y - y0) * k``."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float, k: float) -> None:
        self.x0, self.y0, self.k = x0, y0, k
        self.w, self.h = int(round((x1 - x0) * k)), int(round((y1 - y0) * k))

    def __call__(self, pts) -> np.ndarray:
        p = np.asarray(pts, np.float64).reshape(-1, 2)
        return (p - (self.x0, self.y0)) * self.k

    def anchors(self, names) -> dict[str, list[float]]:
        return {n: [round(float(v), 2) for v in self(MEAN_SHAPE[n])[0]] for n in names}


MASK_T = Template(44, 112, 212, 246, 3.0)
SCARF_T = Template(20, 146, 236, 256, 2.3)


def _smooth_outline(points, n: int = 160) -> np.ndarray:
    """A closed Catmull-Rom curve through ``points``."""
    p = np.asarray(points, np.float64)
    out = []
    k = len(p)
    per = max(2, n // k)
    for i in range(k):
        p0, p1, p2, p3 = p[i - 1], p[i], p[(i + 1) % k], p[(i + 2) % k]
        for t in np.linspace(0, 1, per, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(
                0.5
                * (
                    2 * p1
                    + (-p0 + p2) * t
                    + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                    + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
                )
            )
    return np.array(out)


def _cord(cv: Canvas, path, width: float, color, fade_from: float = 0.55) -> None:
    """A round cord (an ear loop, a strap) of ``width`` asset px along ``path`` (asset px).

    Shaded across its section like a cylinder (dark edges, a lit middle), and fading out
    over its last part, where it passes behind the ear or the head."""
    q = walk(path)  # a dense walk along the path (half an asset pixel a step)
    n = len(q)
    r = width / 2
    x0, y0 = np.floor((q.min(0) - r - 1) * SS).astype(int)
    x1, y1 = np.ceil((q.max(0) + r + 1) * SS).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, cv.W), min(y1, cv.H)
    if x1 <= x0 or y1 <= y0:
        return
    px, py = cv.xx[y0:y1, x0:x1], cv.yy[y0:y1, x0:x1]
    d2 = (px[..., None] - q[:, 0]) ** 2 + (py[..., None] - q[:, 1]) ** 2
    k = d2.argmin(-1)
    d = np.sqrt(np.take_along_axis(d2, k[..., None], -1)[..., 0])
    along = k / (n - 1)
    cov = np.clip((r - d) * SS + 0.5, 0.0, 1.0)
    cov *= np.clip((1.0 - along) / max(1.0 - fade_from, 1e-3), 0.0, 1.0) ** 1.5
    rr = np.clip(d / r, 0.0, 1.0)
    shade = 0.5 + 0.62 * np.sqrt(1.0 - rr * rr)
    full = np.zeros((cv.H, cv.W), np.float32)
    full[y0:y1, x0:x1] = cov
    col = np.zeros((cv.H, cv.W, 3), np.float32)
    col[y0:y1, x0:x1] = np.clip(rgb(color) * shade[..., None], 0.0, 1.0)
    cv.paint(full, col)


#: Ear loops (image-right side, canonical coordinates): each strand leaves the mask's
#: corner under its rim and runs back along the cheek's edge to the ear, where it passes
#: behind it: the upper one up to the top of the ear (above the eye line), the lower one to
#: the earlobe. Seen from the front, the ear lies at the face's outline (x ~190-197), so
#: the loops stay beside the face rather than reaching out towards the frame's edge.
EAR_LOOP_STRANDS = (
    [(181, 145), (186, 136), (190, 128), (193, 121), (195, 115)],
    [(173, 195), (181, 186), (187, 177), (191, 169), (194, 162)],
)


def _ear_loops(cv: Canvas, t: Template, color, width: float = 3.2) -> None:
    """Two shaded cords per side, ``width`` canonical px thick, from the mask to the ear."""
    for side in (-1, 1):
        for strand in EAR_LOOP_STRANDS:
            pts = np.array(strand, np.float64)
            pts[:, 0] = 127 + side * (pts[:, 0] - 127)
            _cord(cv, t(pts), width * t.k, color)


def _finish(cv: Canvas, t: Template, names, placement, gloss: float, contact: str, edge: int):
    return Drawn(
        cv.to_rgba(),
        t.anchors(names),
        dict(placement),
        {"gloss": gloss, "contact": {"description": contact, "points": [], "edge_px": edge}},
    )


# -- medical masks -------------------------------------------------------------------------
#: (name, fabric, ear loops). The colours of worn medical masks in photos: light blue and
#: white most of all, then black; pastel mint, pink and grey ones, half of the variants
#: before, are rare in photos (none among the 28 of ``real_occluded``), and a pink one tinted
#: by a warm face read as a skin-coloured patch. (A navy one with white loops, tried, was
#: caught in two of two blind rounds: the loops' stubs read as white patches at its corners.)
MEDICAL = [
    ("blue", "#8fc3e6", "#ffffff"),
    ("pale_blue", "#b4d5ea", "#ffffff"),
    ("surgical_blue", "#74b0d8", "#f4f6f8"),
    ("white", "#f1f3f2", "#f4f4f4"),
    ("off_white", "#e7e8e3", "#f2f2f0"),
    ("black", "#2a2b2f", "#1b1b1e"),
]

#: medical mask rim in canonical coordinates: the top rides up the nose bridge, the sides
#: lie just inside the face outline (Face Mesh's mean oval, ``placement.FIT_POINTS``) from the
#: cheekbones to the jaw angle, and the lower edge runs from there under the chin in a wide
#: U, below the jaw line (an opened pleated mask is a rectangle: its lower corners bridge
#: the hollow under the jaw rather than hugging it like a shaped cloth mask). The top edge's
#: height follows real masks: aligned to this frame, the 11 harvest-half photos of
#: ``real_occluded`` have it at y = 118-140 over the nose (median 129) and 123-143 below the
#: eyes (median 136); their sides, just under the nose (y = 150), lie at x = 71 and 185
#: (medians), a little inside the face's outline
MEDICAL_OUTLINE = [
    (71, 141),
    (96, 136),
    (113, 133.5),
    (127, 128.5),  # pinched up over the nose by the nose wire
    (141, 133.5),
    (158, 136),
    (183.5, 141),
    (185, 156),
    (180.5, 172),
    (179.5, 192),
    (173, 209),
    (153, 221),
    (127, 226),
    (101, 221),
    (81, 209),
    (74.5, 192),
    (74, 172),
    (69.5, 156),
]


def _fabric_light(base: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """Colour under a shading field: multiplicative, plus a little sheen so folds still read on
    a dark fabric (a black mask shows grey highlights on its folds, as in photos)."""
    lift = np.clip(shade - 1.0, 0, None)[..., None] * (0.35 * (1.0 - float(base.mean())))
    return base * shade[..., None] + lift


def _medical(seed: int, color: str, loop: str) -> Drawn:
    t = MASK_T
    cv = Canvas(t.w, t.h, seed)
    _ear_loops(cv, t, loop)
    outline = t(_smooth_outline(MEDICAL_OUTLINE))
    body = cv.poly(outline)
    # the pleats are folded per sample (``drape``: their count, spacing and sag vary, lit by
    # the face's light); the asset carries the fabric, its soft wrinkles and the bound edges
    shade = cv.cylinder((127 - t.x0) * t.k, 66 * t.k, 0.7) * cv.noise(1.2, 0.012)
    shade = shade * cv.noise(18, 0.02)  # soft wrinkles
    shade = shade * cv.vgrad(t((0, 130))[0, 1], t((0, 238))[0, 1], 1.06, 0.88)
    cv.paint(body, _fabric_light(rgb(color), shade.astype(np.float32)))
    cv.paint(cv.polyline(outline, 7, closed=True) * body, rgb(color) * 0.93)  # bound edge
    # the nose wire: a slight ridge along the top edge
    cv.paint(cv.polyline(t([(108, 138), (127, 136.5), (146, 138)]), 4) * body, rgb("#ffffff"), 0.3)
    return _finish(
        cv,
        t,
        MASK_ANCHORS,
        WARP_PLACEMENT,
        0.1,
        "whole rim rests on the skin; nose wire over the bridge",
        12,
    )


# -- cloth masks, N95 and KN95 ------------------------------------------------------------
CLOTH_OUTLINE = [  # the top edge as high and the sides as wide as the medical masks'
    (72, 142),
    (97, 135),
    (113, 132),
    (127, 126),  # the seam rides up over the nose bridge
    (141, 132),
    (157, 135),
    (182.5, 142),
    (184, 160),
    (181, 178),
    (174, 196),
    (158, 213),
    (142, 224),
    (127, 229),
    (112, 224),
    (96.5, 213),
    (80.5, 196),
    (73.5, 178),
    (70.5, 160),
]

#: (name, base colour, pattern, second colour). Plain cotton masks are the commonest in
#: photos, so most variants are plain (``plain``/``weave``: the base colour, woven); a
#: printed pattern repeated on many faces is a giveaway, so each appears once.
CLOTH = [
    ("navy_weave", "#27365c", "weave", None),
    ("red_plaid", "#b3262d", "plaid", "#1d1f3a"),
    ("floral_dots", "#f2d7a8", "dots", "#c2466b"),
    ("camo", "#5f6b3c", "camo", "#2f3320"),
    ("denim", "#3f5f8a", "twill", None),
    ("grey_heather", "#8e9095", "weave", None),  # striped, it was caught in 3 of 3 blind rounds
    ("black_cotton", "#1e1f23", "plain", None),
    ("charcoal_cotton", "#43454b", "plain", None),
    ("white_cotton", "#e9e8e3", "plain", None),
    ("sky_cotton", "#9bbbd6", "plain", None),
    ("beige_cotton", "#cdbb9f", "plain", None),
    ("olive_twill", "#51583a", "twill", None),
]


def _wrapped(cv: Canvas, t: Template, radius: float, top, bottom) -> tuple[np.ndarray, np.ndarray]:
    """Surface coordinates (asset px) of fabric wrapped round the face: across, the arc
    length on a cylinder of ``radius`` (canonical px) about the face's midline, so a print
    foreshortens towards the cheeks; down, the share of the way from the ``top`` to the
    ``bottom`` edge (functions of canonical x), so its rows bend with the rim."""
    x = cv.xx / t.k + t.x0
    y = cv.yy / t.k + t.y0
    d = np.clip((x - 127.0) / radius, -0.97, 0.97)
    across = 127.0 + radius * np.arcsin(d)
    t0, t1 = top(x), bottom(x)
    share = (y - t0) / np.maximum(t1 - t0, 1.0)
    down = top(127.0) + share * (bottom(127.0) - top(127.0))
    return (across - t.x0) * t.k, (down - t.y0) * t.k


def _cloth_top(x):
    return 124.0 + 18.0 * np.minimum(((x - 127.0) / 58.0) ** 2, 1.3)


def _cloth_bottom(x):
    return 229.0 - 33.0 * np.minimum(((x - 127.0) / 47.0) ** 2, 1.3)


def _fabric(cv: Canvas, base: str, pattern: str, second: str | None) -> np.ndarray:
    col = np.broadcast_to(rgb(base), (cv.H, cv.W, 3)).copy()
    if pattern == "plaid":
        s = np.maximum(cv.stripes(26, 0, 0.25), cv.stripes(26, 90, 0.25))
        col = col * (1 - 0.55 * s[..., None]) + rgb(second) * 0.55 * s[..., None]
        col *= (1 - 0.25 * cv.stripes(9, 90, 0.1))[..., None]
    elif pattern == "dots":
        d = cv.dots(64, 13)  # a print large enough to read as dots, not as a mesh
        col = col * (1 - d[..., None]) + rgb(second) * d[..., None]
    elif pattern == "camo":
        for k, c in enumerate(("#2f3320", "#8a7a50", "#3f4a2a")):
            n = cv.noise(14, 1.0)
            m = np.clip((n - 1.5 + 0.2 * k) * 3, 0, 1)[..., None]
            col = col * (1 - m) + rgb(c) * m
    elif pattern == "twill":
        col *= cv.noise(2.5, 0.05)[..., None] * 0.96  # the diagonal wale is sub-pixel: mottle
    return col * cv.weave(3.0, 0.06)[..., None] * cv.noise(1.0, 0.05)[..., None]


def _cloth(seed: int, base: str, pattern: str, second: str | None) -> Drawn:
    t = MASK_T
    cv = Canvas(t.w, t.h, seed)
    _ear_loops(cv, t, base, 3.2)
    body = cv.poly(t(_smooth_outline(CLOTH_OUTLINE)))
    x = cv.xx / t.k + t.x0
    y = cv.yy / t.k + t.y0
    # two shaped halves sewn down the middle: the seam is a ridge that follows the profile
    # (out over the nose, in under the lip, out over the chin); the side facing the light
    # is brighter, the far half turns away into shadow; soft wrinkles radiate from the seam
    seam_x = 127 + 2.0 * np.sin((y - 129) / 112 * np.pi)
    d = x - seam_x
    shade = cv.cylinder((127 - t.x0) * t.k, 70 * t.k, 0.62)
    far = 0.5 * (1.0 + np.tanh(d / 6.0))  # the far half, turning away past the seam
    shade = shade * (1.0 - 0.1 * far - 0.002 * np.abs(d) - 0.0005 * np.maximum(d, 0))
    shade = shade * (1 - 0.3 * np.exp(-((d / 1.3) ** 2)))  # the seam crease
    shade = shade * (1 + 0.12 * np.exp(-(((d + 5) / 4.5) ** 2)))  # lit ridge beside it
    shade = shade * (1 - 0.08 * np.exp(-(((d - 6) / 6) ** 2)))  # shadow on the far side
    shade = shade * cv.noise(16, 0.05) * cv.vgrad(t((0, 129))[0, 1], t((0, 242))[0, 1], 1.04, 0.9)
    with cv.surface(*_wrapped(cv, t, 72.0, _cloth_top, _cloth_bottom)):
        fabric = _fabric(cv, base, pattern, second)
    cv.paint(body, _fabric_light(fabric, shade.astype(np.float32)))
    cv.paint(
        cv.polyline(t(_smooth_outline(CLOTH_OUTLINE)), 6, closed=True) * body, rgb(base) * 0.7, 0.6
    )
    return _finish(cv, t, MASK_ANCHORS, WARP_PLACEMENT, 0.05, "whole rim rests on the skin", 12)


def _nonwoven(cv: Canvas) -> np.ndarray:
    """Multiplicative texture of a non-woven filter fabric: fine speckle, a faint mottle and
    short random fibre streaks."""
    rng = cv.rng
    fibres = np.zeros((cv.H, cv.W), np.float32)
    for _ in range(int(cv.W * cv.H / 900)):
        p = rng.uniform((0, 0), (cv.W, cv.H))
        d = rng.normal(size=2)
        d = d / max(float(np.linalg.norm(d)), 1e-6) * rng.uniform(6, 16)
        q0, q1 = np.round(p).astype(int), np.round(p + d).astype(int)
        cv2.line(fibres, (int(q0[0]), int(q0[1])), (int(q1[0]), int(q1[1])), 1.0, 1, cv2.LINE_AA)
    fibres = cv2.GaussianBlur(fibres, (0, 0), 0.6)
    speckle = cv.noise(0.6, 0.012) * cv.noise(1.6, 0.015)  # faint: grain comes from the photo
    return speckle * cv.noise(5.0, 0.015) * (1 - 0.08 * np.clip(fibres, 0, 1))


def _seal(cv: Canvas, body: np.ndarray, width: float, depth: float = 0.82) -> np.ndarray:
    """Shading factor darkening a soft band inside the rim, where the mask turns to the skin."""
    inner = cv2.GaussianBlur(body.astype(np.float32), (0, 0), width)
    return 1 - (1 - depth) * np.clip((1 - inner) * 2.2, 0, 1) * body


def _nose_clip(cv: Canvas, t: Template, pts, base) -> None:
    """An embossed metal nose clip under the fabric: a lit ridge over a thin shadow."""
    p = t(pts)
    cv.paint(cv.polyline(p + (0, 5), 8), base * 0.72, 0.75)
    cv.paint(cv.polyline(p, 9), np.clip(base * 1.08 + 0.04, 0, 1), 0.85)
    cv.paint(cv.polyline(p - (0, 2), 3), np.clip(base * 1.2 + 0.08, 0, 1), 0.6)


def _n95(seed: int, color: str, valve: bool) -> Drawn:
    t = MASK_T
    cv = Canvas(t.w, t.h, seed)
    base = rgb(color)
    c = t((127, 184))[0]
    strap = rgb("#d9d6c8") if base.mean() > 0.5 else rgb("#3a3a3e")
    for yy in (150, 205):  # head straps leaving towards the back of the head
        for side in (-1, 1):
            pts = t([(127 + side * 52, yy), (127 + side * 68, yy - 5), (127 + side * 82, yy - 10)])
            _cord(cv, pts, 2.4 * t.k, strap, 0.5)
    a, b = 66 * t.k, 58 * t.k
    dome = cv.ellipse(c, (a, b))
    # a dome lit from the upper left: brightness from the surface normal of an ellipsoid
    ex, ey = (cv.xx - c[0]) / a, (cv.yy - c[1]) / b
    nz = np.sqrt(np.clip(1 - ex**2 - ey**2, 0, 1))
    light = np.clip(0.62 * nz - 0.26 * ex - 0.2 * ey + 0.4, 0.56, 1.04)
    shade = light * _nonwoven(cv) * _seal(cv, dome, 3.0 * t.k)
    cv.paint(dome, _fabric_light(base, shade.astype(np.float32)))
    # the moulded seam a little inside the rim, in shadow
    cv.paint(cv.polyline(ellipse_outline(c, 60 * t.k, 52 * t.k, n=90), 3) * dome, base * 0.8, 0.6)
    _nose_clip(cv, t, [(108, 133), (117, 130), (127, 129), (137, 130), (146, 133)], base)
    if valve:
        vc = t((152, 196))[0]
        cv.shade(cv.ellipse(vc + (3, 6), (16 * t.k, 14 * t.k)) * dome, 0.8)  # its shadow
        cv.paint(cv.ellipse(vc, (15 * t.k, 13 * t.k)), rgb("#8c8f96") * cv.vgrad(
            vc[1] - 13 * t.k, vc[1] + 13 * t.k, 1.12, 0.82)[..., None])  # fmt: skip
        cv.paint(cv.stripes(10, 0, 0.3) * cv.ellipse(vc, (10 * t.k, 8 * t.k)), rgb("#4b4e55"))
    return _finish(
        cv, t, MASK_ANCHORS, WARP_PLACEMENT, 0.15, "the rim of the cup seals on the skin", 10
    )


def _kn95(seed: int, color: str) -> Drawn:
    t = MASK_T
    cv = Canvas(t.w, t.h, seed)
    base = rgb(color)
    _ear_loops(cv, t, "#e4e3df" if base.mean() > 0.5 else "#2e2e31", 2.4)
    outline = [
        (60, 150),
        (95, 132),
        (127, 124),
        (159, 132),
        (194, 150),
        (192, 182),
        (160, 222),
        (127, 240),
        (94, 222),
        (62, 182),
    ]
    body = cv.poly(t(_smooth_outline(outline)))
    x = cv.xx / t.k + t.x0
    y = cv.yy / t.k + t.y0
    # two panels meeting at a vertical fold: each rounds away towards the cheek, the lit
    # panel faces the light, and both darken under the chin
    across = np.clip(np.abs(x - 127) / 67, 0, 1)
    panel = np.where(x < 127, 1.0, 0.86) * (1 - 0.22 * across**2)
    down = 1 - 0.12 * np.clip((y - 195) / 45, 0, 1)
    fold = 1 + 0.06 * np.exp(-(((x - 124) / 2.5) ** 2)) - 0.1 * np.exp(-(((x - 130) / 3) ** 2))
    shade = panel * down * fold * _nonwoven(cv) * _seal(cv, body, 2.5 * t.k)
    cv.paint(body, _fabric_light(base, shade.astype(np.float32)))
    # the welded edge seam just inside the rim
    rim = t(_smooth_outline(outline))
    cv.paint(cv.polyline(rim, 3, closed=True) * body, base * 0.86, 0.7)
    _nose_clip(cv, t, [(106, 133), (116, 128), (127, 126), (138, 128), (148, 133)], base)
    return _finish(cv, t, MASK_ANCHORS, WARP_PLACEMENT, 0.12, "whole rim rests on the skin", 12)


# -- scarves -------------------------------------------------------------------------------
SCARVES = [
    ("red_knit", "#a8262c", "knit", None),
    ("tartan_green", "#1f4a34", "tartan", "#b82c2c"),
    ("grey_wool", "#7d7f86", "wool", None),
    ("striped_mustard", "#d19a2a", "bands", "#2d2d33"),
    ("checked_black_white", "#1c1c1f", "check", "#e8e6df"),
    ("navy_dotted", "#1e2c52", "dots", "#d8d4c8"),
    ("cream_cable", "#e4d9c2", "knit", None),
]


def _scarf_print(cv: Canvas, base: str, pattern: str, second: str | None) -> np.ndarray:
    """A scarf's print (knit, tartan, bands, check, dots or plain) as an RGB field."""
    if pattern == "knit":
        col = rgb(base) * (0.82 + 0.25 * cv.stripes(7, 0, 0.45))[..., None]
        col = col * (1 + 0.08 * np.sin(cv.yy * 1.1))[..., None]
    elif pattern == "tartan":
        s = np.maximum(cv.stripes(34, 0, 0.2), cv.stripes(34, 90, 0.2))
        thin = np.maximum(cv.stripes(17, 0, 0.06), cv.stripes(17, 90, 0.06))
        col = rgb(base) * (1 - s[..., None] * 0.6) + rgb(second) * 0.6 * s[..., None]
        col = col * (1 - 0.5 * thin[..., None]) + 0.5 * thin[..., None] * rgb("#e0d070")
    elif pattern == "bands":
        s = cv.stripes(40, 90, 0.25)[..., None]
        col = rgb(base) * (1 - s) + rgb(second) * s
    elif pattern == "check":
        a = cv.stripes(20, 0, 0.5) * cv.stripes(20, 90, 0.5)
        col = rgb(base) * (1 - a[..., None]) + rgb(second) * a[..., None]
    elif pattern == "dots":
        d = cv.dots(20, 3.5)[..., None]
        col = rgb(base) * (1 - d) + rgb(second) * d
    else:
        col = np.broadcast_to(rgb(base), (cv.H, cv.W, 3)).copy()
    return col


def _scarf(seed: int, base: str, pattern: str, second: str | None) -> Drawn:
    t = SCARF_T
    cv = Canvas(t.w, t.h, seed)
    rng = cv.rng
    ph = float(rng.uniform(0, 2 * np.pi))

    def top_of(x):  # the upper edge: over the nose, then down around the jaw to the neck
        d = np.abs(x - 127)
        return 158 + 0.0024 * d**2 + 0.012 * np.clip(d - 52, 0, None) ** 2

    # upper edge with small irregular dips where the cloth gathers
    xs = np.linspace(30, 226, 41)
    top = top_of(xs) + 2.2 * np.sin(xs / 9.0 + ph) + rng.normal(0, 0.6, xs.size)
    # lower sides: the cloth hangs in uneven folds off the shoulders
    ys = np.linspace(float(top[-1]) + 4, 262, 9)
    right = 224 + 7 * np.sin(ys / 11 + ph) + rng.normal(0, 1.5, ys.size) + 0.3 * (ys - ys[0])
    ys_l = np.linspace(float(top[0]) + 4, 262, 9)
    left = (
        30 - 7 * np.sin(ys_l / 11 + 2 * ph) - rng.normal(0, 1.5, ys.size) - 0.3 * (ys_l - ys_l[0])
    )
    outline = [
        *zip(xs, top, strict=True),
        *zip(np.clip(right, 200, 250), ys, strict=True),
        *zip(np.clip(left[::-1], 6, 56), ys_l[::-1], strict=True),
    ]
    body = cv.poly(t(outline))
    with cv.surface(*_wrapped(cv, t, 110.0, top_of, lambda x: np.full_like(x, 300.0))):
        col = _scarf_print(cv, base, pattern, second)
    # soft horizontal folds, a rolled top edge and fibre noise
    y = cv.yy / t.k + t.y0
    x = cv.xx / t.k + t.x0
    # folds run parallel to the upper edge around the jaw, wander (phase noise) and fan out
    # downwards round the neck; the cloth under the chin and at the sides is in shadow
    below = y - top_of(x)
    wander = 2.0 * (cv.noise(25, 1.0) - 1.0)
    phase = below / (6.0 + 0.04 * np.clip(below, 0, None)) + wander
    depth = np.clip(cv.noise(20, 0.6), 0, 2) * (0.7 + 0.3 * np.clip(below / 30, 0, 1))
    folds = 1 + 0.17 * np.sin(phase) * depth
    fan = 1 + 0.07 * np.sin((x - 127) / (10 + 0.1 * np.abs(x - 127)) + ph) * np.clip(
        (y - 215) / 40, 0, 1
    )
    roll = (
        1 + 0.08 * np.exp(-(((below - 7) / 3.5) ** 2)) - 0.06 * np.exp(-(((below - 13) / 4) ** 2))
    )
    shade = folds * fan * roll * cv.cylinder((127 - t.x0) * t.k, 112 * t.k, 0.5)
    shade = shade * cv.noise(0.8, 0.06) * cv.weave(2.5, 0.05)
    cv.paint(body, col * shade[..., None])
    return _finish(
        cv,
        t,
        SCARF_ANCHORS,
        {
            **WARP_PLACEMENT,
            "scale_jitter": [0.98, 1.08],
            "offset_iod": {"x": [-0.03, 0.03], "y": [-0.02, 0.1]},
        },
        0.02,
        "the upper edge rests on the nose and cheeks",
        8,
    )


def medical_masks():
    return [(f"medical_mask_{n}", lambda s, v=(c, lp): _medical(s, *v)) for n, c, lp in MEDICAL]


def cloth_masks():
    items = [(f"cloth_mask_{n}", lambda s, v=(b, p, c2): _cloth(s, *v)) for n, b, p, c2 in CLOTH]
    items.append(("cloth_mask_n95_white_valve", lambda s: _n95(s, "#e6e0cc", True)))
    items.append(("cloth_mask_n95_white", lambda s: _n95(s, "#dddcd5", False)))
    items.append(("cloth_mask_kn95_black", lambda s: _kn95(s, "#26272b")))
    items.append(("cloth_mask_kn95_white", lambda s: _kn95(s, "#e8e7e1")))
    return items


def scarves():
    return [(f"scarf_{n}", lambda s, v=(b, p, c2): _scarf(s, *v)) for n, b, p, c2 in SCARVES]
