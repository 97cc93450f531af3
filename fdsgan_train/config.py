"""Configuration: presets are YAML data (``presets/paper.yaml``, ``presets/tiny.yaml``).

A config is a plain nested dict (so it can go into a ``weights_only`` checkpoint). A YAML
file may name ``base: paper|tiny|OTHER.yaml`` and override any subset of keys; unknown keys
are an error, so a typo never passes silently. Command-line flags are applied last as dotted
overrides (``train.max_steps=200``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from occlusion_synth.errors import UserError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PRESETS = ("paper", "tiny")


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
    validate(cfg)
    return cfg


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


def validate(cfg: dict[str, Any]) -> None:
    """Check the values that would otherwise fail deep inside training."""
    m, loss, train = cfg["model"], cfg["loss"], cfg["train"]
    if m["n_down"] < 1 or m["base_channels"] < 1 or not m["middle_dilations"]:
        raise UserError("model: n_down, base_channels and middle_dilations must be positive")
    if loss["gan"] not in ("bce", "lsgan"):
        raise UserError(f"loss.gan must be 'bce' or 'lsgan', not '{loss['gan']}'")
    if train["device"] not in ("auto", "cpu", "cuda"):
        raise UserError(f"train.device must be auto, cpu or cuda, not '{train['device']}'")
    if train["amp"] not in ("auto", True, False):
        raise UserError(f"train.amp must be auto, true or false, not '{train['amp']}'")
    if cfg["data"]["batch_size"] < 1:
        raise UserError("data.batch_size must be at least 1")


def save_config(cfg: dict[str, Any], path: Path) -> None:
    """Write the resolved config as YAML (what ``--config FILE`` reads back)."""
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
