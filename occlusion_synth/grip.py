"""Held props come with the hand that holds them: a drawn fist gripping the prop.

Cups and microphones are never shown floating: after a prop is placed, a fist (the drawn
``hands`` fist, thumb side to the camera, its forearm running on to the image edge) is
placed on the prop's grip point, turned along the prop's entry direction (a little off it,
as a wrist bends), sized from the face, tinted like any hand (``sample.skin_tone``) and laid
over the prop in the same layer: the fingers cover the prop and cast a soft shadow on it.
The drawn phones are drawn in their hand already; harvested cups, microphones and phones
get one at their recorded grip point (``Harvest.grip``).
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np

from .canonical import Landmarks
from .categories import default_traits
from .layers import Layer
from .occluders.library import Occluder
from .occluders.schema import Anchors, Contact, Material, Placement

#: Categories held in a hand.
HELD_BY_HAND = frozenset({"cup", "microphone", "phone"})
#: Where a drawn prop is held: this share of the way from its target anchor to its entry.
GRIP_AT = {"microphone": 0.3, "cup": 0.32, "phone": 0.6}
#: Width of the fist's finger rolls in inter-ocular distances (a hand is ~1.3 IODs wide).
FIST_IOD = (1.05, 1.3)
#: Turn of the forearm away from the prop's own entry direction (degrees).
WRIST_TURN_DEG = 20.0
#: Fist geometry in its asset (``hands._hand(..., "fist", ...)``): the width of the finger
#: rolls and the point over which the prop's grip lies.
_FIST_WIDTH = 130.0
_FIST_CENTRE = (160.0, 240.0)
#: Shadow the fingers cast on the prop: strength, blur (px) and offset away from the light.
_SHADOW = (0.35, 1.6, 1.5)


def needs_hand(occ: Occluder) -> bool:
    """Whether ``occ`` is held by a hand that is not drawn in it."""
    if occ.category not in HELD_BY_HAND:
        return False
    return occ.harvest is not None or occ.category != "phone"


@functools.lru_cache(maxsize=1)
def fist() -> Occluder:
    """The gripping hand (drawn once per process, from a fixed seed)."""
    from .occluders.hands import _hand

    drawn = _hand(20240611, "fist", "#d9a27c")
    h, w = drawn.rgba.shape[:2]
    return Occluder(
        name="grip_fist",
        category="hand",
        rgba=drawn.rgba,
        anchors=Anchors({"target": _FIST_CENTRE, "entry": (w / 2, h - 1.0)}),
        placement=Placement(rule="from_edge"),
        material=Material(gloss=0.15, contact=Contact()),
        traits=default_traits("hand"),
    )


def grip_point(occ: Occluder, layer: Layer) -> np.ndarray | None:
    """Where the prop of ``layer`` is held, in the frame (None: not placed by a transform)."""
    if layer.transform is None:
        return None
    ta = np.asarray(occ.anchors["target"], np.float64)
    ea = np.asarray(occ.anchors["entry"], np.float64)
    g = ta + GRIP_AT.get(occ.category, 0.6) * (ea - ta)
    if occ.harvest is not None and occ.harvest.grip is not None:
        g = np.asarray(occ.harvest.grip, np.float64)
    return layer.transform[:, :2] @ g + layer.transform[:, 2]


def hand_layer(occ: Occluder, layer: Layer, lm: Landmarks, rng: np.random.Generator) -> Layer:
    """The fist holding the prop of ``layer`` (untinted; 3 draws from ``rng``), or an empty
    layer when the prop has no grip point."""
    from .placement import _rot, _warp_affine

    g = grip_point(occ, layer)
    turn = float(rng.uniform(-WRIST_TURN_DEG, WRIST_TURN_DEG))
    width = float(rng.uniform(*FIST_IOD))
    flip = bool(rng.integers(2))
    hand = fist()
    params: dict[str, Any] = {"fist_iod": round(width, 3), "wrist_turn_deg": round(turn, 2)}
    if g is None:
        return Layer(
            rgb=np.zeros_like(layer.rgb), alpha=np.zeros_like(layer.alpha), name=hand.name,
            category=hand.category, params=params,
        )  # fmt: skip
    d = np.asarray(layer.params.get("entry_dir", (0.0, 1.0)), np.float64)
    d = _rot(turn) @ (d / max(float(np.linalg.norm(d)), 1e-9))
    h, w = hand.rgba.shape[:2]
    ta = np.asarray(hand.anchors["target"], np.float64)
    ea = np.asarray(hand.anchors["entry"], np.float64)
    F = np.eye(3)
    if flip:
        F = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]])
        ta, ea = np.array([w - 1 - ta[0], ta[1]]), np.array([w - 1 - ea[0], ea[1]])
    d_a = ea - ta
    theta = np.arctan2(d[1], d[0]) - np.arctan2(d_a[1], d_a[0])
    s = width * max(lm.inter_ocular, 1e-3) / _FIST_WIDTH
    A = s * _rot(float(np.rad2deg(theta)))
    M = np.hstack([A, (g - A @ ta)[:, None]])
    M = (np.vstack([M, [0, 0, 1]]) @ F)[:2]
    params.update(flip=flip, grip_xy=[round(float(v), 2) for v in g])
    params["entry_dir"] = [round(float(v), 4) for v in d]
    out = _warp_affine(hand, M, True, params)
    out.contact = None
    return out


def hold(layer: Layer, hand: Layer, light_dir: tuple[float, float]) -> None:
    """Lay ``hand`` over the prop of ``layer`` in place: the fingers cover it and shade it
    where they cast their shadow (away from ``light_dir``); the prop's contact with the
    face is kept where the hand does not cover it."""
    x, y, w, h = cv2.boundingRect(cv2.compare(hand.alpha, 0.0, cv2.CMP_GT))
    if w == 0 or h == 0:
        return
    k, sigma, off = _SHADOW
    m = int(np.ceil(4 * sigma + off)) + 2  # the reach of the fingers' shadow
    H, W = hand.alpha.shape
    x0, y0, x1, y1 = max(x - m, 0), max(y - m, 0), min(x + w + m, W), min(y + h + m, H)
    box = (slice(y0, y1), slice(x0, x1))
    ah = hand.alpha[box]
    dx, dy = -light_dir[0] * off, -light_dir[1] * off
    shifted = cv2.warpAffine(ah, np.float32([[1, 0, dx], [0, 1, dy + 0.5]]), ah.shape[::-1])
    shadow = 1.0 - k * cv2.GaussianBlur(shifted, (0, 0), sigma)
    prop_rgb = layer.rgb[box] * shadow[..., None]
    ap = layer.alpha[box]
    a = ah + ap * (1.0 - ah)
    rgb = hand.rgb[box] * ah[..., None] + prop_rgb * (ap * (1.0 - ah))[..., None]
    layer.rgb = layer.rgb.copy()
    layer.rgb[box] = np.where(a[..., None] > 1e-6, rgb / np.maximum(a, 1e-6)[..., None], 0.0)
    layer.alpha = layer.alpha.copy()
    layer.alpha[box] = a
    if layer.contact is not None:
        layer.contact = layer.contact.copy()
        layer.contact[box] *= 1.0 - ah
    layer.params["held_by"] = {k: v for k, v in hand.params.items() if k != "level"}
