"""Hand-held and worn props: microphones, cups, phones held to the face, caps."""

from __future__ import annotations

import numpy as np

from .draw import Canvas, Drawn, rgb
from .hands import SKINS, _finger, _skin_field

BELOW = {"rule": "from_below", "rotation_jitter_deg": [-15.0, 15.0], "flip": True}


def _material(gloss: float, text: str, points=(), edge: int = 0) -> dict:
    return {
        "gloss": gloss,
        "contact": {"description": text, "points": [list(p) for p in points], "edge_px": edge},
    }


# -- microphones (the handle leaves through the bottom edge) --------------------------------
MICS = [
    ("ball_silver", "ball", "#c9ccd2", "#1c1c1f"),
    ("ball_black", "ball", "#3a3b40", "#202024"),
    ("ball_gold", "ball", "#d4b25a", "#2a2420"),
    ("foam_red", "foam", "#c0262c", "#1b1b1e"),
    ("foam_blue", "foam", "#2a55b0", "#26262a"),
    ("slim_condenser", "slim", "#a9adb5", "#2b2c31"),
    ("reporter_flag", "ball", "#b9bcc2", "#1d1d20"),
]


def _mic(seed: int, head: str, color: str, handle: str, flag: bool) -> Drawn:
    W, H = 256, 512
    cv = Canvas(W, H, seed)
    cv.paint(
        cv.poly([(104, 170), (152, 170), (140, H + 2), (116, H + 2)]),
        rgb(handle) * cv.cylinder(128, 24, 0.45)[..., None],
    )
    cv.paint(cv.polyline([(122, 200), (121, 470)], 3), rgb("#ffffff"), 0.25)
    if flag:
        cv.paint(
            cv.rounded_rect(82, 205, 174, 265, 6),
            rgb("#c8202a") * cv.cylinder(128, 50, 0.8)[..., None],
        )
        cv.paint(cv.rounded_rect(100, 222, 156, 248, 3), rgb("#ffffff"), 0.9)
    cv.paint(
        cv.rounded_rect(96, 150, 160, 182, 8), rgb("#7d8088") * cv.cylinder(128, 32, 0.4)[..., None]
    )
    c = (128, 88)
    if head == "slim":
        body = cv.rounded_rect(98, 20, 158, 160, 28)
        grille = cv.stripes(5, 0, 0.5) * 0.25 + 0.85
        cv.paint(body, rgb(color) * (cv.cylinder(128, 30, 0.45) * grille)[..., None])
    else:
        r = 70 if head == "foam" else 64
        body = cv.ellipse(c, (r, r))
        if head == "foam":
            tex = cv.noise(1.0, 0.15) * cv.noise(4, 0.08)
        else:
            tex = 1 - 0.3 * np.maximum(cv.stripes(6, 45, 0.25), cv.stripes(6, 135, 0.25))
        light = cv.radial((110, 62), 110) * 0.7 + 0.55
        cv.paint(body, rgb(color) * (tex * light)[..., None])
        if head != "foam":
            cv.paint(cv.ellipse((108, 58), (16, 10), -30), rgb("#ffffff"), 0.5)
    return Drawn(
        cv.to_rgba(),
        {"target": [128.0, 80.0], "entry": [128.0, H - 1.0]},
        {
            **BELOW,
            "width_iod": [1.5, 1.9],  # a ball head about 0.8 IOD across, as in photos
            "targets": {"mouth": ["bottom"]},
            "offset_iod": {"x": [-0.35, 0.35], "y": [0.15, 0.55]},
        },
        _material(0.2 if head == "foam" else 0.7, "none: held in front of the mouth"),
    )


# -- cups --------------------------------------------------------------------------------
CUPS = [
    ("mug_red", "mug", "#b8282e", None),
    ("mug_white_striped", "mug", "#f2f0ea", "#2b4c8c"),
    ("paper_coffee", "paper", "#f4efe6", "#8a5a34"),
    ("glass_juice", "glass", "#f0a030", None),
    ("steel_tumbler", "steel", "#b8bcc3", None),
    ("teacup_dots", "teacup", "#e9f0f5", "#d04a6a"),
]


def _cup(seed: int, kind: str, color: str, second: str | None) -> Drawn:
    W, H = 320, 400
    cv = Canvas(W, H, seed)
    top, bot = 40.0, 392.0
    x0, x1 = 60.0, 260.0
    taper = {"paper": 22, "teacup": 40, "glass": 10}.get(kind, 0)
    if kind in ("mug", "teacup"):  # handle on the right
        ring = np.maximum(
            cv.ellipse((x1 + 8, 200), (50, 70)) - cv.ellipse((x1 + 8, 200), (28, 46)), 0
        )
        cv.paint(ring, rgb(color) * 0.9)
    body = cv.poly([(x0, top), (x1, top), (x1 - taper, bot), (x0 + taper, bot)])
    body = np.maximum(body, cv.ellipse(((x0 + x1) / 2, bot - 1), ((x1 - x0) / 2 - taper, 12)))
    shade = cv.cylinder(150, 100, 0.55)
    if kind == "glass":
        cv.paint(body, rgb("#e8f0f0"), 0.25)
        liquid = body * (cv.yy > 110)
        cv.paint(liquid, rgb(color) * shade[..., None], 0.85)
        cv.paint(cv.ellipse((160, 110), (96, 12)), rgb(color) * 1.1, 0.9)
        cv.paint(cv.stripes(200, 0, 0.06) * body, rgb("#ffffff"), 0.6)
    else:
        col = np.broadcast_to(rgb(color), (cv.H, cv.W, 3)).copy()
        if kind == "mug" and second:
            s = cv.stripes(36, 90, 0.3)[..., None]
            col = col * (1 - s) + rgb(second) * s
        if kind == "teacup":
            d = cv.dots(30, 6)[..., None]
            col = col * (1 - d) + rgb(second) * d
        if kind == "steel":
            col = col * (1 + 0.35 * np.sin(cv.xx / 14))[..., None]
        cv.paint(body, col * shade[..., None])
        if kind == "paper":
            sleeve = body * (cv.yy > 150) * (cv.yy < 290)
            cv.paint(sleeve, rgb(second) * (shade * cv.noise(1.0, 0.05))[..., None])
            cv.paint(
                cv.rounded_rect(x0 - 10, top - 26, x1 + 10, top + 8, 10), rgb("#f6f6f4") * 0.95
            )
            cv.paint(cv.ellipse((160, top - 26), (90, 12)), rgb("#e8e8e6"))
        cv.paint(cv.stripes(200, 0, 0.05) * body, rgb("#ffffff"), 0.45 if kind != "paper" else 0.2)
    if kind != "paper":  # rim and the dark inside seen over it
        cv.paint(cv.ellipse((160, top), (100, 14)), rgb(color) * 0.95)
        inside = rgb("#3b2416") if kind in ("mug", "teacup", "steel") else rgb(color) * 0.7
        cv.paint(cv.ellipse((160, top + 1), (92, 10)), inside)
    return Drawn(
        cv.to_rgba(),
        {"target": [160.0, top], "entry": [160.0, bot]},
        {
            **BELOW,
            "extend": False,
            "rotation_jitter_deg": [-12.0, 12.0],
            "width_iod": [2.1, 2.8],
            "targets": {"mouth": ["bottom"]},
            "offset_iod": {"x": [-0.2, 0.2], "y": [0.0, 0.3]},
        },
        _material(
            0.1 if kind == "paper" else 0.6, "the rim touches the lower lip", [(160.0, top, 40.0)]
        ),
    )


# -- phones held to the face by a hand ----------------------------------------------------
PHONES = [
    ("black", "#1b1c20", 0),
    ("white", "#eeeeec", 1),
    ("blue_case", "#2f5fb8", 2),
    ("pink_case", "#e7a0b5", 3),
    ("gold", "#d9bd8c", 4),
    ("green_case", "#3d7a4a", 5),
]


def _phone(seed: int, color: str, skin_i: int) -> Drawn:
    """A phone held to the cheek: we see its back, the back of the hand below it, four
    fingertips wrapping its far edge and the thumb along its near edge (``hands`` fingers)."""
    W, H = 300, 512
    cv = Canvas(W, H, seed)
    skin = _skin_field(cv, SKINS[skin_i])
    hand = cv.poly(
        [(98, H + 2), (204, H + 2), (202, 392), (222, 336), (228, 262), (204, 232), (112, 236),
         (86, 276), (92, 362)]
    )  # fmt: skip
    form = cv.cylinder(156, 68, 0.74) * cv.vgrad(232, 400, 0.93, 1.02) * cv.noise(35, 0.04)
    form = form * (1 - 0.06 * np.exp(-(((cv.yy - 392) / 14) ** 2)))  # the wrist
    cv.paint(hand, skin * form[..., None])
    for x in (130, 158, 186):  # tendons on the back of the hand, faint
        cv.paint(cv.polyline([(x + 3, 370), (x + 8, 300)], 6), skin * 1.05, 0.15)
    body = cv.rounded_rect(88, 20, 212, 290, 20, angle=-6)
    cv.shade(cv.rounded_rect(92, 30, 220, 298, 22, angle=-6) * (cv.a > 0) * (1 - body), 0.75)
    cv.paint(
        body, rgb(color) * (cv.cylinder(150, 62, 0.7) * cv.vgrad(20, 290, 1.1, 0.9))[..., None]
    )
    cv.paint(cv.rounded_rect(104, 36, 142, 96, 10, angle=-6), rgb("#2a2a2e"))
    for c in ((118, 52), (126, 78)):
        cv.paint(cv.ellipse(c, (8, 8)), rgb("#0c0c10"))
    cv.paint(cv.stripes(160, 60, 0.08) * body, rgb("#ffffff"), 0.25)
    skin_before = cv.a.copy()
    for i, (y, length, width) in enumerate(
        ((146, 60, 26), (180, 64, 27), (213, 58, 25), (244, 46, 22))
    ):
        base = (226 - 3 * i - 0.1 * y, y)
        # the finger's soft contact shadow on the phone's back, then the finger over it
        shadow = cv.capsule((base[0] - 6, y + 6), (base[0] - length * 0.85, y + 9), width * 0.95)
        cv.shade(shadow * body, 0.72)
        # the finger bends round the phone's edge: a rounded middle joint, side-on and darker
        knuckle = cv.ellipse((base[0] - 2, y + 1), (width * 0.42, width * 0.52), -6)
        cv.paint(
            knuckle, skin * (0.86 * cv.hgrad(base[0] - 12, base[0] + 10, 1.05, 0.85))[..., None]
        )
        _finger(cv, base, -86 - 3 * i, length, width, skin, True, -4.0)
    cv.shade(cv.capsule((104, 306), (92, 208), 34) * body, 0.75)  # the thumb's shadow
    _finger(cv, (108, 318), -5, 108, 32, skin, True, -3.0)
    skin_cov = np.clip(cv.a - skin_before, 0, 1) + hand * (1 - body)
    cv.shade(np.clip(skin_cov, 0, 1), cv.noise(0.6, 0.025) * cv.noise(6, 0.02))  # pores
    return Drawn(
        cv.to_rgba(),
        {"target": [150.0, 120.0], "entry": [150.0, H - 1.0]},
        {
            "rule": "from_edge",
            "width_iod": [2.0, 2.6],
            "rotation_jitter_deg": [-15.0, 15.0],
            "offset_iod": {"x": [-0.15, 0.15], "y": [-0.15, 0.15]},
            "flip": True,
            "targets": {"cheek_left": ["bottom"], "cheek_right": ["bottom"], "mouth": ["bottom"]},
        },
        _material(0.6, "the phone rests on the cheek, fingers on its edge", [(150.0, 120.0, 80.0)]),
    )


# -- caps and hats (the crown leaves through the top edge) ----------------------------------
CAPS = [
    ("baseball_navy", "cap", "#1f2d55", None),
    ("baseball_red_white", "cap", "#b8262c", "#f2f2f0"),
    ("baseball_black_logo", "cap_logo", "#18181b", "#8a8a90"),
    ("beanie_grey", "beanie", "#6f7178", None),
    ("bucket_khaki", "bucket", "#b7a27a", None),
    ("beanie_mustard", "beanie", "#c99a2e", None),
]


CAP_W = 440  # asset width; the hat spans nearly all of it (so ``width_iod`` is its width)


def _dome(cx: float, base: float, half_w: float, height: float, power: float = 2.6) -> list:
    """Outline of a crown: a superelliptic dome standing on the line ``y = base``."""
    t = np.linspace(0, np.pi, 64)
    c, s = np.cos(t), np.sin(t)
    x = cx + half_w * np.sign(c) * np.abs(c) ** (2 / power)
    y = base - height * s ** (2 / power)
    return [*zip(x, y, strict=True)]


def _cap(seed: int, kind: str, color: str, second: str | None) -> Drawn:
    W, H = CAP_W, 400
    cx = W / 2
    cv = Canvas(W, H, seed)
    base = rgb(color)
    tex = cv.weave(3, 0.05) * cv.noise(1.0, 0.03)
    light = cv.radial((cx - 90, 60), 420) * 0.45 + 0.72  # light from the upper left
    band = 300.0  # where the crown meets the forehead (front view)
    if kind == "beanie":
        half, top = 212.0, 300.0
        crown = cv.poly(_dome(cx, band + 40, half, top, 2.3))
        rib = 0.84 + 0.22 * np.abs(np.sin((cv.xx - cx) * np.pi / 9.0 * (1 + 0.0 * cv.yy)))
        bend = cv.cylinder(cx, half, 0.55)
        cv.paint(crown, base * (rib * tex * bend * light)[..., None])
        # the folded cuff: a band with its own ribs, a soft shadow above its fold
        cuff = crown * (cv.yy > band - 45)
        cv.paint(cuff, base * 0.92 * (rib * bend * light * cv.noise(1.5, 0.04))[..., None])
        cv.shade(crown * np.exp(-(((cv.yy - (band - 47)) / 5) ** 2)), 0.7)
        cv.shade(crown * np.exp(-(((cv.yy - (band + 38)) / 4) ** 2)), 0.8)
        target, width, drop = [cx, band + 40], [2.5, 2.75], [-0.3, 0.0]
    elif kind == "bucket":
        half = 165.0
        # a soft crown: sides leaning in, the top rounded over (not a flat lid)
        ts = np.linspace(0, np.pi, 25)
        top = [(cx - (half - 30) * np.cos(t), band - 186 - 22 * np.sin(t) ** 0.6) for t in ts]
        crown = cv.poly([(cx - half, band), *top, (cx + half, band)])
        cv.paint(crown, base * (cv.cylinder(cx, half, 0.65) * tex * light)[..., None])
        cv.shade(crown * np.exp(-(((cv.yy - (band - 20)) / 6) ** 2)), 0.8)  # hat band seam
        # the brim slopes down all round; its rim, below eye level, reads as a shallow U
        xs = np.linspace(6, W - 6, 41)
        u = ((xs - cx) / (cx - 6)) ** 2
        low = band + 76 - 16 * u
        rim = [
            (cx + half, band - 14),
            *zip(xs[::-1], low[::-1], strict=True),
            (cx - half, band - 14),
        ]
        brim = cv.poly(rim)
        dx = ((cv.xx - cx) / (cx - 6)) ** 2
        v = np.clip((cv.yy - (band - 14)) / (90 - 16 * dx), 0, 1)  # 0 at the crown, 1 at the rim
        cv.paint(brim, base * 0.92 * ((1.04 - 0.32 * v) * tex)[..., None])
        cv.shade(brim * np.exp(-(((cv.yy - (band - 12)) / 4) ** 2)), 0.75)  # under the crown
        for k in (1, 2, 3):  # stitching rows running round the brim
            f = k / 4.0
            pts = [
                (cx + (x - cx) * (0.45 + 0.55 * f), band - 14 + f * (y - band + 14))
                for x, y in zip(xs, low, strict=True)
            ]
            cv.paint(cv.polyline(pts, 1.3) * brim, base * 0.68, 0.5)
        target, width, drop = [cx, band + 70], [2.8, 3.1], [-0.15, 0.1]
    else:  # baseball cap: structured front panels, button, curved brim
        half, top = 196.0, 240.0
        crown = cv.poly(_dome(cx, band + 6, half, top, 2.7))
        crown = np.maximum(crown, cv.rounded_rect(cx - half, band - 20, cx + half, band + 22, 4))
        form = cv.cylinder(cx, half, 0.6) * cv.vgrad(band - top, band, 1.08, 0.92)
        cv.paint(crown, base * (form * tex * light)[..., None])
        for x, w_ in ((cx, 2.5), (cx - 120, 2.0), (cx + 120, 2.0)):  # panel seams
            pts = [(x, band), (x + (cx - x) * 0.45, band - top * 0.6), (cx, band - top + 4)]
            cv.paint(cv.polyline(pts, w_) * crown, base * 0.6, 0.7)
        cv.paint(cv.ellipse((cx, band - top + 8), (14, 7)), base * 0.9)  # button
        if second and kind == "cap_logo":  # a small embroidered logo, low contrast
            logo = cv.ellipse((cx, band - 110), (34, 22)) - cv.ellipse((cx, band - 110), (26, 15))
            logo = np.maximum(logo, 0) + cv.rounded_rect(
                cx - 18, band - 114, cx + 18, band - 106, 3
            )
            cv.paint(np.clip(logo, 0, 1) * crown, rgb(second) * 0.75, 0.55)
        brim_col = rgb(second) if second and kind != "cap_logo" else base
        # a pre-curved visor seen from eye level: its sides bend down, so both its edges
        # arch (highest in the middle); the camera sees a sliver of the darker underside
        xs = np.linspace(cx - half - 16, cx + half + 16, 33)
        u = ((xs - cx) / (half + 16)) ** 2
        top_edge = band - 4 + 26 * u
        low_edge = band + 34 + 22 * u
        outline = [*zip(xs, top_edge, strict=True), *zip(xs[::-1], low_edge[::-1], strict=True)]
        brim = cv.poly(outline)
        dx = ((cv.xx - cx) / (half + 16)) ** 2
        v = np.clip((cv.yy - (band - 4 + 26 * dx)) / 38, 0, 1)  # 0 at the crown, 1 at the edge
        cv.paint(
            brim, brim_col * ((1.04 - 0.3 * v) * cv.cylinder(cx, half + 16, 0.75) * tex)[..., None]
        )
        under = brim * np.clip((cv.yy - (band + 26 + 22 * dx)) / 6, 0, 1)
        cv.paint(under, base * 0.45, 0.9)  # the underside, in its own shadow
        cv.shade(brim * np.exp(-(((cv.yy - (band - 4 + 26 * dx)) / 3) ** 2)), 0.6)  # the seam
        for k in (1, 2, 3):  # stitching rows following the visor's front edge
            pts = [(x, band + 2 + 8 * k + 24 * uu) for x, uu in zip(xs[2:-2], u[2:-2], strict=True)]
            cv.paint(cv.polyline(pts, 1.1) * brim, brim_col * 0.72, 0.45)
        target, width, drop = [cx, band + 34], [2.45, 2.7], [-0.15, 0.1]
    return Drawn(
        cv.to_rgba(),
        {"target": target, "entry": [cx, 0.0]},
        {
            "rule": "from_above",
            "width_iod": width,
            "rotation_jitter_deg": [-5.0, 5.0],
            "offset_iod": {"x": [-0.06, 0.06], "y": drop},
            "flip": False,
            "targets": {"brows": ["top"]},
        },
        _material(0.05, "the band rests on the forehead", [(cx, band, 60.0)]),
    )


def microphones():
    return [
        (f"microphone_{n}", lambda s, v=(h, c, hd, n == "reporter_flag"): _mic(s, *v))
        for n, h, c, hd in MICS
    ]


def cups():
    return [(f"cup_{n}", lambda s, v=(k, c, c2): _cup(s, *v)) for n, k, c, c2 in CUPS]


def phones():
    return [(f"phone_{n}", lambda s, v=(c, i): _phone(s, *v)) for n, c, i in PHONES]


def caps():
    return [(f"cap_{n}", lambda s, v=(k, c, c2): _cap(s, *v)) for n, k, c, c2 in CAPS]
