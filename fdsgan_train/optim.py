"""Learning-rate schedule, batch-size scaling and the EMA of the generators (not in the paper).

* :func:`lr_factor`: ``optim.warmup_steps`` of linear warm-up (step ``s`` of the warm-up runs
  at ``(s + 1) / warmup`` of the rate), then ``optim.decay`` (``none`` | ``cosine`` |
  ``linear``) from 1 down to ``optim.min_lr_ratio`` at the last step. The paper preset:
  no warm-up, no decay (constant rates).
* :func:`batch_scale`: ``optim.lr_scaling`` multiplies both rates by
  ``(global batch / optim.reference_batch) ** p``, ``p`` = 1 (``linear``, Goyal et al.) or
  1/2 (``sqrt``, the usual rule for Adam); ``none`` (the paper preset) keeps them as given.
  ``optim.lr_g`` / ``optim.lr_d`` are the rates at ``reference_batch``.
* :class:`GeneratorEMA`: an exponential moving average of G1 and G2 (``train.ema`` = decay;
  0 = off). Its effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n``
  updates, so a short run is not dominated by the initial weights.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


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


class GeneratorEMA:
    """Averaged copies of the generators (``models``: name -> module), updated in place."""

    def __init__(self, models: dict[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.models = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in models.items()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, models: dict[str, nn.Module]) -> None:
        d = self.current_decay()
        for k, avg in self.models.items():
            src = models[k]
            ema_p = [p for p in avg.parameters()]
            raw_p = [p.detach() for p in src.parameters()]
            torch._foreach_lerp_(ema_p, raw_p, 1 - d)
            for b_avg, b_src in zip(avg.buffers(), src.buffers(), strict=True):
                b_avg.copy_(b_src)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates} | {k: m.state_dict() for k, m in self.models.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for k, m in self.models.items():
            m.load_state_dict(state[k])
