"""Hands in several poses, with the forearm leaving through the asset's bottom edge.

The bottom row of every hand is forearm, so placement can extend it (edge replication) until
it leaves the image: the hand enters from an image edge.
"""

from __future__ import annotations

import cv2
import numpy as np

from .draw import Canvas, Drawn, ellipse_outline, rgb

W, H = 320, 512
SKINS = ["#f1c7a6", "#8d5a3b", "#d9a27c", "#5a3a28", "#e8b48f", "#b07850", "#c68e6a"]

HAND_PLACEMENT = {
    "rule": "from_edge",
    "width_iod": [2.3, 3.0],
    "rotation_jitter_deg": [-20.0, 20.0],
    "offset_iod": {"x": [-0.2, 0.2], "y": [-0.2, 0.2]},
    "flip": True,
    "targets": {
        "mouth": ["bottom", "left", "right"],
        "left_eye": ["left", "bottom"],
        "right_eye": ["right", "bottom"],
        "cheek_left": ["left", "bottom"],
        "cheek_right": ["right", "bottom"],
        "chin": ["bottom"],
        # a palm or fist on the forehead (a salute, a headache, shading the eyes): the arm
        # comes up from either side or down from above
        "forehead": ["left", "right", "top"],
    },
}


def _skin_field(cv: Canvas, tone: str) -> np.ndarray:
    base = rgb(tone)
    warm = rgb("#d06a5a")
    n = cv.noise(20, 1.0)
    t = np.clip(0.12 * (n - 1.0) + 0.06, 0, 0.2)[..., None]  # blotchy redness
    return (base * (1 - t) + warm * t) * cv.noise(1.0, 0.02)[..., None]


def _finger(
    cv: Canvas,
    base,
    angle: float,
    length: float,
    width: float,
    skin,
    nails: bool,
    curl: float = 0.0,
) -> None:
    """A tapering finger from ``base`` at ``angle`` (deg from up, clockwise) in three
    phalanges, each bent by ``curl`` degrees, with joint creases, rounded shading and a nail."""
    rng = cv.rng
    length *= rng.uniform(0.96, 1.04)
    width *= rng.uniform(0.94, 1.06)
    segs = (0.46, 0.31, 0.23)
    pts, dirs = [np.asarray(base, float)], []
    th = np.deg2rad(angle)
    for k, f in enumerate(segs):
        th += np.deg2rad(curl * (0.3 if k == 0 else 0.9) + rng.uniform(-2, 2))
        d = np.array([np.sin(th), -np.cos(th)])
        dirs.append(d)
        pts.append(pts[-1] + d * length * f * (1 - 0.25 * abs(curl) / 90 * (k > 0)))
    pts = np.array(pts)
    widths = width * np.array([1.0, 0.93, 0.86, 0.78])
    normals = [np.array([-d[1], d[0]]) for d in dirs]
    mids = [(a + b) / np.linalg.norm(a + b) for a, b in zip(normals, normals[1:], strict=False)]
    nrm = [normals[0], *mids, normals[-1]]
    left = [p + n * w / 2 for p, n, w in zip(pts, nrm, widths, strict=True)]
    right = [p - n * w / 2 for p, n, w in zip(pts, nrm, widths, strict=True)]
    tip_d, tip_n = dirs[-1], nrm[-1]
    arc = [
        pts[-1] + tip_n * np.cos(a) * widths[-1] / 2 + tip_d * np.sin(a) * widths[-1] * 0.55
        for a in np.linspace(0, np.pi, 9)
    ]
    cov = cv.poly(np.array([*left, *arc, *right[::-1]]))
    # round across the finger: darker towards both sides (distance from the base-tip axis)
    axis = pts[-1] - pts[0]
    axis /= max(np.linalg.norm(axis), 1e-6)
    dist = np.abs((cv.xx - pts[0][0]) * axis[1] - (cv.yy - pts[0][1]) * axis[0])
    across = np.clip(dist / (width * 0.55), 0, 1)
    along = np.clip(((cv.xx - pts[0][0]) * axis[0] + (cv.yy - pts[0][1]) * axis[1]) / length, 0, 1)
    root = np.clip(along / 0.18, 0, 1)  # blend into the hand at the root: no visible seam
    form = (1.0 - 0.28 * across**2 * root) * (0.97 + 0.05 * along)
    cv.paint(cov, skin * form[..., None])
    cv.shade(cv.ellipse(pts[0] + dirs[0] * 4, (width * 0.32, width * 0.24)), 1.05)  # knuckle
    for j, (c, n, w) in enumerate(zip(pts[1:3], nrm[1:3], widths[1:3], strict=True)):
        # a knuckle crease: two short, soft arcs, stronger on a bent joint
        bend = 0.25 + 0.35 * min(abs(curl) / 60, 1)
        for off in (-1.5, 1.5):
            q = c + dirs[j] * off
            crease = [q - n * w * 0.3, q + dirs[j] * 1.2 + n * 0.0, q + n * w * 0.3]
            cv.paint(cv.polyline(crease, 1.2) * cov, skin * 0.7, bend)
    if nails:
        nc = pts[-1] + tip_d * widths[-1] * 0.05
        ang = np.rad2deg(np.arctan2(tip_d[1], tip_d[0]))
        nail = cv.ellipse(nc, (widths[-1] * 0.42, widths[-1] * 0.3), ang) * cov
        nail_col = np.clip(skin * 1.08 + np.array([0.05, 0.0, 0.02], np.float32), 0, 1)
        cv.paint(nail, nail_col, 0.8)
        cv.shade(cv.polyline(ellipse_outline(nc, widths[-1] * 0.42, widths[-1] * 0.3, ang), 1.0)
                 * cov, 0.8)  # fmt: skip
        cv.paint(cv.ellipse(nc + tip_d * 2, (widths[-1] * 0.22, widths[-1] * 0.08), ang),
                 rgb("#ffffff"), 0.18)  # fmt: skip


def _arm_and_palm(cv: Canvas, skin, palm_h: float = 140) -> None:
    """Forearm and the back of the hand as one shape with one low-frequency shading field."""
    top = 330 - palm_h
    shape = cv.poly(
        [(104, H + 2), (216, H + 2), (212, 345), (230, top + 50), (220, top + 10), (160, top),
         (104, top + 8), (92, top + 50), (108, 345)]
    )  # fmt: skip
    # rounder in the middle, slightly darker up the hand, wrist a little narrower in shading
    form = cv.cylinder(160, 72, 0.74) * cv.vgrad(top, 360, 0.95, 1.02) * cv.noise(35, 0.04)
    form = form * (1 - 0.06 * np.exp(-(((cv.yy - 345) / 14) ** 2)))  # the wrist crease area
    cv.paint(shape, skin * form[..., None])
    if palm_h > 130:  # the ball of the thumb, a soft swelling on the inner side
        cv.shade(cv.ellipse((114, 290), (16, 36), 12) * shape, 1.04)
    for x in (125, 152, 180, 204):  # tendons on the back of the hand, faint
        cv.paint(cv.polyline([(x + 3, 322), (x, top + 24)], 6), skin * 1.05, 0.15)


def _gaps(cv: Canvas, xs, y: float) -> None:
    """Darken the skin between the finger bases (the webbing sits in shadow)."""
    for a, b in zip(xs, xs[1:], strict=False):
        cv.shade(cv.ellipse(((a + b) / 2, y - 10), (4, 12)) * (cv.a > 0.5), 0.84)


def _fist(cv: Canvas, skin, chin: bool) -> list[float]:
    """A fist with the thumb side to the camera: four curled fingers stacked under the thumb."""
    rng = cv.rng
    top = 196.0
    for i in range(4):  # index at the top ... little finger at the bottom
        y = top + 10 + i * 30
        x0 = 96 + 4 * i
        x1 = 226 - 6 * i + rng.uniform(-3, 3)
        roll = cv.rounded_rect(x0, y - 16, x1, y + 16, 15)
        form = cv.vgrad(y - 16, y + 16, 1.06, 0.8) * cv.hgrad(x0, x1, 0.95, 1.02)
        cv.paint(roll, skin * form[..., None])
        cv.shade(cv.ellipse((x1 - 26, y), (3.0, 11)) * roll, 0.84)  # the middle joint
        cv.shade(cv.ellipse((x0 + 40, y), (3.0, 10)) * roll, 0.9)
        nail = cv.ellipse((x1 - 9, y + 3), (7, 9)) * roll
        cv.paint(nail, np.clip(skin * 1.08, 0, 1), 0.6)
        cv.shade(cv.polyline([(x0 + 8, y + 15), (x1 - 8, y + 15)], 2.5), 0.75)
    # the thumb lies along the top of the index finger, its nail forward
    thumb = cv.rounded_rect(88, top - 22, 206, top + 8, 14, -4)
    cv.paint(thumb, skin * cv.vgrad(top - 22, top + 8, 1.1, 0.85)[..., None])
    cv.shade(cv.polyline([(120, top - 8), (121, top + 6)], 1.5), 0.7)
    tn = cv.ellipse((194, top - 8), (10, 8), -4) * thumb
    cv.paint(tn, np.clip(skin * 1.1, 0, 1), 0.7)
    if chin:  # the knuckles are pressed up: a highlight along the top where the chin rests
        cv.paint(cv.ellipse((150, top - 18), (50, 6)) * thumb, skin * 1.12, 0.4)
    return [160.0, top + 20.0] if chin else [162.0, 230.0]


def _hand(seed: int, pose: str, tone: str) -> Drawn:
    cv = Canvas(W, H, seed)
    skin = _skin_field(cv, tone)
    target = [160.0, 170.0]
    if pose in ("flat", "covering", "spread", "relaxed"):
        _arm_and_palm(cv, skin)
        spread = {
            "flat": [-6, -2, 2, 7],
            "covering": [-4, -1, 2, 5],
            "spread": [-28, -9, 9, 26],
            "relaxed": [-10, -3, 4, 11],
        }[pose]
        curl = {"relaxed": 28.0, "covering": 8.0}.get(pose, 3.0)
        lengths = [100, 114, 106, 84]
        widths = [30, 31, 29, 25]
        xs = (117, 146, 175, 202)
        thumb_a = -62 if pose != "covering" else -40
        _finger(cv, (114, 304), thumb_a, 96, 34, skin, True, -6)
        for x, a, length, w in zip(xs, spread, lengths, widths, strict=True):
            _finger(cv, (x, 210 + 0.02 * (x - 160) ** 2), a, length, w, skin, True, curl)
        _gaps(cv, xs, 214)
        target = [160.0, 205.0]
    elif pose in ("fist", "chin_rest"):
        _arm_and_palm(cv, skin, palm_h=120)
        target = _fist(cv, skin, pose == "chin_rest")
    # fine skin texture: pores and a little mottling
    cv.shade(cv.a > 0, cv.noise(0.6, 0.025) * cv.noise(6, 0.02))
    # soft rim darkening: the silhouette edge turns away from the light
    a = cv.a
    inner = cv2.GaussianBlur(a, (0, 0), 6)
    cv.shade(np.clip((a - inner) * 2, 0, 1), 0.8)
    placement = dict(HAND_PLACEMENT)
    if pose == "chin_rest":
        placement = {
            **placement,
            "targets": {
                "chin": ["bottom"],
                "cheek_left": ["bottom", "left"],
                "cheek_right": ["bottom", "right"],
            },
        }
    elif pose == "covering":
        placement = {**placement, "targets": {"mouth": ["left", "right", "bottom"]}}
    elif pose == "spread":
        placement = {
            **placement,
            "targets": {
                "left_eye": ["left", "bottom"],
                "right_eye": ["right", "bottom"],
                "mouth": ["bottom"],
            },
        }
    return Drawn(
        cv.to_rgba(),
        {"target": target, "entry": [W / 2, H - 1]},
        placement,
        {
            "gloss": 0.15,
            "contact": {
                "description": "fingertips and palm rest on the face",
                "points": [[160.0, 90.0, 60.0], [160.0, 230.0, 60.0]],
                "edge_px": 0,
            },
        },
    )


POSES = [
    ("flat_palm", "flat"),
    ("fingers_spread", "spread"),
    ("fist", "fist"),
    ("chin_rest", "chin_rest"),
    ("covering_mouth", "covering"),
    ("relaxed", "relaxed"),
    ("flat_palm_dark", "flat"),
]


def hands():
    return [
        (f"hand_{n}", lambda s, v=(p, SKINS[i]): _hand(s, *v)) for i, (n, p) in enumerate(POSES)
    ]
