"""Quality preset: a full-resolution U-Net predicting a residual correction of the input."""

from __future__ import annotations

import torch
from torch import nn

from lle.models.blocks import Decoder, Encoder
from lle.models.registry import register_model

__all__ = ["QualityUNet"]


class QualityUNet(nn.Module):
    """Full-resolution U-Net. (N, 3, H, W) float32 in [0, 1] -> same shape, H and W multiples of ``size_multiple``.

    The head outputs a per-pixel gain (as a log) and a residual: ``y = x * exp(g) + r``. Both start at zero, so an
    untrained model is the identity; the gain carries exposure, the residual carries denoising and colour.
    """

    def __init__(self, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"width and depth must be >= 1, got width={width} depth={depth}")
        widths = [width * 2**i for i in range(depth + 1)]
        self.size_multiple = 2**depth
        self.encoder = Encoder(3, widths)
        self.decoder = Decoder(widths)
        self.head = nn.Conv2d(widths[0], 6, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.decoder(self.encoder(x)))
        gain, res = out[:, :3], out[:, 3:]
        return x * torch.exp(gain.clamp(max=4.0)) + res


@register_model("quality")
def quality(width: int = 16, depth: int = 4) -> QualityUNet:
    """Quality preset (about 1.9 M parameters at width 16, depth 4)."""
    return QualityUNet(width=width, depth=depth)
