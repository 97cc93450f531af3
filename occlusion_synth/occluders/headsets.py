"""Headsets with a boom microphone, drawn on a template of the mean face.

A headset is worn, not held: a band over the top of the head (or, for an earset, a hook
round the ear), an ear cup on one or both ears and a thin boom from the cup forward along
the cheek to a microphone capsule beside the mouth corner. Like the masks, each asset is
drawn in a scaled copy of the canonical frame (``masks.Template``), so its anchors are the
template positions of the canonical landmarks and placement warps it onto the detected
ones (``face_warp``); on a turned face the far cup is hidden behind the head
(``placement._clip_far_side``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .draw import Canvas, Drawn, rgb, walk
from .masks import MASK_ANCHORS, WARP_PLACEMENT, Template

#: Mask anchors plus the brows and forehead, so the band over the head follows the face's
#: upper half too; an earset (no band) is anchored on its own side of the face (image-right
#: names here, mirrored for the left).
HEADSET_ANCHORS = (*MASK_ANCHORS, "brow_left", "brow_right", "forehead")
EARSET_ANCHORS = (
    "nose_bridge",
    "nose_tip",
    "mouth_right",
    "chin",
    "jaw_right",
    "right_eye",
    "brow_right",
)

#: The canonical frame from above the head's top to below the chin, at twice its scale; an
#: earset is drawn on its own side's half of the face only, at 2.5 times.
HEADSET_T = Template(26, -16, 229, 222, 2.0)
EARSET_T = Template(118, 98, 212, 222, 2.5)

#: Front view of the head (canonical px): the band arches from one ear cup to the other
#: over the hair, ``BAND_HALF`` from the midline at ear level and ``BAND_TOP`` at its top.
MIDLINE = 127.3
BAND_HALF, BAND_TOP, BAND_FOOT = 69.0, 8.0, 120.0
#: An ear cup's centre (image-right side; mirrored for the left) and the boom's path from
#: the cup's lower front to beside the mouth corner (``mouth_right`` is at 152, 176).
CUP_CENTRE = (195.0, 140.0)
BOOM_PATH = ((190.0, 152.0), (186.0, 163.0), (178.0, 172.0), (167.0, 178.0))


@dataclass(frozen=True)
class Style:
    """One headset design: its parts' sizes (canonical px) and colours."""

    band: float  # band width; 0: an earset, hooked round the ear with no band
    cup: tuple[float, float]  # ear cup half-width, half-height (seen from the front)
    both_cups: bool  # a cup on both ears, or a small pad opposite the boom
    boom: float  # boom thickness
    capsule: float  # capsule radius at the boom's end
    foam: bool  # a foam windscreen over the capsule
    reach: float  # share of ``BOOM_PATH`` the boom runs (short gaming booms end early)
    shell: str
    pad: str
    boom_colour: str


HEADSETS = [
    (
        "callcentre_black",
        Style(5.5, (7, 19), False, 2.6, 5.5, True, 1.0, "#26272b", "#111114", "#1d1e21"),
        1,
    ),
    (
        "office_silver",
        Style(6.5, (8, 21), True, 2.6, 5.0, True, 1.0, "#a9adb3", "#1b1b1e", "#2a2b2f"),
        1,
    ),
    (
        "gaming_red",
        Style(10.0, (12, 27), True, 4.2, 4.5, False, 0.75, "#1c1c20", "#2b2b30", "#b3202a"),
        1,
    ),
    (
        "gaming_white",
        Style(9.0, (11, 26), True, 4.0, 4.2, False, 0.72, "#e4e4e2", "#5b5d63", "#d9d9d6"),
        -1,
    ),
    (
        "earset_beige",
        Style(0.0, (4, 9), False, 1.8, 3.2, False, 1.0, "#d2b89b", "#c4a98c", "#d2b89b"),
        1,
    ),
    (
        "earset_black",
        Style(0.0, (4, 9), False, 1.8, 3.6, True, 1.0, "#232326", "#18181b", "#232326"),
        -1,
    ),
    (
        "mono_grey",
        Style(6.0, (8, 20), False, 2.4, 5.5, True, 0.95, "#5c5f66", "#1e1f22", "#3b3d42"),
        -1,
    ),
]


def _mirror(points, side: int) -> np.ndarray:
    p = np.asarray(points, np.float64).reshape(-1, 2).copy()
    if side < 0:
        p[:, 0] = 2 * MIDLINE - p[:, 0]
    return p


def _tube(cv: Canvas, path: np.ndarray, width: float, colour: np.ndarray) -> None:
    """A round tube (a band seen edge-on, a boom) along ``path`` (asset px): dark at its
    edges, lit along the middle, with a thin specular line."""
    cv.paint(cv.polyline(path, width), colour * 0.72)
    cv.paint(cv.polyline(path, width * 0.62), colour * 0.95)
    cv.paint(
        cv.polyline(path - (0.12 * width, 0.12 * width), max(width * 0.18, 0.6)),
        rgb("#ffffff"),
        0.28,
    )


def _band_path(t: Template) -> np.ndarray:
    """The band over the head: a rounded arch between the cups' tops (asset px)."""
    a = np.linspace(-np.pi / 2, np.pi / 2, 48)
    x = MIDLINE + BAND_HALF * np.sign(np.sin(a)) * np.abs(np.sin(a)) ** 0.9
    y = BAND_FOOT - (BAND_FOOT - BAND_TOP) * np.cos(a) ** 0.8
    return t(np.stack([x, y], 1))


def _cup(cv: Canvas, t: Template, style: Style, side: int, full: bool) -> None:
    """An ear cup seen from the front (edge-on): the shell lit from the upper left, its padded
    inner rim and a glint; ``full`` False draws the small pad of a mono headset."""
    hw, hh = style.cup if full else (style.cup[0] * 0.6, style.cup[1] * 0.55)
    c = t(_mirror([CUP_CENTRE], side))[0]
    hw, hh = hw * t.k, hh * t.k
    shell = rgb(style.shell)
    shade = cv.radial((c[0] - 0.5 * hw, c[1] - 0.6 * hh), 2.4 * hh) * 0.55 + 0.6
    body = cv.ellipse(c, (hw, hh))
    cv.paint(body, np.clip(shell[None, None] * shade[..., None], 0, 1))
    inner = cv.ellipse((c[0] - side * 0.45 * hw, c[1]), (hw * 0.5, hh * 0.86))  # the pad
    cv.paint(inner * body, rgb(style.pad) * (0.8 + 0.3 * cv.noise(2.0, 0.15))[..., None])
    glint = cv.ellipse((c[0] + side * 0.3 * hw, c[1] - 0.35 * hh), (hw * 0.2, hh * 0.35))
    cv.paint(glint * body, rgb("#ffffff"), 0.16)


def _earhook(cv: Canvas, t: Template, style: Style, side: int) -> None:
    """An earset's wire hook: up the front of the ear, over its top and down behind it."""
    cx, cy = CUP_CENTRE[0] - 3.0, CUP_CENTRE[1] - 6.0
    a = np.linspace(-0.2 * np.pi, 1.05 * np.pi, 24)
    hook = np.stack([cx + 7.0 * np.cos(a), cy - 15.0 * np.sin(a)], 1)
    _tube(cv, t(_mirror(hook, side)), style.boom * t.k * 1.2, rgb(style.boom_colour))
    c = t(_mirror([(cx + 2.0, cy + 4.0)], side))[0]  # the housing in front of the ear
    cv.paint(cv.ellipse(c, (style.cup[0] * t.k, style.cup[1] * t.k)), rgb(style.shell) * 0.9)


def _boom(cv: Canvas, t: Template, style: Style, side: int) -> None:
    """The boom from the cup to beside the mouth, and its capsule (foam or bare)."""
    path = t(_mirror(walk(BOOM_PATH, 20, upto=style.reach), side))
    _tube(cv, path, style.boom * t.k, rgb(style.boom_colour))
    end, r = path[-1], style.capsule * t.k
    if style.foam:
        tex = cv.noise(0.8, 0.22) * (cv.radial(end - r * 0.35, 1.6 * r) * 0.6 + 0.55)
        cv.paint(cv.ellipse(end, (r, r * 0.9)), rgb("#151517") * tex[..., None] * 1.6)
    else:
        cv.paint(cv.ellipse(end, (r, r * 0.8)), rgb(style.boom_colour) * 0.7)
        cv.paint(cv.ellipse(end - r * 0.25, (r * 0.45, r * 0.35)), rgb("#ffffff"), 0.2)


def _headset(seed: int, style: Style, side: int) -> Drawn:
    """One headset with its boom on ``side`` (+1 image-right, -1 image-left)."""
    t, names = HEADSET_T, HEADSET_ANCHORS
    if not style.band:
        t, names = EARSET_T, EARSET_ANCHORS
        if side < 0:  # the image-left side's half of the face
            x0 = 2 * MIDLINE - (t.x0 + t.w / t.k)
            t = Template(x0, t.y0, x0 + t.w / t.k, t.y0 + t.h / t.k, t.k)
            names = tuple(n.replace("right", "left") for n in names)
    cv = Canvas(t.w, t.h, seed)
    if style.band:
        _tube(cv, _band_path(t), style.band * t.k, rgb(style.shell))
        _cup(cv, t, style, -side, style.both_cups)
        _cup(cv, t, style, side, True)
    else:
        _earhook(cv, t, style, side)
    _boom(cv, t, style, side)
    return Drawn(
        cv.to_rgba(),
        t.anchors(names),
        {**WARP_PLACEMENT, "offset_iod": {"x": [-0.02, 0.02], "y": [-0.03, 0.03]}},
        {
            "gloss": 0.25,
            "contact": {
                "description": "the cups rest on the ears, the band on the hair; the boom "
                "floats beside the cheek",
                "points": [],
                "edge_px": 0,
            },
        },
    )


def headsets():
    return [(f"headset_{n}", lambda s, v=(st, side): _headset(s, *v)) for n, st, side in HEADSETS]
