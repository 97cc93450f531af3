"""Configuration: presets are YAML data (``presets/paper.yaml``, ``presets/tiny.yaml``).

A config is a plain nested dict (so it can go into a ``weights_only`` checkpoint). A YAML
file may name ``base: paper|tiny|OTHER.yaml`` and override any subset of keys; unknown keys
are an error, so a typo never passes silently. Command-line flags are applied last as dotted
overrides (``train.max_steps=200``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from occlusion_synth.errors import UserError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PRESETS = ("paper", "tiny", "fast", "segmenter")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"config {path} must be a mapping of keys to values")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Deep-merge ``over`` into a copy of ``base``; keys must already exist in ``base``."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        name = f"{where}{key}"
        if key not in out:
            raise UserError(f"unknown config key '{name}'")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise UserError(f"config key '{name}' must be a mapping")
            out[key] = _merge(out[key], value, f"{name}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve(spec: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if spec in seen:
        raise UserError(f"config 'base' chain loops: {' -> '.join(seen + (spec,))}")
    if spec in PRESETS:
        path = PRESETS_DIR / f"{spec}.yaml"
    else:
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"--config: '{spec}' is neither a preset {PRESETS} nor a file")
    data = _read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        if spec != "paper":  # every chain ends in the paper preset, which defines all keys
            base = "paper"
        else:
            return data
    elif not isinstance(base, str):
        raise UserError(f"config {path}: 'base' must be a preset name or a file path")
    elif base not in PRESETS and not Path(base).is_absolute():
        base = str((path.parent / base).resolve())
    return _merge(_resolve(base, seen + (spec,)), data)


def load_config(spec: str = "paper", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resolve a preset name or YAML file, then apply dotted ``overrides``."""
    cfg = _resolve(spec)
    for dotted, value in (overrides or {}).items():
        cfg = apply_override(cfg, dotted, value)
    return validate(cfg)


def apply_override(cfg: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``cfg`` with ``a.b.c`` set to ``value`` (the key must exist)."""
    nested: dict[str, Any] = value
    for part in reversed(dotted.split(".")):
        nested = {part: nested}
    return _merge(cfg, nested)


def parse_set(item: str) -> tuple[str, Any]:
    """Parse a ``--set key.path=value`` item; the value is read as YAML (``1e-4``, ``[1,2]``)."""
    if "=" not in item:
        raise UserError(f"--set expects key=value, got '{item}'")
    key, raw = item.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise UserError(f"--set {item}: bad value ({exc})") from exc


# --------------------------------------------------------------------------- validation
#: A check turns a value into the key's type (``"1e-4"`` -> ``1e-4``: YAML 1.1 reads an
#: exponent without a dot as a string) or raises ``ValueError("must be ...")``.
Check = Callable[[Any], Any]


def _integer(lo: int | None = None, hi: int | None = None, null: bool = False) -> Check:
    bounds = f" in [{lo}, {hi}]" if hi is not None else f" >= {lo}" if lo is not None else ""
    need = f"must be an integer{bounds}{' or null' if null else ''}"

    def check(value: Any) -> int | None:
        if value is None and null:
            return None
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            if not float(number).is_integer():
                raise ValueError
            out = int(number)
        except (ValueError, OverflowError):
            raise ValueError(need) from None
        if (lo is not None and out < lo) or (hi is not None and out > hi):
            raise ValueError(need)
        return out

    return check


def _number(
    lo: float | None = None,
    hi: float | None = None,
    open_lo: bool = False,
    open_hi: bool = False,
    null: bool = False,
) -> Check:
    need = "must be a finite number"
    if hi is not None:
        need += f" in {'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}"
    elif lo is not None:
        need += f" {'>' if open_lo else '>='} {lo}"
    need += " or null" if null else ""

    def check(value: Any) -> float | None:
        if value is None and null:
            return None
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            out = float(value)
        except (ValueError, OverflowError):
            raise ValueError(need) from None
        too_low = lo is not None and (out <= lo if open_lo else out < lo)
        too_high = hi is not None and (out >= hi if open_hi else out > hi)
        if not math.isfinite(out) or too_low or too_high:
            raise ValueError(need)
        return out

    return check


def _choice(*values: Any) -> Check:
    names = (str(v).lower() if isinstance(v, bool) else str(v) for v in values)
    need = f"must be one of {', '.join(names)}"

    def check(value: Any) -> Any:
        if not any(type(value) is type(v) and value == v for v in values):
            raise ValueError(need)
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _text(null: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None and null:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a string" + (" or null" if null else ""))
        return value

    return check


def _list(item: Check, what: str, least: int, most: int) -> Check:
    count = f"{least}" if least == most else f"{least} to {most}"
    need = f"must be a list of {count} {what}"

    def check(value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)) or not least <= len(value) <= most:
            raise ValueError(need)
        try:
            return [item(v) for v in value]
        except ValueError:
            raise ValueError(need) from None

    return check


def _gan_loss(value: Any) -> str:
    from fdsgan_train.losses import GAN_LOSSES

    if value not in GAN_LOSSES:
        raise ValueError(f"must be one of {', '.join(GAN_LOSSES)}")
    return value


_POSITIVE = _integer(1)
_WEIGHT = _number(0.0)
#: Every key of a config and its check. ``model.n_down``: a 256x256 input halved 7 times is
#: 2x2, the smallest map instance norm accepts; the discriminator also ends in two 4x4
#: stride-1 convolutions. Width limits keep a crafted config from allocating gigabytes.
SCHEMA: dict[str, Check] = {
    "seed": _integer(0, 2**63 - 1),
    "model.in_channels": _choice(4),
    "model.base_channels": _integer(1, 256),
    "model.max_channels": _integer(1, 1024),
    "model.n_down": _integer(1, 7),
    "model.first_norm": _boolean,
    "model.middle_dilations": _list(_integer(1, 64), "integers in [1, 64]", 1, 16),
    "model.se_reduction": _integer(1, 1024),
    "model.disc_base_channels": _integer(1, 256),
    "model.disc_n_down": _integer(1, 6),
    "model.composite": _boolean,
    "model.d_spectral_norm": _boolean,
    "model.prior": _choice("none", "diffusion"),
    "loss.gan": _gan_loss,
    "loss.hole_weight": _number(0.0, open_lo=True),
    "loss.stage1.alpha": _WEIGHT,
    "loss.stage1.beta": _WEIGHT,
    "loss.stage2.alpha": _WEIGHT,
    "loss.stage2.beta": _WEIGHT,
    "loss.perceptual.layers": _list(_text(), "VGG-19 layer names", 1, 16),
    "loss.perceptual.input_size": _integer(16, 1024, null=True),
    "loss.perceptual.weights": _text(null=True),
    "loss.perceptual.random_weights": _boolean,
    "optim.lr_g": _number(0.0, open_lo=True),
    "optim.lr_d": _number(0.0, open_lo=True),
    "optim.betas": _list(_number(0.0, 1.0, open_hi=True), "numbers in [0, 1)", 2, 2),
    "optim.warmup_steps": _integer(0),
    "optim.decay": _choice("none", "cosine", "linear"),
    "optim.min_lr_ratio": _number(0.0, 1.0),
    "optim.lr_scaling": _choice("none", "linear", "sqrt"),
    "optim.reference_batch": _POSITIVE,
    "data.batch_size": _integer(1, 4096),
    "data.num_workers": _integer(0, 256),
    "data.shuffle_buffer": _integer(0),
    "data.augment.hflip": _boolean,
    "data.augment.mask_dilate": _integer(0, 32),
    "data.augment.mask_erode": _integer(0, 32),
    "data.on_device": _choice("auto", True, False),
    "train.epochs": _POSITIVE,
    "train.max_steps": _integer(1, null=True),
    "train.device": _choice("auto", "cpu", "cuda"),
    "train.amp": _choice("auto", True, False),
    "train.channels_last": _boolean,
    "train.compile": _boolean,
    "train.log_every": _POSITIVE,
    "train.sample_every": _POSITIVE,
    "train.checkpoint_every": _POSITIVE,
    "train.keep_every": _integer(1, null=True),
    "train.val_every_epoch": _boolean,
    "train.val_max_batches": _integer(1, null=True),
    "train.val_every": _integer(1, null=True),
    "train.ema": _number(0.0, 1.0, open_hi=True),
    # occlusion segmenter (model.kind segmenter; fdsgan_train.segmenter); unused by the GAN
    "model.kind": _choice("fdsgan", "segmenter"),
    "segment.size": _integer(32, 512),
    "segment.encoder": _choice("unet", "resnet18"),
    "segment.base_channels": _integer(4, 128),
    "segment.widths": _list(_integer(1, 32), "positive integers", 4, 4),
    "segment.full_res_channels": _integer(4, 256, null=True),
    "segment.upsample": _choice("bilinear", "nearest"),
    "segment.target": _choice("object", "mask"),
    "segment.backbone_weights": _text(null=True),
    "segment.dice_weight": _number(0.0),
    "segment.lr": _number(0.0, open_lo=True),
    "segment.weight_decay": _number(0.0),
    "segment.minutes": _number(0.0, open_lo=True, null=True),
    "segment.augment.hflip": _boolean,
    "segment.augment.scale": _number(0.0, 0.5),
    "segment.augment.shift": _number(0.0, 0.5),
    "segment.augment.rotate": _number(0.0, 90.0),
    "segment.augment.colour": _number(0.0, 1.0),
    "segment.augment.blur": _number(0.0, 1.0),
    "segment.augment.jpeg": _number(0.0, 1.0),
    "segment.augment.noise": _number(0.0, 1.0),
}

#: Keys added after the first checkpoints were written, with the values those runs used (the
#: paper's): a config or checkpoint without them reads as before.
ADDED_KEYS: dict[str, Any] = {
    "model.composite": False,
    "model.d_spectral_norm": False,
    "model.prior": "none",
    "loss.hole_weight": 1.0,
    "optim.warmup_steps": 0,
    "optim.decay": "none",
    "optim.min_lr_ratio": 0.0,
    "optim.lr_scaling": "none",
    "optim.reference_batch": 10,
    "data.augment.hflip": False,
    "data.augment.mask_dilate": 0,
    "data.augment.mask_erode": 0,
    "data.on_device": False,
    "train.val_every": None,
    "train.ema": 0.0,
    "model.kind": "fdsgan",
    "segment.size": 128,
    "segment.encoder": "unet",
    "segment.base_channels": 16,
    "segment.widths": [1, 2, 3, 4],
    "segment.full_res_channels": None,
    "segment.upsample": "bilinear",
    "segment.target": "mask",
    "segment.backbone_weights": None,
    "segment.dice_weight": 1.0,
    "segment.lr": 2.0e-3,
    "segment.weight_decay": 1.0e-4,
    "segment.minutes": None,
    "segment.augment.hflip": True,
    "segment.augment.scale": 0.15,
    "segment.augment.shift": 0.08,
    "segment.augment.rotate": 12.0,
    "segment.augment.colour": 0.3,
    "segment.augment.blur": 0.3,
    "segment.augment.jpeg": 0.3,
    "segment.augment.noise": 0.3,
}


def _flatten(cfg: dict[str, Any], where: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{where}{key}.")
        else:
            out[f"{where}{key}"] = value
    return out


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def validate(cfg: Any, where: str = "config") -> dict[str, Any]:
    """The config with every value coerced to its key's type; all problems in one error.

    ``where`` names the config in the message (``checkpoint FILE``). Keys must be exactly
    those of :data:`SCHEMA`, except that keys of :data:`ADDED_KEYS` may be missing (older
    checkpoints): they take the paper's values.
    """
    if not isinstance(cfg, dict):
        raise UserError(f"{where}: the config must be a mapping of keys to values")
    flat = _flatten(cfg)
    flat |= {k: v for k, v in ADDED_KEYS.items() if k not in flat}
    problems = [f"unknown key {k}" for k in flat if k not in SCHEMA]
    problems += [f"missing key {k}" for k in SCHEMA if k not in flat]
    out = {}
    for key, value in flat.items():
        if key in SCHEMA:
            try:
                out[key] = SCHEMA[key](value)
            except ValueError as exc:
                problems.append(f"{key} {exc} (got {value!r})")
    if problems:
        raise UserError(f"{where}: {'; '.join(problems)}")
    return _unflatten(out)


def save_config(cfg: dict[str, Any], path: Path) -> None:
    """Write the resolved config as YAML (what ``--config FILE`` reads back)."""
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
