"""Images/s of the occlusion segmenter: a training step (augmentation included) and inference.

Batches are random tensors at the frame's 256x256 (no data loading; the cached split of
``data.on_device`` makes data nearly free on a CPU). Training: one ``SegmentTrainer.step``
(resize to ``segment.size``, augmentation, forward, BCE + Dice, backward, AdamW); eval:
``Segmenter.probabilities`` on uint8 frames (resize, forward on the frame and its mirror
image, upsample, sigmoid). The machine's
load average is printed beside the figures: on a shared CPU they are what it gave then.

    python benchmarks/segmenter.py                          # CPU, preset, 2 threads
    python benchmarks/segmenter.py --base-channels 16 24 32 --threads 2 --steps 10
    python benchmarks/segmenter.py --device cuda --batch 64
    # the first presets' network against the preset's, side by side:
    python benchmarks/segmenter.py \
        --variant "segment.widths=[1,2,3,4] segment.full_res_channels=8" \
        --variant ""
"""

from __future__ import annotations

import argparse
import os
import time


def case(
    base: int, size: int, batch: int, steps: int, device: str, variant: dict | None = None
) -> tuple[float, float, int]:
    """(train images/s, eval images/s, parameters) of one network width and ``variant``
    (config overrides)."""
    import numpy as np
    import torch

    from fdsgan_train.config import load_config
    from fdsgan_train.segment_train import SegmentTrainer
    from fdsgan_train.segmenter import Segmenter, count_parameters
    from fdsgan_train.train import resolve_device

    dev = resolve_device(device)
    overrides = {"segment.base_channels": base, "segment.size": size, "data.batch_size": batch}
    overrides |= variant or {}
    cfg = load_config("segmenter", overrides)
    trainer = SegmentTrainer(cfg, dev)
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(batch, 1, 256, 256, generator=g) > 0.85).float()
    # both targets (segment.target: mask or object), as a batch of a current build holds them
    data = {"input": torch.rand(batch, 3, 256, 256, generator=g) * 2 - 1, "mask": mask}
    data["object"] = mask

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    trainer.step(data, 0)  # warm-up
    sync()
    t0 = time.perf_counter()
    for i in range(steps):
        trainer.step(data, i + 1)
    sync()
    train_rate = steps * batch / (time.perf_counter() - t0)

    seg = Segmenter(trainer.net, cfg, str(dev))
    frames = list((np.random.default_rng(0).random((batch, 256, 256, 3)) * 255).astype(np.uint8))
    seg.probabilities(frames, batch)  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        seg.probabilities(frames, batch)
    sync()
    eval_rate = steps * batch / (time.perf_counter() - t0)
    return train_rate, eval_rate, count_parameters(trainer.net)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-channels", type=int, nargs="+", default=[16])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="torch threads on a CPU")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--variant",
        action="append",
        default=None,
        help='config overrides "KEY=VALUE KEY=VALUE" measured side by side (repeat; "": preset)',
    )
    args = ap.parse_args()
    import torch
    import yaml

    variants = [
        (text, {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in text.split())})
        for text in (args.variant or [""])
    ]

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"segmenter, {args.device}, size {args.size}, batch {args.batch}, "
        f"{args.threads} threads, load average {load:.2f} on {os.cpu_count()} cores"
    )
    print(f"{'base':>5} {'params':>9} {'train img/s':>12} {'eval img/s':>11}  variant")
    for base in args.base_channels:
        for text, over in variants:
            train_rate, eval_rate, params = case(
                base, args.size, args.batch, args.steps, args.device, over
            )
            label = text or "preset"
            print(f"{base:>5} {params:>9,} {train_rate:>12.1f} {eval_rate:>11.1f}  {label}")


if __name__ == "__main__":
    main()
