"""Colour harmonisation of a photographed occluder with the face it is placed on.

A harvested occluder carries the light of the photo it was cut from: its colour cast and
exposure. ``harmonise`` moves it to the target face's by a statistics transfer in CIE Lab
(a perceptual space, as NatOcc does): the change from the *source* face's skin statistics
to the *target* face's — a mean shift of a and b (the cast), a gain on L (the exposure) and
a ratio of L spreads (contrast) — applied to the object at partial ``strength``. The
object's own colours, texture and shading stay: a white mask on a warm photo moves from
that photo's warmth to the new one's, it does not turn skin-coloured. Without a source face
(a cut-out), a neutral skin reference stands for it.

``SkinRef`` is what a sidecar stores (``harvest.face_lab``); ``skin_ref`` measures it on a
face in the canonical frame. ``harmonise_layer`` is the compositor's entry point.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..canonical import Landmarks

#: Skin of a face under neutral light, in OpenCV's float Lab (L 0..100): the reference of an
#: occluder whose source face is unknown (a cut-out).
NEUTRAL_SKIN_LAB = (66.0, 13.0, 17.0)
NEUTRAL_SKIN_STD = (12.0, 4.0, 5.0)
#: Default share of the source-to-target change applied.
DEFAULT_STRENGTH = 0.6
#: Limits of one transfer: the cast shift (Lab units), the exposure gain, the contrast ratio.
MAX_SHIFT_AB = 15.0
GAIN_RANGE = (0.6, 1.6)
CONTRAST_RANGE = (0.75, 1.35)


@dataclass(frozen=True)
class SkinRef:
    """Lab mean and standard deviation of a face's visible skin."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def neutral(cls) -> SkinRef:
        return cls(NEUTRAL_SKIN_LAB, NEUTRAL_SKIN_STD)

    def as_json(self) -> dict[str, list[float]]:
        return {"mean": [round(v, 3) for v in self.mean], "std": [round(v, 3) for v in self.std]}


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 float32 Lab of RGB (uint8, or float in [0, 1])."""
    f = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2Lab)


def face_region(landmarks: Landmarks, shape: tuple[int, int]) -> np.ndarray:
    """Boolean map of the skin area of a face: an ellipse from brows to chin, jaw to jaw."""
    lm = landmarks
    iod = max(lm.inter_ocular, 10.0)
    centre = (lm["nose_tip"] + (lm["brow_left"] + lm["brow_right"]) / 2) / 2
    centre = (centre + lm["nose_tip"]) / 2
    half_w = max(float(np.linalg.norm(lm["jaw_right"] - lm["jaw_left"])) / 2, 0.8 * iod)
    half_h = max(float(np.linalg.norm(lm["chin"] - centre)), 0.9 * iod)
    out = np.zeros(shape, np.uint8)
    cv2.ellipse(
        out,
        (int(round(centre[0])), int(round(centre[1]))),
        (int(round(0.85 * half_w)), int(round(0.95 * half_h))),
        float(np.rad2deg(lm.roll)),
        0,
        360,
        1,
        -1,
    )
    for eye in ("left_eye", "right_eye"):  # eyes are not skin
        x, y = lm[eye]
        cv2.circle(out, (int(round(x)), int(round(y))), int(round(0.2 * iod)), 0, -1)
    return out.astype(bool)


def skin_ref(image: np.ndarray, landmarks: Landmarks, exclude: np.ndarray | None = None) -> SkinRef:
    """Skin statistics of a face (HxWx3 uint8 RGB) outside ``exclude`` (e.g. the occluder,
    grown a little); the neutral reference when too little skin is visible."""
    region = face_region(landmarks, image.shape[:2])
    if exclude is not None:
        region &= ~exclude
    if region.sum() < 200:
        return SkinRef.neutral()
    lab = to_lab(image)[region]
    # trim the darkest and brightest tenth (beard, glare)
    lum = lab[:, 0]
    lo, hi = np.percentile(lum, [10, 90])
    keep = lab[(lum >= lo) & (lum <= hi)]
    if len(keep) < 100:
        keep = lab
    mean = keep.mean(0)
    std = np.maximum(keep.std(0), 1e-3)
    return SkinRef(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def harmonise(
    rgb: np.ndarray,
    alpha: np.ndarray,
    target: SkinRef,
    source: SkinRef | None = None,
    strength: float = DEFAULT_STRENGTH,
) -> np.ndarray:
    """``rgb`` (HxWx3 float32 in [0, 1], straight colour) moved from ``source``'s light to
    ``target``'s where ``alpha`` > 0; returns a new array (pixels without alpha unchanged).

    ``source`` None: the neutral skin reference. ``strength`` 0 changes nothing, 1 applies
    the whole transfer.
    """
    source = source or SkinRef.neutral()
    out = np.array(rgb, np.float32, copy=True)
    x, y, w, h = cv2.boundingRect((alpha > 0).astype(np.uint8))
    if w == 0 or h == 0 or strength <= 0:
        return out
    k = float(np.clip(strength, 0.0, 1.0))
    lab = to_lab(np.clip(out[y : y + h, x : x + w], 0.0, 1.0))
    a = alpha[y : y + h, x : x + w]
    s_mean, t_mean = np.array(source.mean), np.array(target.mean)
    s_std, t_std = np.array(source.std), np.array(target.std)
    gain = float(np.clip(t_mean[0] / max(s_mean[0], 1.0), *GAIN_RANGE)) ** k
    contrast = float(np.clip(t_std[0] / s_std[0], *CONTRAST_RANGE)) ** k
    shift = np.clip(t_mean[1:] - s_mean[1:], -MAX_SHIFT_AB, MAX_SHIFT_AB) * k
    w_obj = a[a > 0]
    l_obj = float((lab[..., 0][a > 0] * w_obj).sum() / w_obj.sum())
    L = lab[..., 0]
    lab[..., 0] = np.clip((L - l_obj) * contrast + l_obj * gain, 0.0, 100.0)
    lab[..., 1] += np.float32(shift[0])
    lab[..., 2] += np.float32(shift[1])
    new = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)
    region = out[y : y + h, x : x + w]
    take = a > 0
    region[take] = new[take]
    return out


def harmonise_layer(layer, target: SkinRef, source: SkinRef | None, strength: float) -> None:
    """Harmonise a placed ``layers.Layer`` in place (its ``rgb`` is replaced)."""
    layer.rgb = harmonise(layer.rgb, layer.alpha, target, source, strength)
