"""Checkpoints: atomic writes, ``weights_only`` loads, exact RNG round trips.

A checkpoint is a dict of tensors and plain containers only::

    format: "fdsgan-train/1"     config: resolved config dict
    models: {G1, G2, D1, D2: state_dict}     optimizers: {G1, G2, D1, D2: state_dict}
    scaler: GradScaler state or None          step, epoch, batch_in_epoch: int
    ema: {updates: int, G1, G2: state_dict} or None (train.ema; absent in older files)
    rng: {python, numpy, torch, cuda}
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fdsgan_train.config import validate
from occlusion_synth.errors import UserError

FORMAT = "fdsgan-train/1"
NETS = ("G1", "G2", "D1", "D2")
TMP_MARK = ".tmp-"  # .last.pt.tmp-<pid>: a write in progress


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
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return pid != os.getpid()  # our own pid is not writing while we start


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temp files of checkpoint writes killed midway (their process is gone)."""
    removed = []
    for tmp in folder.glob(f".*{TMP_MARK}*") if folder.is_dir() else ():
        pid = tmp.name.rpartition(TMP_MARK)[2]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _why_unreadable(path: Path, exc: Exception) -> str:
    """What was wrong with a file ``torch.load(weights_only=True)`` refused, in a few words."""
    text = str(exc)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if refused:
        return (
            f"refused: it asks to load {refused.group(1)}, which a safe (weights-only) load "
            "never runs; fdsgan-train checkpoints hold tensors and plain values only"
        )
    if path.stat().st_size == 0:
        return "the file is empty"
    if "PytorchStreamReader" in text or isinstance(exc, EOFError):
        return "damaged (a truncated or corrupted PyTorch file)"
    return "not a PyTorch checkpoint"


#: What each kind of checkpoint is for, and the option that takes it.
KINDS = {"fdsgan": "a de-occlusion (G1/G2) checkpoint", "segmenter": "a segmenter checkpoint"}
KIND_OPTIONS = {"fdsgan": "--checkpoint", "segmenter": "--segmenter"}


def checkpoint_kind(ckpt: dict[str, Any]) -> str:
    """``kind`` of a loaded checkpoint: ``segmenter``, or ``fdsgan`` (also files without one)."""
    return ckpt.get("kind", "fdsgan") if isinstance(ckpt.get("kind", "fdsgan"), str) else "?"


def load_checkpoint(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    kind: str | None = "fdsgan",
    mmap: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a bad file is a one-line error.

    ``kind``: the kind wanted (``fdsgan``, ``segmenter``; None: either); another kind is a
    one-line error naming the option that takes it. ``mmap``: map the tensors' storage
    instead of reading it (to look at a checkpoint without loading its weights).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - corrupt or foreign files end the same way
        raise UserError(f"cannot read checkpoint {path}: {_why_unreadable(path, exc)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not an fdsgan-train checkpoint ({FORMAT})")
    found = checkpoint_kind(ckpt)
    if kind is not None and found != kind:
        what = KINDS.get(found, f"a checkpoint of unknown kind '{found}'")
        where = f" (give it to {KIND_OPTIONS[found]})" if found in KIND_OPTIONS else ""
        raise UserError(f"{path} is {what}{where}, not {KINDS[kind]}")
    nets = ("S",) if found == "segmenter" else NETS
    missing = [k for k in ("config", "models") if k not in ckpt]
    missing += [f"models.{k}" for k in nets if k not in ckpt.get("models", nets)]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)}")
    ckpt["config"] = validate(ckpt["config"], f"checkpoint {path}: config")
    return ckpt


def _float_tensors(tree: dict[Any, Any], where: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _float_tensors(value, f"{where}{key}.")
        elif torch.is_tensor(value) and value.is_floating_point():
            yield f"{where}{key}", value


def nonfinite(tree: dict[Any, Any]) -> list[str]:
    """Dotted names of the floating-point tensors in ``tree`` holding a NaN or infinity.

    One host sync for the whole tree (the tensors must share a device).
    """
    items = list(_float_tensors(tree))
    if not items:
        return []
    finite = torch.stack([torch.isfinite(t).all() for _, t in items]).tolist()
    return [name for (name, _), ok in zip(items, finite, strict=True) if not ok]


def mismatch(net: str, model: nn.Module, state: dict[str, Any]) -> str | None:
    """How ``state`` does not fit ``model`` (missing / unexpected keys, shapes), or None."""
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    shapes = [
        f"{k} {tuple(state[k].shape)} in the checkpoint, {tuple(v.shape)} here"
        for k, v in want.items()
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)
    ]
    found = {
        "keys not in the checkpoint": missing,
        "keys only in the checkpoint": extra,
        "shapes differ": shapes,
    }
    parts = [f"{len(items)} {what} (e.g. {items[0]})" for what, items in found.items() if items]
    return f"{net}: {', '.join(parts)}" if parts else None


def generator_weights(ckpt: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The G1/G2 state dicts inference uses, and where they come from (``ema`` or ``models``):
    the EMA of the generators when the checkpoint holds one, else the trained weights."""
    ema = ckpt.get("ema")
    if isinstance(ema, dict) and all(isinstance(ema.get(k), dict) for k in ("G1", "G2")):
        return {k: ema[k] for k in ("G1", "G2")}, "ema"
    return {k: ckpt["models"][k] for k in ("G1", "G2")}, "models"


def load_generators(ckpt_path: str | Path, device: str | torch.device = "cpu"):
    """``(G1, G2, config)`` from a checkpoint, in eval mode on ``device``.

    The EMA weights when the checkpoint has them (``train.ema``), else the trained ones.

    The checkpoint's config is validated before any network is built, its weights must fit
    the networks and be finite. The generators map ``I_o`` = cat(input in [-1,1], mask in
    {0,1}) -> image in [-1,1]; G2 takes cat(I_o, G1(I_o)). See
    :func:`fdsgan_train.train.predict`.
    """
    from fdsgan_train.models import build_models

    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    models = build_models(ckpt["config"])
    g1, g2 = models["G1"], models["G2"]
    weights, source = generator_weights(ckpt)
    prefix = "ema." if source == "ema" else ""
    problems = [mismatch(f"{prefix}{k}", models[k], weights[k]) for k in ("G1", "G2")]
    if any(problems):
        raise UserError(
            f"checkpoint {ckpt_path} does not fit its own config: "
            + "; ".join(p for p in problems if p)
        )
    bad = nonfinite({f"{prefix}{k}": weights[k] for k in ("G1", "G2")})
    if bad:
        raise UserError(
            f"checkpoint {ckpt_path} holds NaN or infinite weights ({len(bad)} tensors, e.g. "
            f"{bad[0]}): the run that wrote it diverged"
        )
    g1.load_state_dict(weights["G1"])
    g2.load_state_dict(weights["G2"])
    return g1.to(device).eval(), g2.to(device).eval(), ckpt["config"]
