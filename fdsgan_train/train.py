"""The FD-StackGAN training loop.

One step on a batch ``(I_c, I_m, I_gt)`` with ``I_o = cat(I_c, I_m)`` (paper, section 4.1:
"trains both stage models alternatively"; each stage is its own GAN):

1. ``I_o^i = G1(I_o)``
2. D1 update on ``(I_o, I_gt)`` real vs ``(I_o, I_o^i)`` fake (``I_o^i`` detached)
3. G1 update: ``100 * L_r + 33 * L_p + L_a(D1)`` (D1 frozen)
4. ``I_o^f = G2(cat(I_o, I_o^i))`` with ``I_o^i`` detached, so G1 learns from Stage I only
5. D2 update, then G2 update: ``10 * L_r + 3.3 * L_p + L_a(D2)``

Adam with the two time-scale rule (G 1e-4, D 4e-4). Losses are on the raw generator outputs;
validation scores the composite (prediction inside the mask, input outside).

Options outside the paper (all off in the ``paper`` preset; the ``fast`` preset turns them on):
``model.composite`` (the generators output the composite themselves, so the losses and the
discriminators see it), ``loss.hole_weight``, ``model.d_spectral_norm``, ``data.augment``
(:func:`fdsgan_train.data.augment_batch`), warm-up/decay and batch scaling of the rates
(:func:`fdsgan_train.tick.lr_factor`) and an EMA of the generators
(:class:`fdsgan_train.models.GeneratorEMA`). With ``train.ema`` the EMA generators are the
ones validated, saved as ``ema`` in the checkpoint and preferred by ``load_generators``.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from fdsgan_train import checkpoint as ckpt_io
from fdsgan_train.config import save_config
from fdsgan_train.data import augment_batch, augment_enabled, eval_loader, shard_paths, train_loader
from fdsgan_train.device_data import device_batches, load_device_dataset, resolve_on_device
from fdsgan_train.distributed import (
    Dist,
    all_reduce_min,
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown,
)
from fdsgan_train.logging_utils import RunLogger
from fdsgan_train.losses import (
    adversarial_loss,
    build_perceptual,
    discriminator_loss,
    l1_loss,
    pixel_weights,
    ssim,
    ssim_loss,
)
from fdsgan_train.models import GeneratorEMA, build_models
from fdsgan_train.preflight import check_shards
from fdsgan_train.tick import Schedule, batch_scale, lr_factor
from occlusion_synth.errors import UserError

NETS = ckpt_io.NETS
#: The per-step losses :meth:`Trainer.step` returns, in a fixed order.
LOSS_KEYS = tuple(f"s{s}/{k}" for s in (1, 2) for k in ("d", "l1", "ssim", "perc", "adv", "total"))


class TrainingDiverged(Exception):
    """A loss or the weights became NaN or infinite. Not a user error: exit code 3."""

    exit_code = 3


@dataclass(frozen=True)
class TrainResult:
    """How a run ended: its checkpoint (None on ranks other than 0), step, last scores."""

    checkpoint: Path | None
    step: int
    trained_steps: int
    scores: dict[str, float]


def predict(g1: nn.Module, g2: nn.Module, inp: torch.Tensor, mask: torch.Tensor):
    """Stage I and Stage II outputs for inputs in [-1, 1] and masks in {0, 1}."""
    cond = torch.cat([inp, mask], 1)
    stage1 = g1(cond)
    return stage1, g2(torch.cat([cond, stage1], 1))


def composite(pred: torch.Tensor, inp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The prediction inside the mask, the input outside."""
    return mask * pred + (1 - mask) * inp


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    return torch.device(name)


def amp_settings(
    cfg: dict[str, Any], device: torch.device, cpu_bf16: bool = False
) -> tuple[bool, torch.dtype]:
    """``train.amp``: auto | true | false. bf16 where supported, else fp16.

    ``auto`` is on for CUDA and, with ``cpu_bf16`` (the segmenter), also on a CPU with
    native bf16 matrix units (:func:`cpu_has_amx`), where oneDNN's bf16 convolutions run
    ~1.4x faster than fp32.
    """
    amp = cfg["train"]["amp"]
    if amp == "auto":
        enabled = device.type == "cuda" or (device.type == "cpu" and cpu_bf16 and cpu_has_amx())
    else:
        enabled = bool(amp)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return enabled, torch.float16
    return enabled, torch.bfloat16


def cpu_has_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has AMX bf16 tiles (the ``amx_bf16`` flag of Linux's ``cpuinfo``;
    False where there is no such file)."""
    try:
        with open(cpuinfo) as f:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in f)
    except OSError:
        return False


class Trainer:
    """Holds the four networks, their optimisers and the loss modules; :meth:`step` trains."""

    def __init__(self, cfg: dict[str, Any], device: torch.device, dist: Dist | None = None) -> None:
        self.cfg, self.device, self.dist = cfg, device, dist or Dist()
        torch.manual_seed(cfg["seed"])
        self.nets = {k: m.to(device) for k, m in build_models(cfg).items()}  # plain modules
        self.memory_format = (
            torch.channels_last if cfg["train"]["channels_last"] else torch.contiguous_format
        )
        for net in self.nets.values():
            net.to(memory_format=self.memory_format)
        self.perceptual = build_perceptual(cfg).to(device)
        o = cfg["optim"]
        betas = tuple(o["betas"])
        self.lr_scale = batch_scale(o, cfg["data"]["batch_size"] * self.dist.world_size)
        self.opts = {
            k: torch.optim.Adam(net.parameters(), lr=self.base_lr(k), betas=betas)
            for k, net in self.nets.items()
        }
        for k, opt in self.opts.items():
            for group in opt.param_groups:
                group["initial_lr"] = self.base_lr(k)  # the rate the schedule multiplies
        decay = cfg["train"]["ema"]
        gens = {k: self.nets[k] for k in ("G1", "G2")}
        self.ema = GeneratorEMA(gens, decay) if decay > 0 else None
        self.aug_gen = torch.Generator()
        self.amp, self.amp_dtype = amp_settings(cfg, device)
        self.scaler = torch.amp.GradScaler(
            device.type, enabled=self.amp and self.amp_dtype == torch.float16
        )
        self.run = dict(self.nets)  # what the step calls: DDP-wrapped and/or compiled
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = (
                [device.index if device.index is not None else 0] if device.type == "cuda" else None
            )
            self.run = {k: DDP(m, device_ids=ids) for k, m in self.run.items()}
        if cfg["train"]["compile"]:
            self.run = {k: torch.compile(m) for k, m in self.run.items()}

    def base_lr(self, net: str) -> float:
        """``optim.lr_g`` / ``optim.lr_d`` times the batch-size factor (``optim.lr_scaling``)."""
        return self.cfg["optim"]["lr_g" if net[0] == "G" else "lr_d"] * self.lr_scale

    def set_lr(self, step: int, total: int) -> float:
        """Set each optimiser's rate for (0-based) ``step`` of ``total``; returns the factor."""
        o = self.cfg["optim"]
        factor = lr_factor(step, total, o["warmup_steps"], o["decay"], o["min_lr_ratio"])
        for k, opt in self.opts.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lr(k) * factor
        return factor

    def eval_generators(self) -> tuple[nn.Module, nn.Module]:
        """The generators to validate, evaluate and save for inference: the EMA when on."""
        if self.ema is not None:
            return self.ema.models["G1"], self.ema.models["G2"]
        return self.nets["G1"], self.nets["G2"]

    def autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _d_update(self, name: str, cond: torch.Tensor, real: torch.Tensor, fake: torch.Tensor):
        opt = self.opts[name]
        opt.zero_grad(set_to_none=True)
        with self.autocast():  # real and fake in one forward: one DDP reduction per update
            logits = self.run[name](torch.cat([cond, cond]), torch.cat([real, fake]))
            real_logits, fake_logits = logits.chunk(2)
            loss = discriminator_loss(real_logits, fake_logits, self.cfg["loss"]["gan"])
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        return loss.detach()

    def _g_update(self, stage: int, cond, fake, target, ref, pix) -> dict[str, torch.Tensor]:
        weights = self.cfg["loss"][f"stage{stage}"]
        disc = self.nets[f"D{stage}"]  # plain module: its weights are not trained here
        disc.requires_grad_(False)
        with self.autocast():
            l1 = l1_loss(fake.float(), target, pix)
            ssim_l = ssim_loss(fake, target, pix)
            perc = self.perceptual(fake, target, ref, pix).float()
            adv = adversarial_loss(disc(cond, fake), True, self.cfg["loss"]["gan"])
            total = weights["alpha"] * (l1 + ssim_l) + weights["beta"] * perc + adv
        disc.requires_grad_(True)
        opt = self.opts[f"G{stage}"]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(opt)
        return {"l1": l1, "ssim": ssim_l, "perc": perc, "adv": adv, "total": total}

    def step(self, batch: dict[str, torch.Tensor], index: int | None = None):
        """One alternating update of both stages; returns detached losses and the outputs.

        ``index``: the 0-based step number; it seeds the augmentation (``data.augment``) so a
        resumed run draws the same flips and mask radii. The batch returned under ``batch``
        is the augmented one.
        """
        fmt, dev = self.memory_format, self.device
        batch = {k: batch[k].to(dev, non_blocking=True) for k in ("input", "mask", "target")}
        aug = self.cfg["data"]["augment"]
        if augment_enabled(aug):
            self.aug_gen.manual_seed(hash((self.cfg["seed"], index or 0, self.dist.rank)) % 2**63)
            batch = augment_batch(batch, aug, self.aug_gen)
        inp, mask, target = (
            batch[k].contiguous(memory_format=fmt) for k in ("input", "mask", "target")
        )
        pix = pixel_weights(mask, self.cfg["loss"]["hole_weight"])
        cond = torch.cat([inp, mask], 1)
        out: dict[str, torch.Tensor] = {}
        with self.autocast():
            stage1 = self.run["G1"](cond)
            with torch.no_grad():  # the target's VGG features serve both stages
                ref = self.perceptual.feature_maps(target)
        out["s1/d"] = self._d_update("D1", cond, target, stage1.detach())
        for k, v in self._g_update(1, cond, stage1, target, ref, pix).items():
            out[f"s1/{k}"] = v.detach()
        with self.autocast():
            stage2 = self.run["G2"](torch.cat([cond, stage1.detach()], 1))
        out["s2/d"] = self._d_update("D2", cond, target, stage2.detach())
        for k, v in self._g_update(2, cond, stage2, target, ref, pix).items():
            out[f"s2/{k}"] = v.detach()
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.nets)
        out["stage1"], out["stage2"] = stage1.detach(), stage2.detach()
        out["batch"] = batch
        return out

    @torch.no_grad()
    def validate(self, loader, max_batches: int | None = None) -> dict[str, float]:
        """PSNR/SSIM (dB, [0,1]) of the Stage-II composite and of the unmodified input, and
        the masked-region PSNR of the composite (per image, from the MSE over the hole's
        pixels x 3 channels; images without a hole left out). EMA generators when on."""
        g1, g2 = (g.eval() for g in self.eval_generators())
        # psnr_out, ssim_out, psnr_in, ssim_in, n, masked psnr_out, masked psnr_in, n masked
        sums = torch.zeros(8, dtype=torch.float64)
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            inp, mask, target = (batch[k].to(self.device) for k in ("input", "mask", "target"))
            with self.autocast():
                _, stage2 = predict(g1, g2, inp, mask)
            out = composite(stage2.float().clamp(-1, 1), inp, mask)
            t01 = (target + 1) / 2
            for j, img in enumerate((out, inp)):
                x01 = (img + 1) / 2
                mse = ((x01 - t01) ** 2).flatten(1).mean(1).clamp_min(1e-10)
                sums[2 * j] += (10 * torch.log10(1 / mse)).sum().item()
                sums[2 * j + 1] += ssim(x01, t01).sum().item()
                area = mask.flatten(1).sum(1) * 3
                sq = (((x01 - t01) ** 2) * mask).flatten(1).sum(1)
                has = area > 0
                m_mse = (sq[has] / area[has]).clamp_min(1e-10)
                sums[5 + j] += (10 * torch.log10(1 / m_mse)).sum().item()
                if j == 0:
                    sums[7] += has.sum().item()
            sums[4] += inp.shape[0]
        if self.ema is None:
            g1.train(), g2.train()
        sums = all_reduce_sum(sums.to(self.device), self.dist).cpu()
        n, n_masked = max(sums[4].item(), 1.0), max(sums[7].item(), 1.0)
        names = ("psnr_composite", "ssim_composite", "psnr_input", "ssim_input")
        masked = {
            "psnr_masked_composite": sums[5].item() / n_masked,
            "psnr_masked_input": sums[6].item() / n_masked,
        }
        return (
            masked
            | {name: sums[i].item() / n for i, name in enumerate(names)}
            | {"n": sums[4].item()}
        )

    def state(self, step: int, epoch: int, batch_in_epoch: int) -> dict[str, Any]:
        return {
            "config": self.cfg,
            "models": {k: m.state_dict() for k, m in self.nets.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizers": {k: o.state_dict() for k, o in self.opts.items()},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "rng": ckpt_io.rng_state(),
        }

    def load_state(self, ckpt: dict[str, Any], path: Path) -> int:
        """Restore a training checkpoint (refused in one line when it does not fit)."""
        missing = [k for k in ("optimizers", "scaler", "step", "rng") if k not in ckpt]
        if missing:
            raise UserError(f"--resume: {path} is not a training checkpoint (no {missing[0]})")
        ours, theirs = self.cfg["model"], ckpt["config"]["model"]
        problems = [
            f"model.{k} {theirs[k]} in the checkpoint, {v} here"
            for k, v in ours.items()
            if theirs[k] != v
        ]
        problems += [p for k in NETS if (p := ckpt_io.mismatch(k, self.nets[k], ckpt["models"][k]))]
        if problems:
            raise UserError(f"--resume: {path} does not fit the config: {'; '.join(problems)}")
        for k in NETS:
            self.nets[k].load_state_dict(ckpt["models"][k])
            self.opts[k].load_state_dict(ckpt["optimizers"][k])
        if self.ema is not None:
            if ckpt.get("ema"):
                self.ema.load_state_dict(ckpt["ema"])
            else:  # EMA turned on at resume: start it from the current weights
                self.ema = GeneratorEMA({k: self.nets[k] for k in ("G1", "G2")}, self.ema.decay)
        if ckpt["scaler"] is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        ckpt_io.set_rng_state(ckpt["rng"])
        return int(ckpt["step"])

    def apply_optim_config(self) -> list[str]:
        """Set the config's learning rates and betas on the optimisers (after a resume).

        Returns what changed, e.g. ``["optim.lr_g 0.0001 -> 0.0002"]``.
        """
        o, changes = self.cfg["optim"], []
        for k, opt in self.opts.items():
            key = "lr_g" if k[0] == "G" else "lr_d"
            for group in opt.param_groups:
                old_lr = group.get("initial_lr", group["lr"])
                for name, old, new in (
                    (f"optim.{key}", old_lr, self.base_lr(k)),
                    ("optim.betas", list(group["betas"]), list(o["betas"])),
                ):
                    change = f"{name} {old} -> {new}"
                    if old != new and change not in changes:
                        changes.append(change)
                group["lr"], group["betas"] = self.base_lr(k), tuple(o["betas"])
                group["initial_lr"] = self.base_lr(k)
        return changes


class LossWatch:
    """Tracks, on the device, the first step whose losses were NaN or infinite.

    :meth:`update` queues a few device operations per step and never waits for the device;
    :meth:`first_bad` reads the result (one host sync), agreed over all ranks.
    """

    CLEAN = 2**62

    def __init__(self, device: torch.device) -> None:
        self.first = torch.full((), self.CLEAN, dtype=torch.int64, device=device)
        self.bad = torch.zeros(len(LOSS_KEYS), dtype=torch.int64, device=device)

    def update(self, losses: torch.Tensor, step: int) -> None:
        nonfinite = ~torch.isfinite(losses)
        new = nonfinite.any() & (self.first == self.CLEAN)
        self.first = torch.where(new, step, self.first)
        self.bad = torch.where(new, nonfinite.long(), self.bad)

    def first_bad(self, dist: Dist) -> tuple[int, list[str]] | None:
        """``(step, loss names)`` of the first non-finite losses on any rank, or None."""
        first = int(all_reduce_min(self.first.clone(), dist))
        bad = all_reduce_sum(self.bad.clone(), dist).tolist()
        if first == self.CLEAN:
            return None
        return first, [k for k, b in zip(LOSS_KEYS, bad, strict=True) if b]


def train(cfg: dict[str, Any], data_dir: Path, run_dir: Path, resume: bool = False) -> TrainResult:
    """Train per ``cfg`` (rank 0 writes ``run_dir``); raises :class:`TrainingDiverged`."""
    device = resolve_device(cfg["train"]["device"])
    dist = init_distributed(device.type)
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
    try:
        if cfg["model"]["kind"] == "segmenter":
            from fdsgan_train.segment_train import train_segmenter

            return train_segmenter(cfg, data_dir, run_dir, resume, device, dist)
        return _train(cfg, data_dir, run_dir, resume, device, dist)
    finally:
        shutdown(dist)


def _train(cfg, data_dir: Path, run_dir: Path, resume: bool, device, dist: Dist) -> TrainResult:
    t = cfg["train"]
    train_paths, val_paths = shard_paths(data_dir, "train"), shard_paths(data_dir, "val")
    if not train_paths:
        raise UserError(f"--data: no train shards in {data_dir}/shards (train-*.tar)")
    n_train = check_shards(train_paths)  # every shard the run reads, before step 1
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
    if dist.is_main:
        ckpt_io.remove_stale_temps(last.parent)

    trainer = Trainer(cfg, device, dist)
    step, saved_step = 0, None
    if resume:
        step = saved_step = trainer.load_state(ckpt_io.load_checkpoint(last), last)
        changes = trainer.apply_optim_config()
        if changes and dist.is_main:
            tqdm.write(f"resume: {', '.join(changes)} (from the config)")
    start = step
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    log = RunLogger(run_dir, dist.is_main)
    if not val_paths:
        note = (
            f"no val split in {data_dir}: validation skipped; build with more source faces, or "
            "give the fractions yourself (occsynth build --split 0.8,0.1,0.1; an explicit "
            "--split also overrides CelebA's partition)"
        )
        log.log("warning", step, {}, message=note)
        if dist.is_main:
            tqdm.write(note)
    pin = device.type == "cuda"
    val = (
        eval_loader(val_paths, batch, dist.rank, dist.world_size, cfg["data"]["num_workers"], pin)
        if val_paths
        else None
    )

    def last_good() -> str:
        if saved_step is None:
            return "No checkpoint was saved."
        return f"The last good checkpoint is {last} (step {saved_step})."

    def save(step: int, keep: bool) -> None:
        """Write last.pt (and a kept copy), never over it with non-finite weights."""
        nonlocal saved_step
        bad = ckpt_io.nonfinite({k: m.state_dict() for k, m in trainer.nets.items()})
        if bad:
            raise TrainingDiverged(
                f"{len(bad)} weight tensors (e.g. {bad[0]}) are not finite after step {step}; "
                f"stopped without saving. {last_good()}"
            )
        if dist.is_main:
            state = trainer.state(step, step // steps_per_epoch, step % steps_per_epoch)
            ckpt_io.save_checkpoint(last, state)
            if keep:
                ckpt_io.save_checkpoint(run_dir / "checkpoints" / f"ckpt-{step:07d}.pt", state)
        barrier(dist)
        saved_step = step

    def run_validation(step: int, epoch: int) -> dict:
        if val is None:
            return {}
        scores = trainer.validate(val, t["val_max_batches"])
        log.log("val", step, scores, epoch=epoch)
        if dist.is_main:
            tqdm.write(
                f"val step {step}: masked PSNR {scores['psnr_masked_composite']:.2f} dB "
                f"(input {scores['psnr_masked_input']:.2f}); "
                f"PSNR composite {scores['psnr_composite']:.2f} dB "
                f"(input {scores['psnr_input']:.2f}), SSIM {scores['ssim_composite']:.4f} "
                f"(input {scores['ssim_input']:.4f})"
            )
        return scores

    held = None  # data.on_device: the train split as uint8 on the device
    if resolve_on_device(cfg["data"]["on_device"], device, n_train):
        held = load_device_dataset(train_paths, device, progress=dist.is_main)
    bar = tqdm(total=total, initial=step, disable=not dist.is_main, desc="train", unit="step")
    watch = LossWatch(device)
    scores: dict = {}
    batches = None
    tic, tic_step = time.perf_counter(), step
    while step < total:
        epoch, skip = divmod(step, steps_per_epoch)
        if batches is None:
            batches = (
                device_batches(held, cfg, epoch, dist.rank, dist.world_size, skip)
                if held is not None
                else train_loader(train_paths, cfg, epoch, dist.rank, dist.world_size, pin, skip)
            )
        data = next(batches)
        lr_now = trainer.set_lr(step, total)
        out = trainer.step(data, step)
        data = out.pop("batch")
        step += 1
        losses = torch.stack([out[k].float() for k in LOSS_KEYS])  # stays on the device
        watch.update(losses, step)
        bar.update(1)
        due = schedule.due(step)
        if due.epoch_end:
            batches = None  # the next epoch has its own order; its workers start then
        if not due.sync:
            continue
        diverged = watch.first_bad(dist)
        if diverged:
            first, names = diverged
            stopped = "stopped" if first == step else f"stopped at step {step}"
            raise TrainingDiverged(
                f"loss {', '.join(names)} is not finite at step {first}; {stopped}. {last_good()}"
            )
        if due.log:
            values = dict(zip(LOSS_KEYS, losses.tolist(), strict=True))
            bar.set_postfix({k: f"{values[k]:.3f}" for k in ("s1/l1", "s2/l1", "s1/d", "s2/d")})
            rate = (step - tic_step) * batch * dist.world_size / (time.perf_counter() - tic)
            extra = {"images_per_s": rate, "lr_factor": lr_now}
            if device.type == "cuda":
                extra["gpu_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            log.log("train", step, values | extra, epoch=epoch)
            tic, tic_step = time.perf_counter(), step
        if due.sample:
            columns = [data["input"], data["mask"] * 2 - 1, out["stage1"], out["stage2"]]
            log.sample_grid(step, [*columns, data["target"]])
        if due.checkpoint:
            save(step, due.keep)
        if due.validate:
            scores = run_validation(step, epoch)
            tic = time.perf_counter()
    bar.close()
    log.close()
    if step == start and dist.is_main:
        tqdm.write(f"nothing to train: {last} is at step {step} of {total}")
    return TrainResult(last if dist.is_main else None, step, step - start, scores)
