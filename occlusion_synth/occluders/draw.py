"""Drawing primitives for the procedural occluder generator.

A ``Canvas`` is drawn at ``SS`` times the asset resolution in premultiplied float32 RGBA and
downscaled with area averaging at the end, which anti-aliases every edge. Shapes are coverage
maps (float32 in [0, 1]) painted with a flat colour or a per-pixel colour field.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import cv2
import numpy as np

SS = 2  # supersampling factor

Color = Sequence[float]


def rgb(hex_or_tuple: str | Color) -> np.ndarray:
    """A colour as float32 RGB in [0, 1] from ``"#rrggbb"`` or a 0..255 tuple."""
    if isinstance(hex_or_tuple, str):
        h = hex_or_tuple.lstrip("#")
        return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)], np.float32) / 255.0
    return np.asarray(hex_or_tuple, np.float32) / 255.0


class Canvas:
    """A supersampled premultiplied RGBA drawing surface of ``width`` x ``height`` pixels.

    Coordinates passed to the shape helpers are in *asset* pixels; the canvas scales them.
    """

    def __init__(self, width: int, height: int, seed: int) -> None:
        self.w, self.h = width, height
        self.W, self.H = width * SS, height * SS
        self.p = np.zeros((self.H, self.W, 3), np.float32)
        self.a = np.zeros((self.H, self.W), np.float32)
        self.rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0 : self.H, 0 : self.W].astype(np.float32)
        self.xx, self.yy = (xx + 0.5) / SS, (yy + 0.5) / SS  # asset coordinates per pixel

    @contextmanager
    def surface(self, xx: np.ndarray, yy: np.ndarray) -> Iterator[None]:
        """Draw patterns (stripes, dots, noise-free fields) in surface coordinates ``xx``,
        ``yy`` (asset px per canvas pixel) instead of the flat ones, so a print follows a
        curved surface: it foreshortens towards the sides and bends with the outline."""
        old = self.xx, self.yy
        self.xx, self.yy = xx.astype(np.float32), yy.astype(np.float32)
        try:
            yield
        finally:
            self.xx, self.yy = old

    # -- coverage maps ------------------------------------------------------------------
    def _blank(self) -> np.ndarray:
        return np.zeros((self.H, self.W), np.uint8)

    @staticmethod
    def _pts(points: Sequence[Sequence[float]]) -> np.ndarray:
        return np.round(np.asarray(points, np.float64) * SS * 16).astype(np.int32)

    def poly(self, points: Sequence[Sequence[float]]) -> np.ndarray:
        """Coverage of a filled polygon."""
        m = self._blank()
        cv2.fillPoly(m, [self._pts(points)], 255, cv2.LINE_AA, shift=4)
        return m.astype(np.float32) / 255.0

    def polyline(
        self, points: Sequence[Sequence[float]], width: float, closed: bool = False
    ) -> np.ndarray:
        """Coverage of a stroked polyline with round joins."""
        m = self._blank()
        pts = self._pts(points)
        t = max(1, int(round(width * SS)))
        cv2.polylines(m, [pts], closed, 255, t, cv2.LINE_AA, shift=4)
        r = t / 2.0
        for x, y in np.asarray(points, np.float64) * SS:
            cv2.circle(
                m,
                (int(round(x * 16)), int(round(y * 16))),
                int(r * 16),
                255,
                -1,
                cv2.LINE_AA,
                shift=4,
            )
        return m.astype(np.float32) / 255.0

    def ellipse(
        self, center: Sequence[float], axes: Sequence[float], angle: float = 0.0
    ) -> np.ndarray:
        """Coverage of a filled (rotated) ellipse."""
        m = self._blank()
        c = (int(round(center[0] * SS * 16)), int(round(center[1] * SS * 16)))
        ax = (max(1, int(round(axes[0] * SS * 16))), max(1, int(round(axes[1] * SS * 16))))
        cv2.ellipse(m, c, ax, angle, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
        return m.astype(np.float32) / 255.0

    def capsule(self, p0: Sequence[float], p1: Sequence[float], width: float) -> np.ndarray:
        """Coverage of a thick segment with round caps (a finger, a strap)."""
        return self.polyline([p0, p1], width)

    def rounded_rect(
        self, x0: float, y0: float, x1: float, y1: float, r: float, angle: float = 0.0
    ) -> np.ndarray:
        """Coverage of a rounded rectangle, optionally rotated (degrees) about its centre."""
        t = np.linspace(0, np.pi / 2, 8)
        corners = [
            (x1 - r, y1 - r, 0),
            (x0 + r, y1 - r, 1),
            (x0 + r, y0 + r, 2),
            (x1 - r, y0 + r, 3),
        ]
        pts = []
        for cx, cy, k in corners:
            a = t + k * np.pi / 2
            pts += list(zip(cx + r * np.cos(a), cy + r * np.sin(a), strict=True))
        pts = np.array(pts)
        if angle:
            c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            th = np.deg2rad(angle)
            rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
            pts = (pts - c) @ rot.T + c
        return self.poly(pts)

    # -- painting -----------------------------------------------------------------------
    @staticmethod
    def _box(cov: np.ndarray) -> tuple[slice, slice] | None:
        """Rows and columns holding the nonzero part of ``cov`` (None when it is empty)."""
        rows = np.flatnonzero(cov.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(cov[rows[0] : rows[-1] + 1].any(axis=0))
        return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)

    def paint(self, cov: np.ndarray, color: Color | np.ndarray, opacity: float = 1.0) -> None:
        """Composite ``color`` (RGB, or an HxWx3 field) over the canvas with coverage ``cov``."""
        box = self._box(cov)
        if box is None:
            return
        m = cov[box] * np.float32(opacity)
        col = np.asarray(color, np.float32)
        if col.ndim == 3:
            col = col[box]
        p, a = self.p[box], self.a[box]
        p *= (1.0 - m)[..., None]
        p += col * m[..., None]
        a *= 1.0 - m
        a += m

    def shade(self, cov: np.ndarray, factor: np.ndarray | float) -> None:
        """Multiply the colour under ``cov`` by ``factor`` (darken < 1 < lighten), alpha kept."""
        box = self._box(cov)
        if box is None:
            return
        fac = np.asarray(factor, np.float32)
        if fac.ndim == 2:
            fac = fac[box]
        f = 1.0 + (fac - 1.0) * cov[box]
        p = self.p[box]
        p *= f[..., None]
        np.clip(p, 0.0, self.a[box][..., None], out=p)

    def erase(self, cov: np.ndarray) -> None:
        """Remove coverage (cut holes)."""
        keep = 1.0 - cov
        self.p *= keep[..., None]
        self.a *= keep

    def set_alpha(self, cov: np.ndarray, alpha: float) -> None:
        """Scale alpha (and premultiplied colour) under ``cov`` to ``alpha`` of its value."""
        f = 1.0 - cov * (1.0 - alpha)
        self.p *= f[..., None]
        self.a *= f

    # -- fields -------------------------------------------------------------------------
    def noise(self, sigma: float, amount: float) -> np.ndarray:
        """A smooth multiplicative noise field around 1 (``sigma`` in asset px)."""
        s = max(0.5, sigma * SS)
        f = max(1, int(s // 3))  # smooth fields are drawn coarse and upsampled (fast)
        h, w = -(-self.H // f), -(-self.W // f)
        n = self.rng.standard_normal((h, w)).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), s / f)
        if f > 1:
            n = cv2.resize(n, (w * f, h * f), interpolation=cv2.INTER_LINEAR)[: self.H, : self.W]
        n /= max(float(n.std()), 1e-6)
        return 1.0 + amount * n

    def vgrad(self, y0: float, y1: float, v0: float, v1: float) -> np.ndarray:
        """Vertical linear ramp from ``v0`` at y0 to ``v1`` at y1 (clamped)."""
        t = np.clip((self.yy - y0) / max(y1 - y0, 1e-6), 0, 1)
        return (v0 + (v1 - v0) * t).astype(np.float32)

    def hgrad(self, x0: float, x1: float, v0: float, v1: float) -> np.ndarray:
        """Horizontal linear ramp."""
        t = np.clip((self.xx - x0) / max(x1 - x0, 1e-6), 0, 1)
        return (v0 + (v1 - v0) * t).astype(np.float32)

    def cylinder(self, cx: float, half: float, edge: float = 0.55) -> np.ndarray:
        """Shading of a vertical cylinder: 1 at ``cx``, ``edge`` at +-``half``."""
        t = np.clip(np.abs(self.xx - cx) / max(half, 1e-6), 0, 1)
        return (1.0 - (1.0 - edge) * t**2).astype(np.float32)

    def radial(self, center: Sequence[float], radius: float) -> np.ndarray:
        """1 at ``center`` falling to 0 at ``radius`` (smooth)."""
        d = np.hypot(self.xx - center[0], self.yy - center[1]) / max(radius, 1e-6)
        return np.clip(1.0 - d, 0, 1) ** 2

    def stripes(self, period: float, angle: float, duty: float = 0.5) -> np.ndarray:
        """Anti-aliased stripe coverage (1 inside a stripe, ``duty`` of each period)."""
        th = np.deg2rad(angle)
        u = self.xx * np.cos(th) + self.yy * np.sin(th)
        d = np.abs((u / period) % 1.0 - 0.5) * period  # distance to the stripe centre
        return np.clip((duty * period / 2 - d) * SS + 0.5, 0, 1).astype(np.float32)

    def dots(self, period: float, radius: float, offset_rows: bool = True) -> np.ndarray:
        """Coverage of a regular polka-dot grid."""
        row = np.floor(self.yy / period)
        shift = (row % 2) * period / 2 if offset_rows else 0.0
        fx = ((self.xx + shift) % period) - period / 2
        fy = (self.yy % period) - period / 2
        d = np.hypot(fx, fy)
        return np.clip((radius - d) * SS + 0.5, 0, 1).astype(np.float32)

    def weave(self, period: float, amount: float) -> np.ndarray:
        """A woven fabric's brightness field around 1, as a photo of a face shows it.

        A weave's threads are far finer than a pixel at any face size the builder draws: a
        regular thread grid (``period`` canvas px) cannot be drawn, as it aliases into a moire
        checker on the way down to the asset and again through the photo's resolution. What
        survives is an irregular fine grain, about half the thread spacing's scale."""
        return self.noise(max(period / (2 * SS), 0.5), amount)

    # -- output -------------------------------------------------------------------------
    def to_rgba(self) -> np.ndarray:
        """Downscale to asset size and return straight-alpha RGBA uint8."""
        p = cv2.resize(self.p, (self.w, self.h), interpolation=cv2.INTER_AREA)
        a = cv2.resize(self.a, (self.w, self.h), interpolation=cv2.INTER_AREA)
        a = np.clip(a, 0, 1)
        col = np.where(a[..., None] > 1e-4, p / np.maximum(a[..., None], 1e-4), 0.0)
        out = np.empty((self.h, self.w, 4), np.uint8)
        out[..., :3] = np.clip(np.round(col * 255), 0, 255)
        out[..., 3] = np.clip(np.round(a * 255), 0, 255)
        out[out[..., 3] == 0, :3] = 0
        return out


class Drawn:
    """One generated asset: its pixels and the sidecar fields the generator knows."""

    def __init__(
        self,
        rgba: np.ndarray,
        anchors: dict[str, list[float]],
        placement: dict,
        material: dict,
    ) -> None:
        self.rgba = rgba
        self.anchors = anchors
        self.placement = placement
        self.material = material


def walk(path, n: int | None = None, step: float = 0.5, upto: float = 1.0) -> np.ndarray:
    """Points evenly spaced by arc length along the polyline ``path`` (N, 2), from its start
    to ``upto`` of its length: ``n`` of them, or one every ``step`` (at least two)."""
    p = np.asarray(path, np.float64)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    end = s[-1] * upto
    count = n if n is not None else max(int(end / step), 2)
    at = np.linspace(0.0, end, count)
    return np.stack([np.interp(at, s, p[:, k]) for k in (0, 1)], 1)


def ellipse_outline(c, a: float, b: float, angle: float = 0.0, n: int = 32) -> np.ndarray:
    """Outline (n, 2) of an ellipse centred at ``c`` with semi-axes ``a``, ``b``, rotated by
    ``angle`` degrees (the first and last points coincide), for stroking with ``polyline``."""
    t = np.linspace(0, 2 * np.pi, n)
    th = np.deg2rad(angle)
    x, y = a * np.cos(t), b * np.sin(t)
    return np.stack(
        [c[0] + x * np.cos(th) - y * np.sin(th), c[1] + x * np.sin(th) + y * np.cos(th)], 1
    )


def lens_outline(style: str, a: float, b: float, n: int = 96) -> np.ndarray:
    """Outline (n, 2) of an image-left lens centred at 0; its outer (temple) side is -x."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    power = {
        "round": 2.0,
        "rect": 4.5,
        "wayfarer": 4.0,
        "aviator": 2.6,
        "cat_eye": 3.2,
        "oversized": 3.6,
        "browline": 4.0,
        "shield": 5.0,
    }.get(style, 3.0)
    x = a * np.sign(c) * np.abs(c) ** (2 / power)
    y = b * np.sign(s) * np.abs(s) ** (2 / power)
    outer = np.clip(-x / a, 0, 1)  # 1 at the temple side
    inner = np.clip(x / a, 0, 1)
    if style == "wayfarer":  # wider top, bottom narrowed towards the temple
        x = np.where(y > 0, x * (1 - 0.18 * y / b), x)
        y = y - 0.12 * b * outer * (y < 0)
    elif style == "aviator":  # teardrop: bottom drops towards the nose
        y = np.where(y > 0, y * (1 + 0.25 * inner - 0.1 * outer), y * 0.85)
    elif style == "cat_eye":  # swept-up outer top corner
        y = y - 0.45 * b * outer**2 * (y < 0)
        y = np.where(y > 0, y * (1 - 0.2 * outer), y)
    return np.stack([x, y], 1)
