"""LPIPS and FID for ``fdsgan-eval``, only from weights already on this machine (never
downloaded, at any point).

* LPIPS (Zhang et al., AlexNet variant): the ``lpips`` package (its linear heads ship inside
  it) plus torchvision's ImageNet AlexNet in torch's hub cache
  (``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth``). Per sample, result vs
  target, images in [-1, 1].
* FID: the ``pytorch-fid`` package plus its Inception weights in the same cache
  (``pt_inception-2015-12-05-6726825d.pth``). One figure per method over the split, results
  vs targets (2048-d pool features). With a few hundred samples FID is strongly biased upward;
  compare methods within one run only.

When either is missing, :meth:`LearnedMetrics.lines` says which file or package and why
(:func:`availability`), and the tables leave the metric out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"
FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def hub_file(name: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def availability() -> dict[str, str | None]:
    """``{"lpips": None or why not, "fid": None or why not}``."""
    why: dict[str, str | None] = {}
    for metric, package, module, weights in (
        ("lpips", "lpips", "lpips", LPIPS_BACKBONE),
        ("fid", "pytorch-fid", "pytorch_fid", FID_WEIGHTS),
    ):
        missing = []
        if not _has_module(module):
            missing.append(f"package `{package}` not installed")
        if not hub_file(weights).is_file():
            missing.append(f"no `{hub_file(weights)}`")
        why[metric] = "; ".join(missing) or None
    return why


class _FID:
    def __init__(self, device: str) -> None:
        import torch
        from pytorch_fid.inception import InceptionV3

        self.torch = torch
        self.device = device
        self.net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
        self.feats: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, image: np.ndarray) -> None:
        x = self.torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        with self.torch.inference_mode():
            f = self.net(x.to(self.device) / 255.0)[0].flatten(1).cpu().numpy()
        self.feats.setdefault(name, []).append(f[0])

    def distances(self) -> dict[str, float]:
        from pytorch_fid.fid_score import calculate_frechet_distance

        def stats(rows):
            a = np.stack(rows)
            return a.mean(0), np.cov(a, rowvar=False)

        if len(self.feats.get("target", [])) < 2:
            return {}
        mu_t, cov_t = stats(self.feats["target"])
        return {
            k: float(calculate_frechet_distance(*stats(v), mu_t, cov_t))
            for k, v in self.feats.items()
            if k != "target"
        }

    def release(self) -> None:
        self.net = None


class LearnedMetrics:
    """What of LPIPS/FID this machine can compute; ``score`` per (method, result, target)."""

    def __init__(self, device: str, why: dict[str, str | None]) -> None:
        self.why = why
        self.lpips = None
        self.fid = _FID(device) if why["fid"] is None else None
        self._targets_seen: set[int] = set()
        if why["lpips"] is None:
            import lpips

            self.lpips = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
        self.device = device

    @classmethod
    def if_available(cls, device: str) -> LearnedMetrics:
        """The metrics whose package and weights are here (possibly none)."""
        return cls(device, availability())

    def score(self, method: str, result: np.ndarray, target: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.fid is not None:
            self.fid.add(method, result)
            if id(target) not in self._targets_seen:
                self._targets_seen.add(id(target))
                self.fid.add("target", target)
        if self.lpips is not None:
            import torch

            def t(a):
                x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()
                return (x / 127.5 - 1).to(self.device)

            with torch.inference_mode():
                out["lpips"] = float(self.lpips(t(result), t(target)).item())
        return out

    @staticmethod
    def lines(obj: LearnedMetrics | None) -> list[str]:
        """Lines for summary.md: FID figures, or why LPIPS/FID are absent."""
        why = obj.why if obj is not None else availability()
        lines = []
        for metric, name in (("lpips", "LPIPS"), ("fid", "FID")):
            if why[metric] is not None:
                lines.append(
                    f"{name}: not computed, its weights are not on this machine ({why[metric]}); "
                    "fdsgan-eval never downloads weights (see docs/metrics.md)."
                )
        if obj is not None and obj.fid is not None:
            for method, value in sorted(obj.fid.distances().items()):
                lines.append(f"FID `{method}` vs targets: {value:.2f}")
        return lines
