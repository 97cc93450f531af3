"""``fdsgan-eval``: every method of ``baselines`` scored by every metric of ``metrics``.

Outputs in ``--out``:

* ``metrics.csv`` - one row per (sample, method): ``key, category, coverage, source,
  method``, the full-reference metrics and their masked variants (synthetic split), ``niqe``,
  ``niqe_native`` and ``brisque`` (real photos only; empty elsewhere), ``lpips`` when its
  weights are on this machine.
* ``summary.md`` - masked-region metrics first in every table: all methods, then per mask
  coverage bin and per occluder category (mean coverage in each heading); whole-image Table 1
  with the paper's row beside the rows comparable with it only (raw generator outputs); all
  methods whole-image with the composited ones marked; Table 2 (one stage vs two); LPIPS/FID
  or a line saying why they are absent. See docs/metrics.md.
* ``comparison.png`` - rows of samples; columns input, Telea, Navier-Stokes, Stage I,
  Stage I+II (raw generator output) and the target.

Averages are means of per-sample values; a PSNR of +inf (identical images) is left out of its
mean (docs/metrics.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occlusion_synth.errors import UserError

from . import metrics as M
from .baselines import METHODS
from .infer import Deoccluder, align_photo, list_photos, mask_of, read_mask, read_photo

#: Methods shown in comparison.png, in column order, then the target.
FIGURE_METHODS = ("input", "telea", "navier_stokes", "stage1_raw", "stage2_raw")
FIGURE_LABELS = ("Input", "Telea", "Navier-Stokes", "Stage I", "Stage I+II", "Target")
FIGURE_ROWS = 8
TABLE_METRICS = ("ssim", "psnr", "mse", "niqe", "brisque")
MASKED_METRICS = ("masked_psnr", "masked_ssim", "masked_mse")
FULL_METRICS = ("psnr", "ssim", "mse")
#: Mask coverage bins (fraction of the 256x256 frame occluded), lower edge included.
COVERAGE_BINS = ((0.0, 0.05), (0.05, 0.10), (0.10, 0.20), (0.20, 1.01))
#: Methods whose result keeps the input outside the mask; whole-image scores of these are not
#: comparable with the paper's raw-output figures (marked † in the tables).
COMPOSITED = ("input", "telea", "navier_stokes", "stage1", "stage2")
#: The paper's Table 1 row for FD-StackGAN (SSIM, PSNR, MSE, NIQE, BRISQUE).
PAPER_TABLE1 = {"ssim": 0.981, "psnr": 32.803, "mse": 34.145, "niqe": 4.499, "brisque": 42.504}
HEADERS = {
    "ssim": "SSIM ↑",
    "psnr": "PSNR ↑",
    "mse": "MSE ↓",
    "niqe": "NIQE ↓",
    "brisque": "BRISQUE ↓",
    "masked_ssim": "SSIM (mask) ↑",
    "masked_psnr": "PSNR (mask) ↑",
    "masked_mse": "MSE (mask) ↓",
    "lpips": "LPIPS ↓",
}


@dataclass
class EvalSample:
    """One synthetic test sample: uint8 RGB input/target, uint8 mask (255 = occluded) and,
    where the shard has it, the occluders' own pixels (``object_mask``, within ``mask``)."""

    key: str
    category: str
    input: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    object_mask: np.ndarray | None = None

    @property
    def coverage(self) -> float:
        """Fraction of the frame the mask covers."""
        return float((np.asarray(self.mask) > 0).mean())


def _categories_of(meta: object) -> str:
    if not isinstance(meta, dict):
        return "unknown"
    cats = meta.get("categories")
    if isinstance(cats, str) and cats:
        return cats
    if isinstance(cats, list | tuple) and cats:
        return "+".join(str(c) for c in cats)
    occ = meta.get("occluders")
    if isinstance(occ, list) and occ and all(isinstance(o, dict) for o in occ):
        names = [str(o.get("category", "")) for o in occ if o.get("category")]
        if names:
            return "+".join(names)
    return "unknown"


def load_split(data: Path, split: str, limit: int | None = None) -> list[EvalSample]:
    """The samples of one split of a built dataset (categories from each sample's json).

    Read as the trainer reads them (``data.decode_sample``: headers checked before decoding).
    """
    from occlusion_synth import storage
    from occlusion_synth.shards import ShardError

    from .data import decode_sample, iter_raw_samples, shard_paths

    paths = shard_paths(data, split) if storage.isdir(data) else []
    if not paths:
        raise UserError(f"no '{split}' samples in {data} (expected {data}/shards/{split}-*.tar)")
    out: list[EvalSample] = []
    try:
        for path in paths:
            for key, members in iter_raw_samples(path):
                s = decode_sample(key, members, path)
                cats = _categories_of(s.meta)
                out.append(EvalSample(s.key, cats, s.input, s.mask, s.target, s.object_mask))
                if limit is not None and len(out) >= limit:
                    return out
    except ShardError as exc:
        raise UserError(f"cannot read the '{split}' shards of {data}: {exc}") from None
    if not out:
        raise UserError(f"no '{split}' samples in {data}")
    return out


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def score_synthetic(
    samples: list[EvalSample],
    model,
    batch_size: int = 8,
    figure_rows: int = FIGURE_ROWS,
    learned=None,
) -> tuple[list[dict], list[list[np.ndarray]]]:
    """Rows of metrics for every sample x method, and the figure's image rows.

    ``model`` has ``predict(inputs, masks) -> list[StagePredictions]`` (``infer.Deoccluder``);
    ``learned``: a :class:`fdsgan_train.metrics.LearnedMetrics` or None.
    """
    from tqdm import tqdm

    rows: list[dict] = []
    figure: list[list[np.ndarray]] = []
    bar = tqdm(total=len(samples), desc="evaluating", unit="sample")
    for batch in _batches(samples, batch_size):
        preds = model.predict([s.input for s in batch], [s.mask for s in batch])
        for s, p in zip(batch, preds, strict=True):
            results = {name: m.fn(s.input, s.mask, p) for name, m in METHODS.items()}
            for name, result in results.items():
                row = {"key": s.key, "category": s.category, "coverage": s.coverage}
                row |= {"source": "synthetic", "method": name}
                row.update(M.score_pair(result, s.target, s.mask))
                if learned is not None:
                    row.update(learned.score(name, result, s.target))
                rows.append(row)
            if len(figure) < figure_rows:
                figure.append([results[n] for n in FIGURE_METHODS] + [s.target])
        bar.update(len(batch))
    bar.close()
    return rows, figure


def find_real_pairs(folder: Path) -> list[tuple[Path, Path | None]]:
    """Photos of ``folder`` with their masks: ``NAME.EXT`` pairs with ``NAME.mask.png``."""
    if not folder.is_dir():
        raise UserError(f"--real: no such folder: {folder}")
    photos = list_photos(folder)
    if not photos:
        raise UserError(f"--real: no photos in {folder}")
    return [(p, mask_of(p, folder)) for p in photos]


def score_real(pairs: list[tuple[Path, Path | None]], model) -> tuple[list[dict], list[str]]:
    """NIQE/BRISQUE rows for (photo, mask or None) pairs, and a note per photo skipped.

    A photo with a mask is aligned to the model's frame (``infer.align_photo``) and every
    method is scored on its 256x256 result; a photo without a mask is scored as it is, as the
    ``input`` method only.
    """
    from tqdm import tqdm

    rows: list[dict] = []
    notes: list[str] = []
    for photo_path, mask_path in tqdm(pairs, desc="real photos", unit="photo"):
        base = {"key": photo_path.stem, "category": "real", "source": "real"}
        try:
            photo = read_photo(photo_path)
            if mask_path is None:
                rows.append({**base, "method": "input", **M.score_no_reference(photo)})
                continue
            mask = read_mask(mask_path, photo.shape[:2])
            aligned = align_photo(photo, mask)
        except UserError as exc:
            notes.append(f"{photo_path.name}: skipped ({exc.message})")
            continue
        pred = model.predict([aligned.image], [aligned.mask])[0]
        for name, m in METHODS.items():
            result = m.fn(aligned.image, aligned.mask, pred)
            rows.append({**base, "method": name, **M.score_no_reference(result)})
    return rows, notes


# --------------------------------------------------------------------------- reports


def _mean(values) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4f}" if "ssim" in metric else f"{value:.3f}"


def _label(name: str, marked: set[str]) -> str:
    mark = " †" if name in marked else ""
    return f"{METHODS[name].label}{mark} (`{name}`)"


def _table(
    frame,
    methods: list[str],
    columns: tuple[str, ...],
    source_of: dict[str, str],
    marked: set[str] = frozenset(),
) -> str:
    head = "| Method | " + " | ".join(HEADERS[c] for c in columns) + " |"
    sep = "|---|" + "---:|" * len(columns)
    lines = [head, sep]
    for name in methods:
        cells = []
        for c in columns:
            sub = frame[
                (frame["method"] == name) & (frame["source"] == source_of.get(c, "synthetic"))
            ]
            cells.append(_fmt(_mean(sub[c]) if c in sub and len(sub) else math.nan, c))
        lines.append(f"| {_label(name, marked)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _coverage_text(part) -> str:
    cov = part.drop_duplicates("key")["coverage"] if "coverage" in part else []
    if not len(cov) or cov.isna().all():
        return "coverage unknown"
    return f"mean coverage {100 * cov.mean():.1f} %"


def _bin_name(lo: float, hi: float) -> str:
    return f"coverage ≥ {100 * lo:.0f} %" if hi > 1 else f"coverage {100 * lo:.0f}-{100 * hi:.0f} %"


def summary_markdown(
    frame,
    checkpoint: str,
    data: str,
    split: str,
    real: str | None,
    notes: list[str],
    model_info: dict | None = None,
) -> str:
    """The summary.md text for a metrics table (pandas DataFrame of metrics.csv).

    ``model_info``: ``composite`` (the generators composite themselves, so even their "raw"
    outputs keep the input outside the mask), ``weights`` (``ema`` or ``models``) and
    ``learned`` (LPIPS/FID lines: figures or why they are absent).
    """
    info = model_info or {}
    methods = list(METHODS)
    raw = ["stage1_raw", "stage2_raw"]
    marked = set(COMPOSITED) | (set(raw) if info.get("composite") else set())
    no_ref = {"niqe": "real", "brisque": "real"}
    syn = frame[frame["source"] == "synthetic"]
    n_syn = syn["key"].nunique()
    n_real = frame[frame["source"] == "real"]["key"].nunique()
    paper = " | ".join(_fmt(PAPER_TABLE1[c], c) for c in TABLE_METRICS)
    lead = MASKED_METRICS + (
        ("lpips",) if "lpips" in frame and frame["lpips"].notna().any() else ()
    )
    out = [
        "# FD-StackGAN evaluation",
        "",
        f"- checkpoint: `{checkpoint}`"
        + (
            f" ({'EMA' if info['weights'] == 'ema' else 'trained'} generator weights)"
            if info.get("weights")
            else ""
        ),
        f"- synthetic data: `{data}`, split `{split}`, {n_syn} samples, {_coverage_text(syn)} "
        "of the frame occluded",
        f"- real photos: `{real}`, {n_real} photos (NIQE, BRISQUE)"
        if real
        else "- real photos: none (`--real` not given; NIQE and BRISQUE left empty)",
        "- metric definitions: docs/metrics.md (RGB 0-255; SSIM Gaussian σ 1.5, 11x11; NIQE on "
        "the image resized to 512x512 bicubic; BRISQUE at native size). Masked-region metrics "
        "come first: they score only what a method invented. Whole-image scores of a result "
        "that keeps the input outside the mask (marked †) are dominated by the mask's size "
        "and are **not comparable** with the paper's figures, which are raw generator outputs. "
        "n/r: not reported by the paper.",
    ]
    if info.get("composite"):
        out.append(
            "- this model composites inside the generator (`model.composite`): its `_raw` rows "
            "keep the input outside the mask too (†), so no row here is comparable with the "
            "paper's Table 1 and the paper's row is not shown."
        )
    out += [
        "",
        "## Inside the mask — all methods",
        "",
        _table(frame, methods, lead, {}, marked),
        "",
    ]
    out += [f"- {line}" for line in info.get("learned", [])]
    out += ["", "## Inside the mask, per mask coverage", ""]
    for lo, hi in COVERAGE_BINS:
        part = (
            syn[(syn["coverage"] >= lo) & (syn["coverage"] < hi)] if "coverage" in syn else syn[:0]
        )
        if not len(part):
            continue
        out += [
            f"### {_bin_name(lo, hi)} ({part['key'].nunique()} samples, {_coverage_text(part)})",
            "",
            _table(part, methods, MASKED_METRICS + FULL_METRICS, {}, marked),
            "",
        ]
    out += ["## Inside the mask, per occluder category", ""]
    for cat in sorted(syn["category"].unique()):
        part = syn[syn["category"] == cat]
        out += [
            f"### {cat} ({part['key'].nunique()} samples, {_coverage_text(part)})",
            "",
            _table(part, methods, MASKED_METRICS + FULL_METRICS, {}, marked),
            "",
        ]
    if not info.get("composite"):
        out += [
            "## Table 1 — whole image, raw generator outputs (comparable with the paper)",
            "",
            _table(frame, raw, MASKED_METRICS + TABLE_METRICS, no_ref, marked),
            f"| *Paper: FD-StackGAN* | {' | '.join('n/r' for _ in MASKED_METRICS)} | {paper} |",
            "",
        ]
    out += [
        "## Whole image — all methods († keeps the input outside the mask: not comparable with "
        "the paper)",
        "",
        _table(frame, methods, MASKED_METRICS + TABLE_METRICS, no_ref, marked),
        "",
        "## Table 2 — one stage vs two (same checkpoint)",
        "",
        _table(
            frame,
            ["stage1_raw", "stage2_raw", "stage1", "stage2"],
            MASKED_METRICS + TABLE_METRICS,
            no_ref,
            marked,
        ),
    ]
    if notes:
        out += ["", "## Real photos skipped", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def comparison_figure(rows: list[list[np.ndarray]], path: Path, tile: int = 160) -> None:
    """A labelled grid: one row per sample, columns ``FIGURE_LABELS``."""
    from PIL import Image, ImageDraw

    header = 22
    cols = len(FIGURE_LABELS)
    sheet = Image.new("RGB", (cols * tile, header + len(rows) * tile), "white")
    draw = ImageDraw.Draw(sheet)
    for j, label in enumerate(FIGURE_LABELS):
        draw.text((j * tile + 6, 5), label, fill="black")
    for i, images in enumerate(rows):
        for j, img in enumerate(images):
            im = Image.fromarray(np.asarray(img, np.uint8)).resize((tile, tile), Image.LANCZOS)
            sheet.paste(im, (j * tile, header + i * tile))
    sheet.save(path)


def evaluate(
    checkpoint: Path,
    data: Path,
    out: Path,
    split: str = "test",
    real: Path | None = None,
    limit: int | None = None,
    device: str = "auto",
    batch_size: int = 8,
) -> dict[str, Path]:
    """Run the whole evaluation and write metrics.csv, summary.md and comparison.png."""
    import pandas as pd

    from .metrics import LearnedMetrics

    model = Deoccluder.from_checkpoint(checkpoint, device)
    samples = load_split(data, split, limit)
    pairs = find_real_pairs(real) if real is not None else []
    learned = LearnedMetrics.if_available(model.device)
    rows, figure = score_synthetic(samples, model, batch_size, learned=learned)
    notes: list[str] = []
    if pairs:
        real_rows, notes = score_real(pairs, model)
        rows += real_rows
    columns = ["key", "category", "coverage", "source", "method"] + [m for m in M.METRICS]
    columns += ["lpips"] if learned is not None and learned.lpips is not None else []
    frame = pd.DataFrame(rows).reindex(columns=columns)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.csv",
        "summary": out / "summary.md",
        "comparison": out / "comparison.png",
    }
    frame.to_csv(paths["metrics"], index=False)
    info = {
        "composite": bool(model.config.get("model", {}).get("composite", False)),
        "weights": "ema" if model.config.get("train", {}).get("ema", 0) > 0 else "models",
        "learned": LearnedMetrics.lines(learned),
    }
    text = summary_markdown(
        frame, str(checkpoint), str(data), split, str(real) if real else None, notes, info
    )
    paths["summary"].write_text(text, encoding="utf-8")
    if learned is not None and learned.fid is not None:
        learned.fid.release()
    comparison_figure(figure, paths["comparison"])
    return paths
