"""Composite training loss. Every term is a small module on (N, 3, H, W) in [0, 1]; weights come from the config."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lle.training.metrics import ssim

__all__ = [
    "CharbonnierLoss",
    "ColorAngleLoss",
    "CompositeLoss",
    "ExposureLoss",
    "GradientLoss",
    "LossConfig",
    "MSSSIMLoss",
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


@dataclass(frozen=True, slots=True)
class LossConfig:
    """Weight of each loss term; 0 disables a term."""

    pixel: float = 1.0
    ssim: float = 0.2
    color: float = 0.1
    exposure: float = 0.2
    gradient: float = 0.1
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
        }
        self.weights = {k: float(getattr(cfg, k)) for k in terms if getattr(cfg, k) > 0}  # term weights only
        self.terms = nn.ModuleDict({k: v for k, v in terms.items() if k in self.weights})

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = x.float(), y.float()
        parts = {k: term(x, y) for k, term in self.terms.items()}
        total = sum((self.weights[k] * v for k, v in parts.items()), x.new_zeros(()))
        return total, {k: float(v.detach()) for k, v in parts.items()}
