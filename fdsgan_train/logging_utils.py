"""Run logs (rank 0 only): metrics.jsonl, TensorBoard scalars and sample grids."""

from __future__ import annotations

import json
from pathlib import Path

import torch


class RunLogger:
    """Appends ``{"kind", "step", ...}`` lines to ``metrics.jsonl``, mirrored to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.run_dir = run_dir
        self._tb = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tb"))
            self._jsonl = (run_dir / "metrics.jsonl").open("a")

    def log(self, kind: str, step: int, values: dict[str, float], **extra) -> None:
        if not self.enabled:
            return
        self._jsonl.write(json.dumps({"kind": kind, "step": step, **extra, **values}) + "\n")
        self._jsonl.flush()
        for key, value in values.items():
            self._tb.add_scalar(f"{kind}/{key}", value, step)

    def sample_grid(self, step: int, columns: list[torch.Tensor], rows: int = 4) -> Path | None:
        """Save a PNG: one row per sample, one column per tensor (images in [-1, 1])."""
        if not self.enabled:
            return None
        from torchvision.utils import make_grid, save_image

        cols = [c[:rows].detach().float().cpu() for c in columns]
        cols = [c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in cols]
        grid = torch.stack(cols, dim=1).flatten(0, 1)  # row-major: sample, column
        path = self.run_dir / "samples" / f"step-{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = make_grid(grid.clamp(-1, 1) * 0.5 + 0.5, nrow=len(cols), padding=2)
        save_image(image, path)
        self._tb.add_image("samples", image, step)
        return path

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._tb.close()
