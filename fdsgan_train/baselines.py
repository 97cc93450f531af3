"""De-occlusion methods compared by ``fdsgan-eval``, each a registered function.

Every method maps (occluded input, mask, stage predictions) to a uint8 (H, W, 3) RGB result
of the input's size: the unmodified input, OpenCV's Telea and Navier-Stokes inpainting with
the same mask, and the FD-StackGAN stages. The model methods come in two forms: ``stage1`` /
``stage2`` are *composited* (the prediction inside the mask, the input outside — what a user
gets from ``fdsgan-infer``), ``stage1_raw`` / ``stage2_raw`` are the generator's output as is
(the paper reports raw outputs). The generators run once per batch (``predict_stages``) and
the model methods only select and composite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

INPAINT_RADIUS = 3  # pixels: the neighbourhood cv2.inpaint considers around each pixel


@dataclass(frozen=True)
class StagePredictions:
    """Raw generator outputs for one sample, uint8 (H, W, 3) RGB."""

    stage1: np.ndarray
    stage2: np.ndarray


MethodFn = Callable[[np.ndarray, np.ndarray, "StagePredictions | None"], np.ndarray]


@dataclass(frozen=True)
class Method:
    """A registered method: ``label`` for tables and figures, ``needs_model`` for G1/G2."""

    name: str
    label: str
    needs_model: bool
    fn: MethodFn


METHODS: dict[str, Method] = {}


def register(name: str, label: str, needs_model: bool = False):
    """Decorator adding a method to ``METHODS`` under ``name``."""

    def wrap(fn: MethodFn) -> MethodFn:
        METHODS[name] = Method(name, label, needs_model, fn)
        return fn

    return wrap


def binary_mask(mask: np.ndarray) -> np.ndarray:
    """A (H, W) uint8 mask, 255 where occluded (any non-zero input), 0 elsewhere."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=2)
    return np.where(m > 0, 255, 0).astype(np.uint8)


def composite(pred: np.ndarray, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``pred`` where the mask is non-zero, ``image`` elsewhere (uint8 RGB)."""
    m = binary_mask(mask) > 0
    out = np.array(image, dtype=np.uint8, copy=True)
    out[m] = np.asarray(pred, dtype=np.uint8)[m]
    return out


@register("input", "Input (occluded)")
def unmodified(image: np.ndarray, mask: np.ndarray, preds: StagePredictions | None) -> np.ndarray:
    """The occluded input itself: the floor any method should beat."""
    return np.array(image, dtype=np.uint8, copy=True)


@register("telea", "OpenCV Telea")
def telea(image: np.ndarray, mask: np.ndarray, preds: StagePredictions | None) -> np.ndarray:
    """``cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)`` (fast marching, radius 3 px)."""
    return cv2.inpaint(
        np.ascontiguousarray(image, np.uint8), binary_mask(mask), INPAINT_RADIUS, cv2.INPAINT_TELEA
    )


@register("navier_stokes", "OpenCV Navier-Stokes")
def navier_stokes(
    image: np.ndarray, mask: np.ndarray, preds: StagePredictions | None
) -> np.ndarray:
    """``cv2.inpaint(image, mask, 3, cv2.INPAINT_NS)`` (Navier-Stokes, radius 3 px)."""
    return cv2.inpaint(
        np.ascontiguousarray(image, np.uint8), binary_mask(mask), INPAINT_RADIUS, cv2.INPAINT_NS
    )


def _need(preds: StagePredictions | None) -> StagePredictions:
    if preds is None:
        raise ValueError("this method needs the model's stage predictions")
    return preds


@register("stage1", "Stage I (composited)", needs_model=True)
def stage1(image: np.ndarray, mask: np.ndarray, preds: StagePredictions | None) -> np.ndarray:
    """Base-Net (G1) output inside the mask, input outside."""
    return composite(_need(preds).stage1, image, mask)


@register("stage2", "Stage I+II (composited)", needs_model=True)
def stage2(image: np.ndarray, mask: np.ndarray, preds: StagePredictions | None) -> np.ndarray:
    """Refine-Net (G2) output inside the mask, input outside: FD-StackGAN as a user gets it."""
    return composite(_need(preds).stage2, image, mask)


@register("stage1_raw", "Stage I (raw)", needs_model=True)
def stage1_raw(image: np.ndarray, mask: np.ndarray, preds: StagePredictions | None) -> np.ndarray:
    """Base-Net (G1) output as is, every pixel generated (Table 2, one stage)."""
    return np.array(_need(preds).stage1, dtype=np.uint8, copy=True)


@register("stage2_raw", "Stage I+II (raw)", needs_model=True)
def stage2_raw(image: np.ndarray, mask: np.ndarray, preds: StagePredictions | None) -> np.ndarray:
    """Refine-Net (G2) output as is, every pixel generated (Table 1 / Table 2, two stages)."""
    return np.array(_need(preds).stage2, dtype=np.uint8, copy=True)
