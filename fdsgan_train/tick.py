"""What the training loop does after each step, decided in one place (StyleGAN2-ADA's "tick").

:meth:`Schedule.due` is a pure function of the step count: the loop asks it once per step and
acts on the answer, so the periodic actions (log, sample grid, checkpoint, validation, stop)
and the host syncs they need happen only on the steps that need them.

The learning-rate schedule is a pure function of the step too (not in the paper):

* :func:`lr_factor`: ``optim.warmup_steps`` of linear warm-up (step ``s`` of the warm-up runs
  at ``(s + 1) / warmup`` of the rate), then ``optim.decay`` (``none`` | ``cosine`` |
  ``linear``) from 1 down to ``optim.min_lr_ratio`` at the last step. The paper preset:
  no warm-up, no decay (constant rates).
* :func:`batch_scale`: ``optim.lr_scaling`` multiplies both rates by
  ``(global batch / optim.reference_batch) ** p``, ``p`` = 1 (``linear``, Goyal et al.) or
  1/2 (``sqrt``, the usual rule for Adam); ``none`` (the paper preset) keeps them as given.
  ``optim.lr_g`` / ``optim.lr_d`` are the rates at ``reference_batch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Due:
    """The actions due after one step (``epoch_end``: the step finished an epoch)."""

    log: bool = False
    sample: bool = False
    checkpoint: bool = False
    keep: bool = False
    validate: bool = False
    epoch_end: bool = False
    stop: bool = False

    @property
    def sync(self) -> bool:
        """Whether any action needs the step's values on the host."""
        return self.log or self.sample or self.checkpoint or self.validate or self.stop


@dataclass(frozen=True)
class Schedule:
    """Periods of the loop's actions; ``total`` is the step the run stops at."""

    total: int
    steps_per_epoch: int
    log_every: int
    sample_every: int
    checkpoint_every: int
    keep_every: int | None = None
    val_every_epoch: bool = True
    val_every: int | None = None

    @classmethod
    def from_config(cls, train: dict[str, Any], total: int, steps_per_epoch: int) -> Schedule:
        """The schedule of a config's ``train`` section."""
        return cls(
            total=total,
            steps_per_epoch=steps_per_epoch,
            log_every=train["log_every"],
            sample_every=train["sample_every"],
            checkpoint_every=train["checkpoint_every"],
            keep_every=train["keep_every"],
            val_every_epoch=train["val_every_epoch"],
            val_every=train.get("val_every"),
        )

    def due(self, step: int) -> Due:
        """What is due once ``step`` steps (counted from 1) are done.

        The last step always logs, checkpoints and validates; validation also follows every
        epoch when ``val_every_epoch`` is set, and every ``val_every`` steps when set.
        """
        stop = step >= self.total
        epoch_end = step % self.steps_per_epoch == 0
        checkpoint = stop or step % self.checkpoint_every == 0
        return Due(
            log=stop or step % self.log_every == 0,
            sample=step % self.sample_every == 0,
            checkpoint=checkpoint,
            keep=checkpoint and self.keep_every is not None and step % self.keep_every == 0,
            validate=stop
            or (epoch_end and self.val_every_epoch)
            or (self.val_every is not None and step % self.val_every == 0),
            epoch_end=epoch_end,
            stop=stop,
        )


def lr_factor(step: int, total: int, warmup: int, decay: str, min_ratio: float) -> float:
    """Multiplier of the base rates for (0-based) ``step`` of a ``total``-step run."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay == "none":
        return 1.0
    span = max(total - warmup - 1, 1)
    progress = min(max((step - warmup) / span, 0.0), 1.0)
    if decay == "cosine":
        shape = 0.5 * (1 + math.cos(math.pi * progress))
    elif decay == "linear":
        shape = 1 - progress
    else:
        raise ValueError(f"unknown decay '{decay}'")
    return min_ratio + (1 - min_ratio) * shape


def batch_scale(optim: dict[str, Any], global_batch: int) -> float:
    """Factor ``optim.lr_scaling`` applies to both base rates for ``global_batch``."""
    ratio = global_batch / optim["reference_batch"]
    return {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[optim["lr_scaling"]]
