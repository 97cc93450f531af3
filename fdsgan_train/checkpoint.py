"""Checkpoints: atomic writes, ``weights_only`` loads, exact RNG round trips.

A checkpoint is a dict of tensors and plain containers only::

    format: "fdsgan-train/1"     config: resolved config dict
    models: {G1, G2, D1, D2: state_dict}     optimizers: {G1, G2, D1, D2: state_dict}
    scaler: GradScaler state or None          step, epoch, batch_in_epoch: int
    rng: {python, numpy, torch, cuda}
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from occlusion_synth.errors import UserError

FORMAT = "fdsgan-train/1"


def rng_state() -> dict[str, Any]:
    """Python, NumPy (legacy global), torch CPU and CUDA generator states as plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a bad file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt or foreign files end the same way
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint, or damaged ({first})"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not an fdsgan-train checkpoint ({FORMAT})")
    return ckpt


def load_generators(ckpt_path: str | Path, device: str | torch.device = "cpu"):
    """``(G1, G2, config)`` from a checkpoint, in eval mode on ``device``.

    The generators map ``I_o`` = cat(input in [-1,1], mask in {0,1}) -> image in [-1,1];
    G2 takes cat(I_o, G1(I_o)). See :func:`fdsgan_train.train.predict`.
    """
    from fdsgan_train.models import build_models

    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    models = build_models(ckpt["config"])
    g1, g2 = models["G1"], models["G2"]
    g1.load_state_dict(ckpt["models"]["G1"])
    g2.load_state_dict(ckpt["models"]["G2"])
    return g1.to(device).eval(), g2.to(device).eval(), ckpt["config"]
