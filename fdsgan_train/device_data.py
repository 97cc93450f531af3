"""``data.on_device``: the train split decoded once and held on the training device as uint8.

A 256x256 sample is 7 bytes a pixel as uint8 (input 3, target 3, mask 1): 448 KiB, so 20,000
samples take 8.75 GiB, which a large GPU holds beside the model. Batches are then gathered
and converted to float on the device: no DataLoader workers, no PNG decoding per step. The
augmentation (flips, mask reshaping) already runs on the device (``data.augment_batch``).

* ``on_device: false`` (the paper preset): the regular streaming path (:mod:`fdsgan_train.data`).
* ``true``: always (on a CPU run the split is held in RAM); a CUDA device without room for it
  is a one-line ``UserError``.
* ``auto``: on CUDA when the split takes at most :data:`MAX_FREE_FRACTION` of the free memory.

Tensors are bit-identical to the streaming path's (same decoder, same uint8 -> [-1, 1]
arithmetic); only the order differs: epoch ``e`` is a permutation of the whole split seeded
by ``(seed, e)`` (a shuffle of everything rather than a shuffle buffer), rank ``r`` of ``R``
takes every ``R``-th entry of it, and a resumed run skips its first batches exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from fdsgan_train.data import decode_sample, iter_raw_samples
from occlusion_synth import shards
from occlusion_synth.errors import UserError

#: Bytes of one 256x256 sample held as uint8 (input 3 + target 3 + mask 1 channels).
SAMPLE_BYTES = 256 * 256 * 7
#: ``auto`` holds the split on the GPU when it needs at most this share of the free memory.
MAX_FREE_FRACTION = 0.5


@dataclass(frozen=True)
class DeviceDataset:
    """A split as uint8 tensors on one device: ``input``, ``target`` (N, 3, H, W), ``mask``
    (N, 1, H, W, 0/1)."""

    input: torch.Tensor
    mask: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return self.input.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.input, self.mask, self.target))

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Samples ``index`` as the streaming path gives them: float32, images in [-1, 1]."""
        index = index.to(self.input.device)
        return {
            "input": self.input[index].float().div_(127.5).sub_(1.0),
            "mask": self.mask[index].float(),
            "target": self.target[index].float().div_(127.5).sub_(1.0),
        }


def load_device_dataset(
    paths: list[Path], device: torch.device, progress: bool = False
) -> DeviceDataset:
    """Decode every sample of ``paths`` (in shard order) into uint8 tensors on ``device``."""
    inputs, masks, targets = [], [], []
    try:
        for path in paths:
            for key, members in tqdm(
                iter_raw_samples(path), desc=f"to {device.type}", disable=not progress, leave=False
            ):
                s = decode_sample(key, members, path)
                inputs.append(np.ascontiguousarray(s.input.transpose(2, 0, 1)))
                masks.append((s.mask > 127)[None])
                targets.append(np.ascontiguousarray(s.target.transpose(2, 0, 1)))
    except shards.ShardError as exc:
        raise UserError(f"--data: {exc}") from None
    if not inputs:
        raise UserError("--data: no samples to hold on the device")

    def stack(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrays).astype(np.uint8)).to(device)

    return DeviceDataset(stack(inputs), stack(masks), stack(targets))


def resolve_on_device(setting: Any, device: torch.device, n_samples: int) -> bool:
    """Whether ``data.on_device`` (auto | true | false) holds ``n_samples`` on ``device``."""
    if setting is False:
        return False
    need = n_samples * SAMPLE_BYTES
    if device.type != "cuda":
        return setting is True
    free, _total = torch.cuda.mem_get_info(device)
    fits = need <= MAX_FREE_FRACTION * free
    if setting is True and not fits:
        raise UserError(
            f"data.on_device: the train split needs {need / 2**30:.2f} GiB as uint8, more than "
            f"{MAX_FREE_FRACTION:.0%} of the {free / 2**30:.2f} GiB free on {device}; "
            "set data.on_device=auto or false"
        )
    return fits


def epoch_order(n: int, seed: int, epoch: int, rank: int, world_size: int) -> torch.Tensor:
    """This rank's sample indices for one epoch: a permutation seeded by ``(seed, epoch)``."""
    gen = torch.Generator().manual_seed(hash((seed, epoch)) % 2**63)
    return torch.randperm(n, generator=gen)[rank::world_size]


def device_batches(
    data: DeviceDataset,
    cfg: dict[str, Any],
    epoch: int,
    rank: int,
    world_size: int,
    skip: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches of epoch ``epoch`` for this rank, after skipping ``skip`` batches
    (passes after the first reuse the order with the next epoch's seed)."""
    size = cfg["data"]["batch_size"]
    start, ep = skip * size, epoch
    while True:
        order = epoch_order(len(data), cfg["seed"], ep, rank, world_size)
        for i in range(start, len(order) - size + 1, size):
            yield data.batch(order[i : i + size])
        start, ep = 0, ep + 1
