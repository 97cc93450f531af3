"""Images/s and peak memory of one FD-StackGAN training step, per preset, AMP off and on.

Each (preset, AMP) case runs in its own subprocess so that the CPU peak (max RSS) is its own.
Batches are random tensors (no data loading); VGG weights are random (same cost as ImageNet's).

    python benchmarks/train_step.py                       # tiny + paper on the best device
    python benchmarks/train_step.py --presets paper --steps 20 --compile
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one_case(preset: str, amp: bool, device: str, batch: int | None, steps: int, compile_: bool):
    import torch

    from fdsgan_train.config import load_config
    from fdsgan_train.train import Trainer, resolve_device

    dev = resolve_device(device)
    overrides = {
        "loss.perceptual.random_weights": True,
        "train.amp": amp,
        "train.compile": compile_,
    }
    if batch is not None:
        overrides["data.batch_size"] = batch
    cfg = load_config(preset, overrides)
    b = cfg["data"]["batch_size"]
    trainer = Trainer(cfg, dev)
    g = torch.Generator().manual_seed(0)
    data = {
        "input": torch.rand(b, 3, 256, 256, generator=g) * 2 - 1,
        "mask": (torch.rand(b, 1, 256, 256, generator=g) > 0.8).float(),
        "target": torch.rand(b, 3, 256, 256, generator=g) * 2 - 1,
    }
    if dev.type == "cuda":
        data = {k: v.pin_memory() for k, v in data.items()}

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    t0 = time.perf_counter()
    trainer.step(data)  # warm-up (and compilation)
    sync()
    warmup = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.step(data)
    sync()
    dt = (time.perf_counter() - t0) / steps
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**30
        mem = "GPU max_memory_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        mem = "process max RSS"
    return {
        "preset": preset,
        "amp": trainer.amp,
        "amp_dtype": str(trainer.amp_dtype),
        "device": str(dev),
        "batch": b,
        "step_s": dt,
        "images_per_s": b / dt,
        "peak_gib": peak,
        "memory": mem,
        "warmup_s": warmup,
        "compile": compile_,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tiny,paper")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument(
        "--batch",
        type=int,
        default=None,
        help="batch size (default: the preset's; the paper preset uses 2 on a CPU)",
    )
    ap.add_argument("--amp", default="off,on", help="which AMP settings to run")
    ap.add_argument("--compile", action="store_true", help="torch.compile the networks")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case as JSON args
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one_case(**json.loads(args.one))), flush=True)
        return

    import torch

    on_cpu = args.device == "cpu" or (args.device == "auto" and not torch.cuda.is_available())
    header = (
        f"{'preset':<7}{'amp':<6}{'dtype':<16}{'batch':>6}{'step s':>9}{'img/s':>9}{'peak GiB':>10}"
    )
    print(header)
    rates: dict[tuple[str, bool], float] = {}
    for preset in args.presets.split(","):
        batch = (
            args.batch if args.batch is not None else (2 if on_cpu and preset == "paper" else None)
        )
        for amp in [a == "on" for a in args.amp.split(",")]:
            case = {
                "preset": preset,
                "amp": amp,
                "device": args.device,
                "batch": batch,
                "steps": args.steps,
                "compile_": args.compile,
            }
            proc = subprocess.run(
                [sys.executable, __file__, "--one", json.dumps(case)],
                capture_output=True,
                text=True,
            )
            lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{preset:<7}{'on' if amp else 'off':<6} FAILED: {proc.stderr[-800:]}")
                continue
            r = json.loads(lines[0][7:])
            rates[(preset, amp)] = r["images_per_s"]
            dtype = r["amp_dtype"].replace("torch.", "") if r["amp"] else "float32"
            print(
                f"{preset:<7}{'on' if amp else 'off':<6}{dtype:<16}{r['batch']:>6}"
                f"{r['step_s']:>9.3f}{r['images_per_s']:>9.1f}{r['peak_gib']:>10.2f}"
                f"   ({r['device']}, {r['memory']}, warm-up {r['warmup_s']:.1f} s"
                f"{', compiled' if r['compile'] else ''})",
                flush=True,
            )
    for preset in args.presets.split(","):
        if (preset, True) in rates and (preset, False) in rates:
            print(f"AMP speed-up {preset}: {rates[(preset, True)] / rates[(preset, False)]:.2f}x")


if __name__ == "__main__":
    main()
