"""The statistics figure of a built dataset (``occsynth stats``).

One figure, four panels: samples per occluder category, the histogram of mask coverage,
a heat map of where masks fall (the mean mask), and samples per split. Counts and coverage
come from the manifest; the heat map reads the mask member of every sample (or an evenly
spaced subset of ``max_masks``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import shards, storage
from .canonical import CANONICAL_SIZE, FIVE_POINTS, mean_shape_array

#: Manifest columns the figure reads.
MANIFEST_COLUMNS = ("categories", "coverage", "split")


def mean_mask(root: storage.Location, max_masks: int | None = None) -> tuple[np.ndarray, int]:
    """Mean of the masks (0..1, 256x256) over every sample, or ``max_masks`` spread evenly."""
    paths = shards.list_shards(root)
    total = np.zeros((CANONICAL_SIZE, CANONICAL_SIZE), dtype=np.float64)
    count = 0
    step = 1
    if max_masks:
        manifest_rows = len(shards.load_manifest(root))
        step = max(1, -(-manifest_rows // max_masks))
    seen = 0
    for path in paths:
        for key, members in shards.read_shard(path):
            seen += 1
            if (seen - 1) % step or "mask.png" not in members:
                continue
            try:  # the header is checked first: a decompression bomb is never decoded
                mask = shards.decode_png(members["mask.png"], "L")
            except ValueError as exc:
                where = storage.name(path)
                raise shards.ShardError(f"{where}: sample {key!r}: mask.png {exc}") from None
            total += mask.astype(np.float64) / 255.0
            count += 1
    return (total / count if count else total), count


def draw_stats(root: storage.Location, out: str | Path, max_masks: int | None = None) -> Path:
    """Draw the statistics figure of the dataset in ``root`` (a folder or a URL) to ``out``
    (PNG)."""
    root = storage.location(root)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    manifest = shards.load_manifest(root, MANIFEST_COLUMNS)
    try:
        coverage = manifest["coverage"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise shards.ShardError(f"{shards.MANIFEST}: coverage holds non-numbers") from None
    if not np.isfinite(coverage).all():
        raise shards.ShardError(f"{shards.MANIFEST}: coverage holds NaN or infinite values")
    heat, n_masks = mean_mask(root, max_masks)

    cats: dict[str, int] = {}
    for joined in manifest["categories"].astype(str):
        for c in joined.split("+") if joined else ["none"]:
            cats[c] = cats.get(c, 0) + 1
    order = sorted(cats, key=lambda c: (-cats[c], c))
    per_split = [int((manifest["split"] == s).sum()) for s in shards.SPLITS]

    fig, axes = plt.subplots(2, 2, figsize=(11, 9), constrained_layout=True)
    ax = axes[0, 0]
    ax.barh(order[::-1], [cats[c] for c in order[::-1]], color="#4c72b0")
    ax.set_title("Samples per occluder category")
    ax.set_xlabel("samples (a sample with two occluders counts in both)")

    ax = axes[0, 1]
    cov = coverage * 100
    ax.hist(cov, bins=40, color="#55a868", edgecolor="white")
    ax.axvline(
        float(np.mean(cov)), color="black", linestyle="--", label=f"mean {np.mean(cov):.1f}%"
    )
    ax.set_title("Mask coverage")
    ax.set_xlabel("% of the 256x256 frame masked")
    ax.set_ylabel("samples")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()

    ax = axes[1, 0]
    im = ax.imshow(heat, cmap="magma", vmin=0.0, vmax=max(float(heat.max()), 1e-6))
    pts = mean_shape_array(FIVE_POINTS)
    ax.scatter(pts[:, 0], pts[:, 1], s=12, c="#00e5ff", marker="+", label="mean landmarks")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Where masks fall (mean of {n_masks} masks)")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of samples masked")

    ax = axes[1, 1]
    bars = ax.bar(shards.SPLITS, per_split, color=["#4c72b0", "#dd8452", "#c44e52"])
    ax.bar_label(bars)
    ax.set_title("Samples per split")
    ax.set_ylabel("samples")

    title = storage.name(root) if storage.is_remote(root) else Path(root).resolve().name
    fig.suptitle(f"{title}: {len(manifest)} samples")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
