"""Training-time augmentation (``data.augment``; the paper uses none), on the batch's device.

* ``hflip``: each sample is mirrored left-right with probability 1/2; input, mask and target
  together, so a sample stays a consistent (occluded, mask, clean) triple.
* ``mask_dilate`` / ``mask_erode``: each sample's mask is grown by ``r`` pixels, or shrunk by
  ``r``, with ``r`` drawn uniformly from ``-mask_erode .. mask_dilate`` (square structuring
  element, side ``2r + 1``). The rule every sample keeps: **outside the mask, the input equals
  the target.**

  - Dilation keeps it by itself: the pixels newly inside the hole are clean face pixels the
    input already holds (the model's input convention is "the occluded photo as it is", not a
    zeroed hole). A model trained so accepts masks drawn larger than the occluder.
  - Erosion alone would break it (occluder pixels would lie outside the mask, where a
    composite copies them and no loss can move them), so where the mask shrinks the input is
    re-composited from the target: the sample becomes one with a slightly smaller occluder.
    This varies mask outlines; it does not (and no composite model can) teach repainting
    occluder pixels that a too-small mask leaves out.

  The loss always uses the augmented mask, which is the true mask of the augmented sample.

Draws come from a ``torch.Generator`` the trainer seeds with ``(seed, step)``, so a resumed
run augments its batches exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def enabled(aug: dict[str, Any]) -> bool:
    return bool(aug["hflip"] or aug["mask_dilate"] or aug["mask_erode"])


def hflip(batch: dict[str, torch.Tensor], flip: torch.Tensor) -> dict[str, torch.Tensor]:
    """``input``, ``mask``, ``target`` of the samples where ``flip`` (N,) is true, mirrored."""
    out = dict(batch)
    sel = flip.view(-1, 1, 1, 1).to(batch["input"].device)
    for key in ("input", "mask", "target"):
        out[key] = torch.where(sel, batch[key].flip(-1), batch[key])
    return out


def morph(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """A (N, 1, H, W) {0, 1} mask dilated (``radius`` > 0) or eroded (< 0) by |radius| px."""
    if radius == 0:
        return mask
    k = 2 * abs(radius) + 1
    if radius > 0:
        return F.max_pool2d(mask, k, stride=1, padding=abs(radius))
    # erosion: dilate the complement; outside the frame counts as hole (no erosion from the edge)
    return 1 - F.max_pool2d(1 - mask, k, stride=1, padding=abs(radius))


def reshape_masks(batch: dict[str, torch.Tensor], radii: list[int]) -> dict[str, torch.Tensor]:
    """Each sample's mask dilated or eroded by its radius; the input re-composited from the
    target where the mask shrank, so the input still equals the target outside the mask."""
    out = dict(batch)
    masks = []
    for i, r in enumerate(radii):
        masks.append(morph(batch["mask"][i : i + 1], int(r)))
    mask = torch.cat(masks)
    shrunk = (batch["mask"] > 0.5) & (mask < 0.5)
    out["mask"] = mask
    out["input"] = torch.where(shrunk, batch["target"], batch["input"])
    return out


def augment(
    batch: dict[str, torch.Tensor], aug: dict[str, Any], gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """The batch augmented per ``data.augment`` (see the module docstring)."""
    n = batch["input"].shape[0]
    if aug["hflip"]:
        batch = hflip(batch, torch.rand(n, generator=gen) < 0.5)
    lo, hi = -aug["mask_erode"], aug["mask_dilate"]
    if lo != hi:
        radii = torch.randint(lo, hi + 1, (n,), generator=gen).tolist()
        batch = reshape_masks(batch, radii)
    return batch
