"""Shards -> tensors: ``input``, ``target`` (3,H,W) in [-1, 1] and ``mask`` (1,H,W) in {0, 1}.

The shards are the occsynth tars (``OUT/shards/<split>-NNNNNN.tar``; each sample is
``<key>.input.png``, ``<key>.mask.png``, ``<key>.target.png``, ``<key>.json``, adjacent in
the tar). Reading and decoding are :mod:`occlusion_synth.shards`' (the one reader of the
format, shared with ``occsynth verify``): a link, an absolute or ``..`` path, an oversized
member or a repeated key is a ``ShardError`` naming the shard, an incomplete or undecodable
sample one naming its shard and key (never a silently skipped sample). Before anything is
decoded, each image member's PNG header must say 8-bit 256x256 RGB (mask: greyscale), so a
decompression bomb or a wrong-size mask costs nothing. A file named like a shard that is not
a regular file (a FIFO would block the reader) is refused when the shards are listed. Through
the loaders, these errors end as one-line ``UserError``s, also from DataLoader workers.

How the data is split across DDP ranks and DataLoader workers: the ``world = ranks x workers``
readers each get a disjoint part. With at least ``world`` shards, reader ``g`` reads shards
``g, g + world, ...`` (of a shard order shuffled per pass); with fewer shards every reader
scans all of them but decodes only samples ``g, g + world, ...`` of the stream.

Training order is a function of ``(seed, epoch)`` only: :class:`ShardStream` is an endless
sequence of passes over a reader's part, pass ``p`` of epoch ``e`` shuffled by a buffer seeded
with ``(seed, e, p, g)``. An epoch is a fixed number of batches (the split's sample count //
(ranks x batch)), so every rank runs the same number of steps, and a resumed run skips the
batches it already consumed (:func:`train_loader` with ``skip``).

A dataset at a URL (``s3://bucket/x``, any fsspec URL; see :mod:`occlusion_synth.storage`) is
read the same way: its shards are listed in the bucket and each is streamed, WebDataset-style,
member by member through the same safe reader, never downloaded whole. With a cache folder
(``--data-cache DIR`` or ``FDSGAN_DATA_CACHE``) each shard is instead downloaded once, whole,
to ``DIR/<scheme>/<bucket>/<prefix>/shards/`` (under a temporary name, then renamed; a cached
shard whose size matches the object is reused) and read from there by every later pass and
run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from occlusion_synth import shards, storage
from occlusion_synth.errors import UserError
from occlusion_synth.storage import Location

#: Environment variable naming the local cache folder of shards read from a URL.
CACHE_ENV = "FDSGAN_DATA_CACHE"


def cache_folder() -> Path | None:
    """The local cache folder of remote shards (``FDSGAN_DATA_CACHE``), or None: stream."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else None


def shard_paths(data_dir: Location, split: str) -> list[Location]:
    """The sorted shard files of one split (``data_dir/shards/<split>-NNNNNN.tar``).

    ``data_dir`` may be a URL: its shards are then URLs (streamed), or local copies in the
    cache folder when one is set (:func:`cache_folder`). A local name that is not a regular
    file (folder, FIFO, device, broken link) is a ``UserError``.
    """
    root = storage.location(data_dir)
    if not storage.isdir(root):
        raise UserError(f"--data: folder {root} does not exist")
    paths = shards.list_shards(root, split)
    if storage.is_remote(root):  # listed objects: regular by construction
        cache = cache_folder()
        return paths if cache is None else [cached_shard(p, cache) for p in paths]
    for path in paths:
        try:
            shards.check_regular(path)
        except shards.ShardError as exc:
            raise UserError(f"--data: {exc}") from None
    return paths


def cache_path(url: str, cache: Path) -> Path:
    """Where the shard at ``url`` is kept in ``cache``: ``cache/<scheme>/<path of the URL>``."""
    scheme, _, rest = url.partition("://")
    parts = [p for p in rest.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UserError(f"--data: {url}: '.' and '..' are not allowed in a URL")
    return cache.joinpath(scheme, *parts)


def cached_shard(url: str, cache: Path) -> Path:
    """The local copy of the shard at ``url`` in ``cache``, downloaded whole the first time
    (to a temporary name, then renamed: a copy never exists half-written)."""
    local = cache_path(url, cache)
    try:
        size = storage.size(url)
        if local.is_file() and local.stat().st_size == size:
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f"{local.name}.{os.getpid()}{storage.TMP_SUFFIX}")
        try:
            with storage.open_read(url) as src, open(tmp, "wb") as dst:
                while chunk := src.read(8 * 1024 * 1024):
                    dst.write(chunk)
            if tmp.stat().st_size != size:
                raise OSError(f"got {tmp.stat().st_size} of {size} bytes")
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise UserError(f"--data: cannot cache {url} in {cache} ({exc})") from None
    return local


def iter_raw_samples(path: Location) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {member: bytes})`` for each sample of one shard, in tar order, undecoded."""
    try:
        yield from shards.read_shard(path)
    except shards.ShardError as exc:
        raise shards.ShardError(f"{path}: {exc}") from None


def _rgb(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1).div_(127.5).sub_(1.0)


def decode_sample(key: str, members: dict[str, bytes], shard: Location) -> shards.Sample:
    """One sample decoded by ``shards.decode_sample`` (PNG headers checked before decoding);
    any problem is a ``ShardError`` naming the shard, the key and the member."""
    return shards.decode_sample(key, members, shard=str(shard))


def decode(key: str, members: dict[str, bytes], shard: Location) -> dict:
    """Members of one sample -> ``key`` and its tensors: ``input``, ``mask`` (``> 127`` of
    the PNG), ``target`` and ``object`` (``Sample.occluder_mask``, for the segmenter)."""
    s = decode_sample(key, members, shard)
    mask = torch.from_numpy(s.mask > 127).float()[None]
    obj = mask if s.object_mask is None else torch.from_numpy(s.object_mask > 127).float()[None]
    return {
        "key": key,
        "input": _rgb(s.input),
        "mask": mask,
        "target": _rgb(s.target),
        "object": obj,
    }


def _one_line_errors(items: Iterable) -> Iterator:
    """``items``, with a ``ShardError`` (also one re-raised from a DataLoader worker, whose
    message holds the worker's traceback) turned into a one-line ``UserError``."""
    try:
        yield from items
    except shards.ShardError as exc:
        exc.__traceback__ = None  # frees the DataLoader's workers now (else 5 s later, in gc)
        last = (str(exc).strip().splitlines() or [""])[-1]
        prefix = f"{shards.ShardError.__module__}.{shards.ShardError.__qualname__}: "
        raise UserError(f"--data: {last.removeprefix(prefix)}") from None


def reader_slot(rank: int, world_size: int) -> tuple[int, int]:
    """This process's reader index and the number of readers (ranks x DataLoader workers)."""
    info = get_worker_info()
    workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
    return rank * workers + worker, world_size * workers


#: A sample as read from its shard: ``(shard path or URL, key, {member: bytes})``.
_Raw = tuple[Location, str, dict[str, bytes]]


class ShardStream(IterableDataset):
    """Samples of a split for one rank: one pass (``endless=False``) or endless passes."""

    def __init__(
        self,
        paths: list[Location],
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer: int = 0,
        endless: bool = True,
    ) -> None:
        super().__init__()
        self.paths = list(paths)
        self.seed, self.epoch = seed, epoch
        self.rank, self.world_size = rank, world_size
        self.shuffle_buffer = shuffle_buffer
        self.endless = endless

    def _one_pass(self, pas: int, slot: int, readers: int) -> Iterator[_Raw]:
        order = list(self.paths)
        if self.shuffle_buffer:
            np.random.default_rng([self.seed, self.epoch, pas]).shuffle(order)
        if len(order) >= readers:
            for path in order[slot::readers]:
                for key, parts in iter_raw_samples(path):
                    yield path, key, parts
        else:
            i = 0
            for path in order:
                for key, parts in iter_raw_samples(path):
                    if i % readers == slot:
                        yield path, key, parts
                    i += 1

    def _shuffled(self, items: Iterator[_Raw], rng) -> Iterator[_Raw]:
        if not self.shuffle_buffer:
            yield from items
            return
        buf: list[_Raw] = []
        for item in items:
            buf.append(item)
            if len(buf) >= self.shuffle_buffer:
                j = int(rng.integers(len(buf)))
                buf[j], buf[-1] = buf[-1], buf[j]
                yield buf.pop()
        rng.shuffle(buf)
        yield from buf

    def __iter__(self) -> Iterator[dict]:
        slot, readers = reader_slot(self.rank, self.world_size)
        pas = 0
        while True:
            rng = np.random.default_rng([self.seed, self.epoch, pas, slot])
            got = 0
            for path, key, parts in self._shuffled(self._one_pass(pas, slot, readers), rng):
                got += 1
                yield decode(key, parts, path)
            if not self.endless:
                return
            if got == 0:
                raise RuntimeError(
                    f"reader {slot} of {readers} has no samples: fewer samples than "
                    "ranks x data.num_workers; lower data.num_workers"
                )
            pas += 1


def _loader(ds: IterableDataset, batch_size: int, workers: int, pin: bool) -> DataLoader:
    return DataLoader(
        ds,
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=pin,
        drop_last=False,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )


def train_loader(
    paths: list[Location],
    cfg: dict,
    epoch: int,
    rank: int,
    world_size: int,
    pin_memory: bool,
    skip: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches of epoch ``epoch`` for this rank, after skipping ``skip`` batches.

    Skipping decodes and drops the batches (exact: the order does not depend on it).
    """
    d = cfg["data"]
    ds = ShardStream(paths, cfg["seed"], epoch, rank, world_size, d["shuffle_buffer"], True)
    return _one_line_errors(
        _skipping(_loader(ds, d["batch_size"], d["num_workers"], pin_memory), skip)
    )


def _skipping(loader: DataLoader, skip: int) -> Iterator[dict[str, torch.Tensor]]:
    it = iter(loader)
    for _ in range(skip):
        next(it)
    yield from it


class EvalLoader:
    """Iterable again and again: one unshuffled pass over this rank's part of a split."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return _one_line_errors(self.loader)


def eval_loader(
    paths: list[Location], batch_size: int, rank: int, world_size: int, workers: int, pin: bool
) -> EvalLoader:
    """One unshuffled pass over this rank's part of a split (each time it is iterated)."""
    ds = ShardStream(paths, 0, 0, rank, world_size, shuffle_buffer=0, endless=False)
    return EvalLoader(_loader(ds, batch_size, workers, pin))


# --------------------------------------------------------------------------- augmentation
def augment_enabled(aug: dict[str, Any]) -> bool:
    return bool(aug["hflip"] or aug["mask_dilate"] or aug["mask_erode"])


def hflip(batch: dict[str, torch.Tensor], flip: torch.Tensor) -> dict[str, torch.Tensor]:
    """``input``, ``mask``, ``target`` of the samples where ``flip`` (N,) is true, mirrored."""
    out = dict(batch)
    sel = flip.view(-1, 1, 1, 1).to(batch["input"].device)
    for key in ("input", "mask", "target"):
        out[key] = torch.where(sel, batch[key].flip(-1), batch[key])
    return out


def morph_mask(mask: torch.Tensor, radius: int) -> torch.Tensor:
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
        masks.append(morph_mask(batch["mask"][i : i + 1], int(r)))
    mask = torch.cat(masks)
    shrunk = (batch["mask"] > 0.5) & (mask < 0.5)
    out["mask"] = mask
    out["input"] = torch.where(shrunk, batch["target"], batch["input"])
    return out


def augment_batch(
    batch: dict[str, torch.Tensor], aug: dict[str, Any], gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """The batch augmented per ``data.augment`` (the paper uses none), on its device.

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
    n = batch["input"].shape[0]
    if aug["hflip"]:
        batch = hflip(batch, torch.rand(n, generator=gen) < 0.5)
    lo, hi = -aug["mask_erode"], aug["mask_dilate"]
    if lo != hi:
        radii = torch.randint(lo, hi + 1, (n,), generator=gen).tolist()
        batch = reshape_masks(batch, radii)
    return batch
