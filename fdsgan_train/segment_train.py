"""Training the occlusion segmenter (``fdsgan-train --config segmenter``).

The trainer's machinery, for one network ``S``: the same run folder (config.yaml,
checkpoints/last.pt, metrics.jsonl, tb/, samples/), ``--resume``, AMP, DDP, the
learning-rate schedule (``optim.warmup_steps``, ``optim.decay``) and :class:`tick.Schedule`.
Each step takes a batch, resizes the occluded input and its mask to ``segment.size``,
augments them (:func:`segmenter.augment`) and takes one AdamW step on BCE + Dice.
Validation reports the mean per-image IoU of the val split. With ``train.ema`` (a decay,
e.g. 0.999) an exponential moving average of the weights (``models.GeneratorEMA``) is the
network validated, saved as ``ema`` in the checkpoint and used by ``Segmenter``.

Batches come from the shards (``data.train_loader``) or, with ``data.on_device`` true (the
segmenter preset; ``auto``: when it fits in :data:`MAX_CACHE_GIB`), from the train and val
splits decoded once and held at ``segment.size`` as uint8 in host memory, where the
augmentation runs (:func:`load_cache`, 64 KiB a sample at 128 px: 20,000 take 1.25 GiB); on
a CPU the PNG decoding and the 256 -> 128 resize otherwise cost more than the network.
``segment.minutes`` bounds the training time: the run stops when that much time has passed
(the time of earlier sessions of a resumed run counts) and the learning-rate schedule runs
on the larger of the step share and the time share, so it has annealed when time is up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from fdsgan_train import checkpoint as ckpt_io
from fdsgan_train.config import save_config
from fdsgan_train.data import (
    decode_sample,
    eval_loader,
    iter_raw_samples,
    shard_paths,
    train_loader,
)
from fdsgan_train.device_data import device_batches
from fdsgan_train.distributed import Dist, all_reduce_sum, barrier
from fdsgan_train.logging_utils import RunLogger
from fdsgan_train.models import GeneratorEMA
from fdsgan_train.preflight import check_shards
from fdsgan_train.segmenter import (
    KIND,
    augment,
    batch_iou,
    build_segmenter,
    resize,
    segment_loss,
)
from fdsgan_train.tick import Due, Schedule, lr_factor
from occlusion_synth import shards
from occlusion_synth.errors import UserError

LOSS_KEYS = ("bce", "dice", "total", "iou")
#: Host memory the cached train split may take with ``data.on_device: auto``.
MAX_CACHE_GIB = 8.0


@dataclass(frozen=True)
class SegmentCache:
    """A split at ``segment.size`` as uint8 (batched by ``device_data.device_batches``):
    ``input`` (N, 3, S, S), ``mask`` (N, 1, S, S) the area-averaged 0/1 mask x 255 (what the
    streaming path's ``resize`` of the mask gives) of the ``target`` member (``segment.target``:
    ``object``, the occluders' own pixels, ``Sample.occluder_mask``; or ``mask``, every pixel
    the compositor changed)."""

    input: torch.Tensor
    mask: torch.Tensor
    target: str = "object"

    def __len__(self) -> int:
        return self.input.shape[0]

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Samples ``index`` as float32: input in [-1, 1], the target mask in [0, 1] (under
        the key of its member, as the streaming path's batches have it)."""
        return {
            "input": self.input[index].float().div_(127.5).sub_(1.0),
            self.target: self.mask[index].float().div_(255.0),
        }


def load_cache(
    paths: list, size: int, progress: bool = False, target: str = "object"
) -> SegmentCache | None:
    """Decode every sample of ``paths`` and hold it at ``size`` x ``size`` (None: no sample);
    ``target``: the mask kept (``segment.target``: ``object`` or ``mask``)."""
    inputs, masks = [], []
    try:
        for path in paths:
            for key, members in tqdm(
                iter_raw_samples(path), desc="caching", disable=not progress, leave=False
            ):
                s = decode_sample(key, members, path)
                kept = s.occluder_mask if target == "object" else s.mask
                mask = (kept > 127).astype(np.float32)
                if s.input.shape[0] != size:
                    inputs.append(cv2.resize(s.input, (size, size), interpolation=cv2.INTER_AREA))
                    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
                else:
                    inputs.append(s.input)
                masks.append(np.round(mask * 255).astype(np.uint8))
    except shards.ShardError as exc:
        raise UserError(f"--data: {exc}") from None
    if not inputs:
        return None
    image = torch.from_numpy(np.stack(inputs)).permute(0, 3, 1, 2).contiguous()
    masks_t = torch.from_numpy(np.stack(masks))[:, None].contiguous()
    return SegmentCache(image, masks_t, target)


def use_cache(setting, n_samples: int, size: int) -> bool:
    """Whether ``data.on_device`` (auto | true | false) caches the splits in host memory
    (``auto``: when the train split takes at most :data:`MAX_CACHE_GIB`)."""
    if setting is False:
        return False
    return setting is True or n_samples * size * size * 4 <= MAX_CACHE_GIB * 2**30


def cache_eval(cache: SegmentCache, batch_size: int, rank: int, world_size: int) -> list:
    """This rank's share of a cached split, in batches (for :meth:`SegmentTrainer.validate`)."""
    index = torch.arange(len(cache))[rank::world_size]
    return [cache.batch(index[i : i + batch_size]) for i in range(0, len(index), batch_size)]


class SegmentTrainer:
    """The segmenter, its AdamW optimiser, AMP and (under torchrun) DDP; :meth:`step` trains."""

    def __init__(self, cfg: dict[str, Any], device: torch.device, dist: Dist | None = None):
        from fdsgan_train.train import amp_settings

        self.cfg, self.device, self.dist = cfg, device, dist or Dist()
        torch.manual_seed(cfg["seed"])
        # channels-last: oneDNN's convolutions run ~1.7x faster on a CPU, cuDNN's with AMP too
        self.net = build_segmenter(cfg).to(device, memory_format=torch.channels_last)
        s = cfg["segment"]
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=s["lr"], weight_decay=s["weight_decay"]
        )
        self.amp, self.amp_dtype = amp_settings(cfg, device, cpu_bf16=True)
        self.scaler = torch.amp.GradScaler(
            device.type, enabled=self.amp and self.amp_dtype == torch.float16
        )
        self.aug_gen = torch.Generator()
        self.run = self.net
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index or 0] if device.type == "cuda" else None
            self.run = DDP(self.net, device_ids=ids)
        if cfg["train"]["compile"]:
            self.run = torch.compile(self.run)
        decay = cfg["train"]["ema"]
        self.ema = GeneratorEMA({"S": self.net}, decay) if decay > 0 else None

    @property
    def eval_net(self) -> torch.nn.Module:
        """The network validated and used at inference: the EMA copy with ``train.ema``."""
        return self.ema.models["S"] if self.ema is not None else self.net

    def set_lr(self, step: int, total: int) -> float:
        o = self.cfg["optim"]
        factor = lr_factor(step, total, o["warmup_steps"], o["decay"], o["min_lr_ratio"])
        for group in self.opt.param_groups:
            group["lr"] = self.cfg["segment"]["lr"] * factor
        return factor

    def autocast(self):
        from contextlib import nullcontext

        if not self.amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def prepare(self, batch: dict[str, torch.Tensor], index: int | None) -> tuple:
        """Input and mask at ``segment.size``, augmented (seeded by step and rank) when
        ``index`` is given."""
        size = self.cfg["segment"]["size"]
        image = resize(batch["input"], size)
        mask = resize(batch[self.cfg["segment"]["target"]], size)
        if index is not None:
            self.aug_gen.manual_seed(hash((self.cfg["seed"], index, self.dist.rank)) % 2**63)
            image, mask = augment(image, mask, self.cfg["segment"]["augment"], self.aug_gen)
        image = image.to(self.device).contiguous(memory_format=torch.channels_last)
        return image, mask.to(self.device)

    def step(self, batch: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        image, mask = self.prepare(batch, index)
        self.net.train()
        with self.autocast():
            logits = self.run(image)
        losses = segment_loss(logits, mask, self.cfg["segment"]["dice_weight"])
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update({"S": self.net})
        out = {k: v.detach() for k, v in losses.items()}
        out["iou"] = batch_iou(logits.detach(), mask).mean()
        out["image"], out["mask"], out["logits"] = image, mask, logits.detach()
        return out

    @torch.no_grad()
    def validate(self, loader, max_batches: int | None = None) -> dict[str, float]:
        """Mean per-image IoU (logit > 0 vs mask > 0.5) at ``segment.size`` over the split,
        of :attr:`eval_net`."""
        net = self.eval_net
        net.eval()
        sums = torch.zeros(2, dtype=torch.float64)
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            image, mask = self.prepare(batch, None)
            with self.autocast():
                logits = net(image)
            sums[0] += batch_iou(logits.float(), mask).sum().item()
            sums[1] += image.shape[0]
        self.net.train()
        sums = all_reduce_sum(sums.to(self.device), self.dist).cpu()
        return {"iou": sums[0].item() / max(sums[1].item(), 1.0), "n": sums[1].item()}

    def state(
        self, step: int, epoch: int, batch_in_epoch: int, elapsed_s: float = 0.0
    ) -> dict[str, Any]:
        return {
            "kind": KIND,
            "config": self.cfg,
            "models": {"S": self.net.state_dict()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizers": {"S": self.opt.state_dict()},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "elapsed_s": elapsed_s,
            "rng": ckpt_io.rng_state(),
        }

    def load_state(self, ckpt: dict[str, Any], path: Path) -> tuple[int, float]:
        if "optimizers" not in ckpt or "step" not in ckpt:
            raise UserError(f"--resume: {path} is not a training checkpoint")
        problem = ckpt_io.mismatch("S", self.net, ckpt["models"]["S"])
        if problem:
            raise UserError(f"--resume: {path} does not fit the config: {problem}")
        self.net.load_state_dict(ckpt["models"]["S"])
        if self.ema is not None:
            if ckpt.get("ema"):
                self.ema.load_state_dict(ckpt["ema"])
            else:  # a run resumed with train.ema newly set starts its average here
                self.ema = GeneratorEMA({"S": self.net}, self.ema.decay)
        self.opt.load_state_dict(ckpt["optimizers"]["S"])
        if ckpt.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        ckpt_io.set_rng_state(ckpt["rng"])
        return int(ckpt["step"]), float(ckpt.get("elapsed_s", 0.0))


def train_segmenter(cfg, data_dir: Path, run_dir: Path, resume: bool, device, dist: Dist):
    """The segmenter's loop; returns a ``train.TrainResult`` (scores: ``{"iou": ...}``)."""
    from fdsgan_train.train import TrainingDiverged, TrainResult

    t = cfg["train"]
    train_paths, val_paths = shard_paths(data_dir, "train"), shard_paths(data_dir, "val")
    if not train_paths:
        raise UserError(f"--data: no train shards in {data_dir}/shards (train-*.tar)")
    n_train = check_shards(train_paths)
    check_shards(val_paths)
    batch = cfg["data"]["batch_size"]
    steps_per_epoch = n_train // (batch * dist.world_size)
    if steps_per_epoch == 0:
        raise UserError(f"fewer train samples than one batch of {batch} per rank")
    total = t["epochs"] * steps_per_epoch
    if t["max_steps"] is not None:
        total = min(total, t["max_steps"])
    schedule = Schedule.from_config(t, total, steps_per_epoch)
    last = run_dir / "checkpoints" / "last.pt"
    if last.exists() and not resume:
        raise UserError(f"{run_dir} already holds a run: pass --resume or another --run-dir")
    if resume and not last.exists():
        raise UserError(f"--resume: no checkpoint at {last}")
    trainer = SegmentTrainer(cfg, device, dist)
    step, elapsed0 = 0, 0.0
    if resume:
        step, elapsed0 = trainer.load_state(ckpt_io.load_checkpoint(last, kind=KIND), last)
    start = step
    if dist.is_main:
        ckpt_io.remove_stale_temps(last.parent)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    log = RunLogger(run_dir, dist.is_main)
    workers, pin = cfg["data"]["num_workers"], device.type == "cuda"
    size, budget = cfg["segment"]["size"], cfg["segment"]["minutes"]
    cache = None
    if use_cache(cfg["data"]["on_device"], n_train, size):
        target = cfg["segment"]["target"]
        cache = load_cache(train_paths, size, progress=dist.is_main, target=target)
        val_cache = load_cache(val_paths, size, target=target) if val_paths else None
        val = cache_eval(val_cache, batch, dist.rank, dist.world_size) if val_cache else None
    else:
        val = (
            eval_loader(val_paths, batch, dist.rank, dist.world_size, workers, pin)
            if val_paths
            else None
        )
    t0 = time.perf_counter()

    def elapsed() -> float:
        return elapsed0 + time.perf_counter() - t0

    def save(step: int, keep: bool) -> None:
        bad = ckpt_io.nonfinite({"S": trainer.net.state_dict()})
        if bad:
            raise TrainingDiverged(f"weights not finite after step {step} (e.g. {bad[0]})")
        if dist.is_main:
            epoch, batch_in_epoch = divmod(step, steps_per_epoch)
            state = trainer.state(step, epoch, batch_in_epoch, elapsed())
            ckpt_io.save_checkpoint(last, state)
            if keep:
                ckpt_io.save_checkpoint(run_dir / "checkpoints" / f"ckpt-{step:07d}.pt", state)
        barrier(dist)

    bar = tqdm(total=total, initial=step, disable=not dist.is_main, desc="segmenter", unit="step")
    scores: dict[str, float] = {}
    batches = None
    tic, tic_step = time.perf_counter(), step
    while step < total:
        epoch, skip = divmod(step, steps_per_epoch)
        if batches is None:
            batches = (
                device_batches(cache, cfg, epoch, dist.rank, dist.world_size, skip)
                if cache is not None
                else train_loader(train_paths, cfg, epoch, dist.rank, dist.world_size, pin, skip)
            )
        at = step
        if budget is not None and step >= cfg["optim"]["warmup_steps"]:
            at = max(step, int(total * min(elapsed() / (60 * budget), 1.0)))  # the larger share
        lr_now = trainer.set_lr(at, total)
        out = trainer.step(next(batches), step)
        step += 1
        bar.update(1)
        due = schedule.due(step)
        if budget is not None and not due.stop and time_up(elapsed(), budget, dist, device):
            due = Due(True, due.sample, True, due.keep, True, due.epoch_end, True)
            total = step
        if due.epoch_end:
            batches = None
        if not due.sync:
            continue
        values = {k: float(out[k]) for k in LOSS_KEYS}
        if not all(map(lambda v: v == v and abs(v) != float("inf"), values.values())):
            raise TrainingDiverged(f"segmenter loss is not finite at step {step}")
        if due.log:
            bar.set_postfix({k: f"{values[k]:.3f}" for k in ("total", "iou")})
            rate = (step - tic_step) * batch * dist.world_size / (time.perf_counter() - tic)
            extra = {"images_per_s": rate, "lr_factor": lr_now}
            if device.type == "cuda":
                extra["gpu_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            log.log("train", step, values | extra, epoch=epoch)
            tic, tic_step = time.perf_counter(), step
        if due.sample:
            prob = torch.sigmoid(out["logits"].float()) * 2 - 1
            log.sample_grid(step, [out["image"], out["mask"] * 2 - 1, prob])
        if due.checkpoint:
            save(step, due.keep)
        if due.validate and val is not None:
            scores = trainer.validate(val, t["val_max_batches"])
            log.log("val", step, scores, epoch=epoch)
            if dist.is_main:
                tqdm.write(f"val step {step}: IoU {scores['iou']:.4f} ({scores['n']:.0f} samples)")
            tic = time.perf_counter()
    bar.close()
    log.close()
    if dist.is_main:
        tqdm.write(f"segmenter: {step - start} steps in {elapsed() - elapsed0:.0f} s")
    return TrainResult(last if dist.is_main else None, step, step - start, scores)


def time_up(elapsed_s: float, minutes: float, dist: Dist, device: torch.device) -> bool:
    """Whether ``segment.minutes`` have passed on any rank (so that all ranks stop)."""
    flag = torch.tensor([1.0 if elapsed_s >= 60 * minutes else 0.0], device=device)
    return bool(all_reduce_sum(flag, dist).item() > 0)
