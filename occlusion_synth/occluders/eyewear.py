"""Sunglasses and eyeglasses, drawn front-on with their lens centres as anchors."""

from __future__ import annotations

import numpy as np

from .draw import Canvas, Drawn, lens_outline, rgb

W, H = 480, 200
D = 176.0  # distance between the lens centres in asset pixels
CX_L, CX_R, CY = W / 2 - D / 2, W / 2 + D / 2, 100.0

EYEWEAR_PLACEMENT = {
    "rule": "eyewear",
    "scale_jitter": [1.02, 1.12],
    "rotation_jitter_deg": [-3.0, 3.0],
    "offset_iod": {"x": [-0.03, 0.03], "y": [-0.04, 0.08]},
}

# name, lens style, lens half-size (a, b), frame colour, frame kind, lens tint, lens alpha
# (top, bottom). Dark tints are near-black with a gradient; "mirror_*" are reflective coats.
SUNGLASSES = [
    ("aviator_gold", "aviator", (66, 54), "#c9a24a", "metal", "#1e2419", (0.95, 0.9)),
    ("wayfarer_black", "wayfarer", (68, 44), "#15151a", "plastic", "#0e0e10", (0.97, 0.95)),
    ("round_tortoise", "round", (56, 56), "#6b3b1a", "tortoise", "#24170f", (0.96, 0.9)),
    ("cat_eye_red", "cat_eye", (70, 46), "#a3132b", "plastic", "#1c0e0c", (0.96, 0.86)),
    ("mirror_blue_sport", "shield", (74, 40), "#e8e8ea", "plastic", "mirror_blue", (0.97, 0.95)),
    ("oversized_white", "oversized", (76, 60), "#efece4", "plastic", "#2a1c15", (0.96, 0.8)),
    ("rect_silver_gold_mirror", "rect", (66, 42), "#b8bcc4", "metal", "mirror_gold", (0.95, 0.9)),
]

EYEGLASSES = [
    ("thin_metal_round_gold", "round", (54, 54), "#c2a050", "metal", None, 0.0),
    ("black_rect_plastic", "rect", (64, 42), "#111114", "plastic", None, 0.0),
    ("browline_tortoise", "browline", (64, 44), "#5c3418", "browline", None, 0.0),
    ("silver_oval_tinted", "aviator", (62, 46), "#c4c8cf", "metal", "#8a6a3a", 0.18),
    ("clear_frame_wayfarer", "wayfarer", (64, 44), "#cfd7de", "clear", None, 0.0),
    ("navy_cat_eye_blue_tint", "cat_eye", (62, 42), "#1d2a55", "plastic", "#6080b0", 0.1),
    ("thin_black_rect_metal", "rect", (62, 38), "#202024", "metal", None, 0.0),
]


def _frame_field(cv: Canvas, kind: str, color: str) -> np.ndarray:
    """Per-pixel frame colour: metal bands, tortoise blotches or glossy plastic."""
    base = rgb(color)
    if kind == "metal":
        band = 1.0 + 0.35 * np.sin(cv.yy * 0.35) * cv.noise(6, 0.2)
        return np.clip(base * band[..., None], 0, 1)
    if kind in ("tortoise", "browline"):
        blot = cv.noise(5, 1.0)
        amber = rgb("#b0702c")
        t = np.clip((blot - 1.0) * 0.9, 0, 1)[..., None]
        return (
            np.clip(base * (1 - t) + amber * t, 0, 1)
            * cv.vgrad(CY - 60, CY + 60, 1.15, 0.8)[..., None]
        )
    return np.clip(base * cv.vgrad(CY - 60, CY + 60, 1.25, 0.85)[..., None], 0, 1)


def _lens(cv: Canvas, both: np.ndarray, tint, lens_alpha, b: float, sun: bool) -> None:
    """Paint the lenses: tinted glass with a vertical gradient and a faint reflection."""
    t = cv.vgrad(CY - b, CY + b, 0, 1)[..., None]
    mirror = bool(tint) and tint.startswith("mirror")
    if not tint:
        top = bot = None
    elif tint == "mirror_blue":
        top, bot = rgb("#1c3f9e"), rgb("#6a2a86")
    elif tint == "mirror_gold":
        top, bot = rgb("#c88a22"), rgb("#5a3508")
    elif sun:  # a gradient lens: darkest at the top, the tint showing a little lower down
        top, bot = rgb(tint) * 0.55, np.clip(rgb(tint) * 1.9, 0, 1)
    else:
        top = bot = rgb(tint)
    if top is not None:
        # a low-frequency variation so the glass is not a flat fill
        field = (top * (1 - t) + bot * t) * cv.noise(30, 0.06)[..., None]
        if sun:
            cov = both * cv.vgrad(CY - b, CY + b, lens_alpha[0], lens_alpha[1])
        else:
            cov = both * float(lens_alpha)
        cv.paint(cov, np.clip(field, 0, 1))
    # reflection: a faint sky band over the top, one soft diagonal glint, a brighter spot
    sky = both * cv.vgrad(CY - b, CY - 0.2 * b, 1.0, 0.0)
    glint = cv.stripes(90, 35, 0.18) * both * cv.vgrad(CY - b, CY + b, 1.0, 0.3)
    if mirror:
        cv.paint(sky, rgb("#f2f6ff"), 0.35)
        cv.paint(glint, rgb("#ffffff"), 0.3)
    elif sun:
        cv.paint(sky, rgb("#c8d4e4"), 0.12)
        cv.paint(glint, rgb("#ffffff"), 0.07)
    else:
        cv.paint(glint, rgb("#ffffff"), 0.14)
    spot = np.zeros_like(both)
    for cx in (CX_L, CX_R):
        spot = np.maximum(spot, cv.radial((cx - 0.35 * D / 2, CY - 0.45 * b), 0.3 * b))
    cv.paint(spot * both, rgb("#ffffff"), 0.3 if sun else 0.2)


def _draw(seed: int, style: str, ab, color: str, kind: str, tint, lens_alpha, sun: bool) -> Drawn:
    cv = Canvas(W, H, seed)
    a, b = ab[0] * 1.15, ab[1] * 1.15
    left = lens_outline(style, a, b) + (CX_L, CY)
    right = lens_outline(style, a, b) * (-1, 1) + (CX_R, CY)
    if style == "shield":  # sport wrap: one visor joined over the bridge
        left = lens_outline("shield", a + 8, b) + (CX_L, CY)
        right = lens_outline("shield", a + 8, b) * (-1, 1) + (CX_R, CY)
    lens_cov = [cv.poly(left), cv.poly(right)]
    both = np.maximum(*lens_cov)
    if style == "shield":
        both = np.maximum(both, cv.rounded_rect(CX_L, CY - b, CX_R, CY + b * 0.3, 20))
        both = np.maximum(both - cv.ellipse((W / 2, CY + b * 0.9), (26, b * 0.9)), 0)

    # lenses ------------------------------------------------------------------------
    _lens(cv, both, tint, lens_alpha, b, sun)

    # frame -------------------------------------------------------------------------
    field = _frame_field(cv, kind, color)
    thick = {"metal": 4.0, "plastic": 11.0, "tortoise": 10.0, "clear": 9.0}.get(kind, 4.0)
    frame_alpha = 0.55 if kind == "clear" else 1.0
    if style == "shield":
        rim = np.maximum(cv.polyline(np.vstack([left[72:], left[:25]]), 10), 0)
        rim = np.maximum(rim, cv.rounded_rect(CX_L - 20, CY - b - 8, CX_R + 20, CY - b + 6, 6))
        cv.paint(rim, field)
    elif kind == "browline":
        for o in (left, right):
            top = o[o[:, 1] < CY - 0.1 * b]
            cv.paint(cv.polyline(top[np.argsort(top[:, 0])], 13), field)
            cv.paint(cv.polyline(o, 1.6, closed=True), rgb("#d8d8d8"), 0.35)  # nylon thread
    else:
        for o in (left, right):
            cv.paint(cv.polyline(o, thick, closed=True), field, frame_alpha)
    # bridge
    il = left[np.argmax(left[:, 0] - 0.6 * np.abs(left[:, 1] - (CY - 0.3 * b)))]
    ir = right[np.argmin(right[:, 0] + 0.6 * np.abs(right[:, 1] - (CY - 0.3 * b)))]
    mid = (W / 2, CY - 0.45 * b)
    bridge_w = 5.0 if kind == "metal" else thick
    if style != "shield":
        cv.paint(cv.polyline([il, mid, ir], bridge_w), field, frame_alpha)
        if style == "aviator" and kind == "metal":
            top_l = (CX_L + 0.3 * a, CY - 0.95 * b)
            top_r = (CX_R - 0.3 * a, CY - 0.95 * b)
            cv.paint(cv.polyline([top_l, (W / 2, CY - 1.0 * b), top_r], 3.5), field)
    # temples (short stubs leaving towards the ears) and hinges
    contact_pts = []
    for side, o in ((-1, left), (1, right)):
        hinge = o[np.argmin(side * -o[:, 0])] if side < 0 else o[np.argmax(o[:, 0])]
        hinge = (hinge[0], CY - 0.55 * b)
        end = (hinge[0] + side * 36, hinge[1] + 4)
        cv.paint(cv.polyline([hinge, end], 7 if kind != "metal" else 4), field)
        contact_pts.append([float(end[0]), float(end[1]), 8.0])
    # nose pads
    for side in (-1, 1):
        pad = (W / 2 + side * 30, CY + 0.25 * b)
        if kind == "metal":
            cv.paint(cv.ellipse(pad, (5, 9), side * 20), rgb("#e6e6e6"), 0.75)
        contact_pts.append([float(pad[0]), float(pad[1]), 9.0])
    # glossy highlight along the top of the frame
    cv.paint(
        cv.stripes(9, 90, 0.2) * 0 + cv.vgrad(CY - b - 8, CY - b + 4, 0.25, 0.0) * (cv.a > 0.5),
        rgb("#ffffff"),
        0.6,
    )

    # dark lenses show only a small, dim glint in photos; mirror coats and metal shine more
    mirror = bool(tint) and tint.startswith("mirror")
    gloss = 0.75 if kind == "metal" or mirror else (0.5 if sun else 0.6)
    return Drawn(
        cv.to_rgba(),
        {"left_eye": [CX_L, CY], "right_eye": [CX_R, CY]},
        dict(EYEWEAR_PLACEMENT),
        {
            "gloss": gloss,
            "contact": {
                "description": "nose pads on the bridge of the nose, temple ends at the sides",
                "points": contact_pts,
                "edge_px": 0,
            },
        },
    )


def sunglasses() -> list[tuple[str, object]]:
    """(name, drawing thunk(seed)) for every sunglasses variant."""
    return [
        (f"sunglasses_{n}", lambda seed, v=(s, ab, c, k, t, la): _draw(seed, *v, sun=True))
        for n, s, ab, c, k, t, la in SUNGLASSES
    ]


def eyeglasses() -> list[tuple[str, object]]:
    """(name, drawing thunk(seed)) for every eyeglasses variant."""
    return [
        (f"eyeglasses_{n}", lambda seed, v=(s, ab, c, k, t, la): _draw(seed, *v, sun=False))
        for n, s, ab, c, k, t, la in EYEGLASSES
    ]
