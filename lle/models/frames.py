"""Export wrappers that take frames as a decoder gives them: (N, H, W, 3) uint8 BGR in, the same out.

Cast, layout, channel order, scaling, padding to the size multiple, rounding and clipping all live inside the graph,
so a runtime gets the decoded frame's memory as it is and the encoder gets the result as it is. Exports of these
graphs carry ``lle.io`` = :data:`lle.backends.base.FRAME_IO`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lle.models.realtime import RealtimeUNet, tone_curve

__all__ = ["FrameGraph", "RealtimeFrameGraph", "frame_graph", "from_frames", "to_frames"]


def from_frames(frames: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1], channel order unchanged."""
    return frames.permute(0, 3, 1, 2).float() * (1.0 / 255.0)


def to_frames(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float32 in [0, 1] -> (N, H, W, 3) uint8, rounded to nearest, clipped."""
    return (x.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)


class FrameGraph(nn.Module):
    """Any preset on uint8 BGR frames of any H x W: pads to the model's size multiple (edge replicate) inside."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.size_multiple = int(getattr(model, "size_multiple", 16))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = from_frames(frames).flip(1)
        h, w = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        if m > 1:
            x = F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m), mode="replicate")
        y = self.model(x)[..., :h, :w]
        return to_frames(y.flip(1))


class RealtimeFrameGraph(nn.Module):
    """Video form of the realtime preset on uint8 BGR frames.

    ``(input (N,H,W,3) uint8, state (N,5,L,L), alpha (1,)) -> (output (N,H,W,3) uint8, state_out (N,5,L,L))``.
    The full-resolution work stays in BGR order (the curve treats channels alike); only the small base the U-Net
    sees is flipped to RGB, so no full-resolution channel swap is needed.
    """

    def __init__(self, model: RealtimeUNet) -> None:
        super().__init__()
        self.model = model
        self.lowres = model.lowres
        self.coeff_channels = model.coeff_channels

    def forward(
        self, frames: torch.Tensor, state: torch.Tensor | None = None, alpha: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``state``/``alpha`` default to zeros: the single-image result."""
        x = frames.permute(0, 3, 1, 2).float()  # BGR in 0..255: the curve is rewritten in those units below
        x2 = frames[:, ::2, ::2].permute(0, 3, 1, 2).float() * (1.0 / 255.0)  # strided read of the uint8 frame
        p, s = self.model.analyse_half(x2)
        c = self.model.predict(p.flip(1), s)
        if state is not None and alpha is not None:
            c = alpha * state + (1.0 - alpha) * c
        base_k, k, r, w = self.model.render_maps(x, p, c, base_scale=255.0, bgr=True)
        y = tone_curve(x, base_k, k, r, w, desaturation=self.model.desaturation, white=255.0,
                       highlight=self.model.highlight)
        return (y + 0.5).to(torch.uint8).permute(0, 2, 3, 1), c


def frame_graph(model: nn.Module) -> nn.Module:
    """The uint8-frame export form of ``model``.

    :class:`RealtimeFrameGraph` for the realtime preset, else :class:`FrameGraph`.
    """
    return RealtimeFrameGraph(model) if isinstance(model, RealtimeUNet) else FrameGraph(model)
