"""Export-safe building blocks (Conv, LeakyReLU, bilinear resize, global mean): every op maps to one ONNX op."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]

__all__ = ["ConvBlock", "Decoder", "Encoder", "GlobalContext"]


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions with LeakyReLU. (N, cin, H, W) -> (N, cout, H, W).

    ``padding_mode="replicate"`` keeps a flat input flat up to the border (zero padding makes the border look dark).
    """

    def __init__(self, cin: int, cout: int, padding_mode: PaddingMode = "zeros") -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding_mode),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, padding_mode=padding_mode),
            nn.LeakyReLU(0.1, inplace=True),
        )


class GlobalContext(nn.Module):
    """Adds an image-wide summary (channel means) to every position, so exposure decisions see the whole frame."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.mean(dim=(2, 3), keepdim=True)
        return x + F.leaky_relu(self.fc(g), 0.1)


class Encoder(nn.Module):
    """U-Net encoder: ``depth`` stride-2 downsamplings; returns the skip features, finest first."""

    def __init__(self, cin: int, widths: list[int], padding_mode: PaddingMode = "zeros") -> None:
        super().__init__()
        pm = padding_mode
        self.stem = ConvBlock(cin, widths[0], pm)
        self.downs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(a, b, 3, stride=2, padding=1, padding_mode=pm), nn.LeakyReLU(0.1, inplace=True),
                ConvBlock(b, b, pm),
            )
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.context = GlobalContext(widths[-1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        feats[-1] = self.context(feats[-1])
        return feats


class Decoder(nn.Module):
    """U-Net decoder: 2x upsampling, concatenation with the skip, ConvBlock.

    ``upsample="transposed"``: a 2x2 stride-2 transposed convolution. ``"bilinear"``: bilinear 2x then a 1x1
    convolution, which keeps a flat input flat (a transposed convolution stamps a 2x2-periodic pattern that padding
    cannot continue past the border, so a flat frame gets border bands).
    """

    def __init__(self, widths: list[int], padding_mode: PaddingMode = "zeros", upsample: str = "transposed") -> None:
        super().__init__()
        rev = widths[::-1]
        if upsample not in ("transposed", "bilinear"):
            raise ValueError(f"upsample={upsample!r}, expected 'transposed' or 'bilinear'")
        pairs = list(zip(rev[:-1], rev[1:], strict=True))
        if upsample == "bilinear":
            self.ups = nn.ModuleList(
                nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(a, b, 1))
                for a, b in pairs
            )
        else:
            self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 2, stride=2) for a, b in pairs)
        self.blocks = nn.ModuleList(ConvBlock(2 * b, b, padding_mode) for b in rev[1:])

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for up, block, skip in zip(self.ups, self.blocks, feats[-2::-1], strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
        return x
