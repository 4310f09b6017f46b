"""Realtime preset: a U-Net on a small fixed-size copy predicts per-pixel tone-curve coefficients.

Full-resolution work is one 4x4 average pool (to make the small copy), one bilinear upsampling of the coefficient
map and ``y = x * (a + b * x)``: a handful of operations per pixel, whatever the frame size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lle.models.blocks import Decoder, Encoder
from lle.models.registry import register_model

__all__ = ["RealtimeUNet", "TemporalRealtime"]


class RealtimeUNet(nn.Module):
    """Resolution-decoupled U-Net. (N, 3, H, W) float32 in [0, 1], H and W multiples of 4 -> same shape.

    Coefficients per pixel and channel: gain ``a = exp(.)`` and curvature ``b``, so ``y = a x + b x^2`` is a local
    quadratic tone curve; ``b < 0`` rolls off highlights that the gain alone would blow out.
    """

    def __init__(self, width: int = 16, depth: int = 3, lowres: int = 128) -> None:
        super().__init__()
        if lowres % 2**depth:
            raise ValueError(f"lowres={lowres} must be a multiple of 2**depth={2**depth}")
        widths = [width * 2**i for i in range(depth + 1)]
        self.size_multiple = 4
        self.lowres = lowres
        self.encoder = Encoder(3, widths)
        self.decoder = Decoder(widths)
        self.head = nn.Conv2d(widths[0], 6, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Low-resolution coefficient map (N, 6, lowres, lowres): gains a (3) then curvatures b (3)."""
        small = F.interpolate(F.avg_pool2d(x, 4), size=(self.lowres, self.lowres), mode="bilinear", align_corners=False)
        c = self.head(self.decoder(self.encoder(small)))
        return torch.cat([torch.exp(c[:, :3].clamp(max=4.0)), c[:, 3:]], dim=1)

    def apply(self, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Upsample ``coeffs`` to x's size and apply the curve at full resolution."""
        c = F.interpolate(coeffs, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * (c[:, :3] + c[:, 3:] * x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(x, self.coefficients(x))


@register_model("realtime")
def realtime(width: int = 16, depth: int = 3, lowres: int = 128) -> RealtimeUNet:
    """Realtime preset (about 0.5 M parameters at width 16, depth 3)."""
    return RealtimeUNet(width=width, depth=depth, lowres=lowres)


class TemporalRealtime(nn.Module):
    """Video form of :class:`RealtimeUNet`: blends this frame's coefficients with the previous frame's.

    ``(input (N,3,H,W), state (N,6,L,L), alpha (1,)) -> (output (N,3,H,W), state_out (N,6,L,L))`` with
    ``state_out = alpha * state + (1 - alpha) * coefficients(input)``. ``alpha = 0`` is the single-image model;
    the caller raises alpha on static scenes (less flicker) and resets it to 0 at scene cuts.
    """

    def __init__(self, model: RealtimeUNet) -> None:
        super().__init__()
        self.model = model
        self.size_multiple = model.size_multiple
        self.lowres = model.lowres

    def forward(self, x: torch.Tensor, state: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.model.coefficients(x)
        c = alpha * state + (1.0 - alpha) * c
        return self.model.apply(x, c), c
