"""`fast` vs `paper` on a CPU: masked-region PSNR and SSIM on val per training step, and the
levels of OpenCV Telea and of the diffusion prior alone.

Reproduces docs/fast_vs_paper_cpu.png. With ``--train`` it first builds the data and trains
both presets (same data, same seed; ``--vgg-random-weights`` because no ImageNet VGG-19 can be
downloaded on the development machines, so the perceptual term is a random-feature distance
for both runs); without it, it scores the runs already in ``--runs``.

    python benchmarks/fast_vs_paper.py --train          # build + train both + score + plot
    python benchmarks/fast_vs_paper.py                  # score existing runs, plot

Every kept checkpoint (``ckpt-*.pt``, written every 25 steps) and ``last.pt`` is scored the
same way: ``fdsgan-eval``'s path (``Deoccluder``, uint8 results, Stage II composited inside
the mask) and ``metrics.masked_psnr`` / ``metrics.masked_ssim`` per sample, averaged over the
val split. EMA weights are used when the checkpoint holds them (``fast``). The baselines are
scored on the same samples: the input unchanged, OpenCV Telea (radius 3) and ``prior``, the
push-pull diffusion fill that ``fast`` (``model.prior: diffusion``) starts from, alone
(``fdsgan_train.prior.diffusion_fill``, rounded to uint8). Scores are cached in
``--runs/scores.json``; a table of the last step of each run and the baselines is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BUILD = [
    "occsynth", "build", "--faces", "{faces}", "--n", "1200", "--out", "{data}",
    "--split", "0.8,0.1,0.1", "--landmarks", "celeba", "--workers", "2",
]  # fmt: skip
#: ``paper`` at batch 2 (its batch of 10 costs ~70 s a step on 2 CPU cores); ``fast`` as is.
TRAIN = {
    "paper": ["--config", "paper", "--batch-size", "2", "--workers", "0"],
    "fast": ["--config", "fast"],
}
COMMON = [
    "--vgg-random-weights", "--device", "cpu", "--max-steps", "{steps}",
    "--set", "train.checkpoint_every=25", "--set", "train.keep_every=25",
    "--set", "train.val_every_epoch=false",
]  # fmt: skip


def run_training(args) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    fill = {"faces": args.faces, "data": args.data, "steps": str(args.steps)}
    if not (Path(args.data) / "dataset.json").exists():
        subprocess.run([a.format(**fill) for a in BUILD], check=True, env=env)
    for name in args.presets:
        cmd = ["fdsgan-train", "--data", str(args.data), "--run-dir", str(args.runs / name)]
        cmd += TRAIN[name] + [a.format(**fill) for a in COMMON]
        subprocess.run(cmd, check=True, env=env)


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    import torch

    out = {}
    for path in sorted((run / "checkpoints").glob("ckpt-*.pt")):
        out[int(path.stem.split("-")[1])] = path
    last = run / "checkpoints" / "last.pt"
    if last.exists():
        step = int(torch.load(last, map_location="cpu", weights_only=True)["step"])
        out.setdefault(step, last)
    return sorted(out.items())


def masked_scores(samples, predict) -> dict[str, float]:
    """Mean masked-region PSNR (dB) and SSIM of ``predict``'s uint8 results over ``samples``."""
    import numpy as np

    from fdsgan_train import metrics as M

    values: dict[str, list[float]] = {"psnr": [], "ssim": []}
    for i in range(0, len(samples), 8):
        batch = samples[i : i + 8]
        for s, result in zip(batch, predict(batch), strict=True):
            values["psnr"].append(M.masked_psnr(result, s.target, s.mask))
            values["ssim"].append(M.masked_ssim(result, s.target, s.mask))
    out = {}
    for k, v in values.items():
        arr = np.asarray(v, dtype=np.float64)
        out[k] = float(arr[np.isfinite(arr)].mean())
    return out


def prior_fill(batch) -> list:
    """The diffusion prior alone on uint8 samples (what ``fast`` starts from), uint8."""
    import numpy as np
    import torch

    from fdsgan_train.prior import diffusion_fill

    x = torch.from_numpy(np.stack([s.input for s in batch])).permute(0, 3, 1, 2).float()
    m = torch.from_numpy(np.stack([s.mask > 127 for s in batch])[:, None]).float()
    y = diffusion_fill(x / 127.5 - 1, m)
    y = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return list(y)


def score(args) -> dict:
    from fdsgan_train.baselines import composite, telea
    from fdsgan_train.evaluate import load_split
    from fdsgan_train.infer import Deoccluder

    cache_path = args.runs / "scores.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    samples = load_split(Path(args.data), args.split)
    if "baselines" not in cache:
        cache["baselines"] = {
            "input": masked_scores(samples, lambda b: [s.input.copy() for s in b]),
            "telea": masked_scores(samples, lambda b: [telea(s.input, s.mask, None) for s in b]),
            "prior": masked_scores(samples, prior_fill),
        }
        cache["coverage"] = sum(s.coverage for s in samples) / len(samples)
        cache["n"] = len(samples)
    for name in args.presets:
        curve = cache.setdefault(name, {})
        found = checkpoints(args.runs / name)
        for step, path in found:
            if str(step) in curve or (step % args.every and step != found[-1][0]):
                continue
            model = Deoccluder.from_checkpoint(path, "cpu")

            def predict(batch, model=model):
                preds = model.predict([s.input for s in batch], [s.mask for s in batch])
                return [
                    composite(p.stage2, s.input, s.mask) for s, p in zip(batch, preds, strict=True)
                ]

            curve[str(step)] = got = masked_scores(samples, predict)
            print(f"{name} step {step}: masked PSNR {got['psnr']:.3f} dB, SSIM {got['ssim']:.4f}")
            cache_path.write_text(json.dumps(cache, indent=1))
    cache_path.write_text(json.dumps(cache, indent=1))
    return cache


LABELS = {
    "input": "input, unchanged",
    "telea": "OpenCV Telea",
    "prior": "diffusion prior alone",
}
BASE_STYLES = {"input": ("grey", ":"), "telea": ("tab:green", "--"), "prior": ("tab:purple", "-.")}


def plot(cache: dict, out: Path, presets: list[str], split: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), dpi=120)
    styles = {"fast": ("tab:blue", "o"), "paper": ("tab:orange", "s")}
    for ax, metric, unit in zip(axes, ("psnr", "ssim"), (" (dB)", ""), strict=True):
        for name in presets:
            pts = sorted((int(k), v[metric]) for k, v in cache.get(name, {}).items())
            if pts:
                color, marker = styles.get(name, ("k", "x"))
                ax.plot(*zip(*pts, strict=True), marker=marker, ms=4, color=color,
                        label=f"{name} (Stage II, composited)")  # fmt: skip
        for base, (color, ls) in BASE_STYLES.items():
            value = cache["baselines"][base][metric]
            ax.axhline(value, color=color, ls=ls, label=f"{LABELS[base]} ({value:.3f})")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"masked-region {metric.upper()} on {split}{unit}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"CPU, celeba_small build: {cache['n']} {split} samples, "
        f"mean coverage {100 * cache['coverage']:.1f} %; random VGG weights "
        "(--vgg-random-weights)\nfast: batch 4, EMA, diffusion prior + residual; "
        "paper: batch 2",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


def table(cache: dict, presets: list[str]) -> str:
    """Masked PSNR / SSIM of the baselines and of each run's last scored step."""
    rows = [f"{'method':<34} {'masked PSNR':>12} {'masked SSIM':>12}"]
    for base in BASE_STYLES:
        v = cache["baselines"][base]
        rows.append(f"{LABELS[base]:<34} {v['psnr']:>12.3f} {v['ssim']:>12.4f}")
    for name in presets:
        if cache.get(name):
            step, v = max(((int(k), v) for k, v in cache[name].items()), key=lambda kv: kv[0])
            rows.append(f"{name + f' (step {step})':<34} {v['psnr']:>12.3f} {v['ssim']:>12.4f}")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--faces", default="../shared/data/celeba_small")
    p.add_argument("--data", type=Path, default=Path("/tmp/cs_build"))
    p.add_argument("--runs", type=Path, default=Path("/tmp/acc"))
    p.add_argument("--split", default="val")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1, help="OMP threads per training run")
    p.add_argument("--presets", nargs="+", default=["fast", "paper"])
    p.add_argument("--every", type=int, default=25, help="score checkpoints of every N steps")
    p.add_argument("--out", type=Path, default=Path("docs/fast_vs_paper_cpu.png"))
    p.add_argument("--train", action="store_true", help="build the data and train both first")
    args = p.parse_args()
    if args.train:
        run_training(args)
    cache = score(args)
    plot(cache, args.out, args.presets, args.split)
    print(table(cache, args.presets))


if __name__ == "__main__":
    sys.exit(main())
