"""Composite training loss. Every term is a small module on (N, 3, H, W) in [0, 1]; weights come from the config."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lle.training.metrics import ssim

__all__ = [
    "BlackLevelLoss",
    "CharbonnierLoss",
    "ChromaLoss",
    "ColorAngleLoss",
    "ColorCastLoss",
    "CompositeLoss",
    "ExposureLoss",
    "FlatNoiseLoss",
    "GradientLoss",
    "LocalContrastLoss",
    "LossConfig",
    "MSSSIMLoss",
    "SaturationLoss",
    "rgb_to_lab",
]

_LUMA = (0.299, 0.587, 0.114)


def _luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


class CharbonnierLoss(nn.Module):
    """Robust L1: mean sqrt((x - y)^2 + eps^2)."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((x - y) ** 2 + self.eps**2).mean()


class MSSSIMLoss(nn.Module):
    """1 - mean SSIM over ``scales`` dyadic scales (a light multi-scale SSIM)."""

    def __init__(self, scales: int = 3) -> None:
        super().__init__()
        self.scales = scales

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for s in range(self.scales):
            if s:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
            total = total + ssim(x, y).mean()
        return 1.0 - total / self.scales


class ColorAngleLoss(nn.Module):
    """Mean (1 - cosine) between RGB vectors: penalises hue/colour casts independently of brightness."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (1.0 - F.cosine_similarity(x, y, dim=1, eps=1e-4)).mean()


class ExposureLoss(nn.Module):
    """Local brightness match on ``patch``-pooled luma, with over-exposure weighted ``over_weight`` times more.

    Blown highlights and global over-brightening cost more than slight under-exposure.
    """

    def __init__(self, patch: int = 16, over_weight: float = 3.0) -> None:
        super().__init__()
        self.patch, self.over_weight = patch, over_weight

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        k = min(self.patch, *x.shape[-2:])
        d = F.avg_pool2d(_luma(x), k) - F.avg_pool2d(_luma(y), k)
        return (d.abs() + (self.over_weight - 1.0) * F.relu(d)).mean()


class GradientLoss(nn.Module):
    """L1 between horizontal and vertical finite differences (detail preservation)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        dx = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
        dy = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
        return dx.abs().mean() + dy.abs().mean()


_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_WHITE = (0.95047, 1.0, 1.08883)  # D65


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] -> CIE L*a*b* (D65): L in [0, 100], a and b roughly in [-110, 110].

    Differentiable everywhere (the cube root is linearised near 0, as the CIE definition does).

    Example:
        >>> lab = rgb_to_lab(torch.tensor([1.0, 1.0, 1.0]).view(1, 3, 1, 1))
        >>> [round(float(v), 2) for v in lab.flatten()]
        [100.0, 0.0, 0.0]
    """
    x = x.clamp(0.0, 1.0)
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp(min=1e-8) ** 2.4)
    m = torch.tensor(_RGB_TO_XYZ, device=x.device, dtype=x.dtype)
    xyz = torch.einsum("dc,nchw->ndhw", m, lin) / torch.tensor(_WHITE, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    d = 6.0 / 29.0
    f = torch.where(xyz > d**3, xyz.clamp(min=d**3) ** (1.0 / 3.0), xyz / (3 * d * d) + 4.0 / 29.0)
    return torch.cat([116.0 * f[:, 1:2] - 16.0, 500.0 * (f[:, 0:1] - f[:, 1:2]), 200.0 * (f[:, 1:2] - f[:, 2:3])], 1)


class ChromaLoss(nn.Module):
    """Mean L1 distance of the a*b* chroma planes (in units of 100).

    Hue shifts and wrong saturation cost alike; brightness errors do not (those are the exposure and pixel terms' job).
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (rgb_to_lab(x)[:, 1:] - rgb_to_lab(y)[:, 1:]).abs().mean() / 100.0


class SaturationLoss(nn.Module):
    """``|log(chroma_out / chroma_ref)|`` on ``patch``-pooled a*b* magnitude.

    Washed-out and oversaturated regions cost the same for the same ratio; near-grey regions (chroma under ``floor``)
    count little.
    """

    def __init__(self, patch: int = 8, floor: float = 3.0) -> None:
        super().__init__()
        self.patch, self.floor = patch, floor

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        k = min(self.patch, *x.shape[-2:])

        def chroma(t: torch.Tensor) -> torch.Tensor:
            ab = rgb_to_lab(t)[:, 1:]
            return F.avg_pool2d(torch.sqrt((ab * ab).sum(1, keepdim=True) + 1e-6), k)

        cx, cy = chroma(x), chroma(y)
        w = cy / (cy + self.floor)
        return (w * (torch.log(cx + self.floor) - torch.log(cy + self.floor)).abs()).sum() / w.sum().clamp(min=1e-6)


class FlatNoiseLoss(nn.Module):
    """Gradient energy of the output beyond the reference's, where the reference is flat and dark.

    Weight ``exp(-|grad ref| / tau) * (1 - luma ref)``: a dark, smooth wall in the reference must come out smooth,
    so lifted sensor noise there costs, while edges and texture (large reference gradients) are left to the
    gradient and SSIM terms.
    """

    def __init__(self, tau: float = 0.02) -> None:
        super().__init__()
        self.tau = tau

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        ly = _luma(y)
        for dim in (-1, -2):
            gx = x.diff(dim=dim).abs().mean(1, keepdim=True)
            gy = y.diff(dim=dim).abs().mean(1, keepdim=True)
            dark = 1.0 - (ly.narrow(dim, 0, ly.shape[dim] - 1))
            w = torch.exp(-gy / self.tau) * dark
            total = total + (w * F.relu(gx - gy)).sum() / w.sum().clamp(min=1e-6)
        return total


class BlackLevelLoss(nn.Module):
    """Distance between the darkest percentiles of output and reference luma, lifted blacks weighted ``over_weight``.

    Luma is first averaged over ``pool`` x ``pool`` blocks, so the percentile measures where the black level sits,
    not how deep single noisy pixels dip. A black keyboard that the reference keeps black and the output turns grey
    costs here even when the mean exposure matches. Per image: ``mean_q |d| + (over_weight - 1) relu(d)`` with
    ``d = q_out - q_ref`` at the quantiles ``qs``; values in luma units (0-1).
    """

    def __init__(self, qs: tuple[float, ...] = (0.01, 0.05), pool: int = 4, over_weight: float = 2.0) -> None:
        super().__init__()
        self.qs, self.pool, self.over_weight = qs, pool, over_weight

    def _levels(self, t: torch.Tensor) -> torch.Tensor:
        k = max(1, min(self.pool, *t.shape[-2:]))
        lum = F.avg_pool2d(_luma(t), k).flatten(1)
        return torch.quantile(lum, torch.tensor(self.qs, dtype=lum.dtype, device=lum.device), dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = self._levels(x) - self._levels(y)
        return (d.abs() + (self.over_weight - 1.0) * F.relu(d)).mean()


class LocalContrastLoss(nn.Module):
    """``|log(local std of output luma / reference's)|`` in ``patch`` windows of ``pool``-averaged luma.

    Flat, milky output (lifted blacks, compressed tones) has a lower local spread than the reference and costs; the
    pre-averaging keeps pixel noise from counting as contrast, so grain cannot pay this term back. ``floor`` (in luma
    units) keeps near-flat windows from dominating.
    """

    def __init__(self, patch: int = 8, pool: int = 2, floor: float = 0.01) -> None:
        super().__init__()
        self.patch, self.pool, self.floor = patch, pool, floor

    def _std(self, t: torch.Tensor) -> torch.Tensor:
        lum = _luma(t)
        p = max(1, min(self.pool, *lum.shape[-2:]))
        lum = F.avg_pool2d(lum, p)
        k = max(1, min(self.patch, *lum.shape[-2:]))
        m = F.avg_pool2d(lum, k, stride=max(1, k // 2))
        m2 = F.avg_pool2d(lum * lum, k, stride=max(1, k // 2))
        return torch.sqrt((m2 - m * m).clamp_min(0.0) + 1e-8)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (torch.log(self._std(x) + self.floor) - torch.log(self._std(y) + self.floor)).abs().mean()


class ColorCastLoss(nn.Module):
    """L1 between the image-wide chromaticities ``mean RGB / sum(mean RGB)`` of output and reference (x 3).

    A global cast (magenta sensor tint, warm street light left in, a white balance that amplifies the input's cast)
    moves the whole image's chromaticity and costs here even where per-pixel terms see only a small error; brightness
    does not count (a uniformly darker or brighter image has the same chromaticity).
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        def chrom(t: torch.Tensor) -> torch.Tensor:
            m = t.clamp(0.0, 1.0).mean((2, 3))
            return m / m.sum(1, keepdim=True).clamp_min(1e-4)

        return 3.0 * (chrom(x) - chrom(y)).abs().mean()


@dataclass(frozen=True, slots=True)
class LossConfig:
    """Weight of each loss term; 0 disables a term."""

    pixel: float = 1.0
    ssim: float = 0.2
    color: float = 0.1
    exposure: float = 0.2
    gradient: float = 0.1
    chroma: float = 0.0
    saturation: float = 0.0
    flat_noise: float = 0.0
    black_level: float = 0.0
    contrast: float = 0.0
    cast: float = 0.0
    exposure_over_weight: float = 3.0
    """How much more over-exposure costs than under-exposure in the exposure term."""


class CompositeLoss(nn.Module):
    """Weighted sum of the terms. ``forward`` returns (total, {term: value})."""

    def __init__(self, cfg: LossConfig = LossConfig()) -> None:
        super().__init__()
        terms = {
            "pixel": CharbonnierLoss(),
            "ssim": MSSSIMLoss(),
            "color": ColorAngleLoss(),
            "exposure": ExposureLoss(over_weight=cfg.exposure_over_weight),
            "gradient": GradientLoss(),
            "chroma": ChromaLoss(),
            "saturation": SaturationLoss(),
            "flat_noise": FlatNoiseLoss(),
            "black_level": BlackLevelLoss(),
            "contrast": LocalContrastLoss(),
            "cast": ColorCastLoss(),
        }
        self.weights = {k: float(getattr(cfg, k)) for k in terms if getattr(cfg, k) > 0}  # term weights only
        self.terms = nn.ModuleDict({k: v for k, v in terms.items() if k in self.weights})

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = x.float(), y.float()
        parts = {k: term(x, y) for k, term in self.terms.items()}
        total = sum((self.weights[k] * v for k, v in parts.items()), x.new_zeros(()))
        return total, {k: float(v.detach()) for k, v in parts.items()}
