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

__all__ = ["FrameGraph", "RealtimeFrameGraph", "RealtimeI420Graph", "frame_graph", "from_frames", "to_frames"]


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


# BT.601 limited range, what x264/FFmpeg and OpenCV use for yuv420p <-> BGR when nothing else is said.
_Y0, _YS, _C0, _CS = 16.0, 219.0 / 255.0, 128.0, 224.0 / 255.0
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


def _yuv_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Limited-range BT.601 planes (same size, float 0..255 codes) -> (N, 3, h, w) RGB in 0..255, clipped."""
    yf = (y - _Y0) * (1.0 / _YS)
    pb = (u - _C0) * (1.0 / _CS)
    pr = (v - _C0) * (1.0 / _CS)
    r = yf + (2.0 - 2.0 * _KR) * pr
    b = yf + (2.0 - 2.0 * _KB) * pb
    g = yf - (2.0 * _KB * (1.0 - _KB) / _KG) * pb - (2.0 * _KR * (1.0 - _KR) / _KG) * pr
    return torch.cat([r, g, b], dim=1).clamp(0.0, 255.0)


def _rgb_to_yuv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 3, h, w) RGB in 0..255 -> limited-range BT.601 ``(y, u, v)`` codes, float, each (N, 1, h, w)."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    yf = _KR * r + _KG * g + _KB * b
    u = _C0 + (_CS / (2.0 - 2.0 * _KB)) * (b - yf)
    v = _C0 + (_CS / (2.0 - 2.0 * _KR)) * (r - yf)
    return _Y0 + _YS * yf, u, v


class RealtimeI420Graph(nn.Module):
    """Video form of the realtime preset on I420 (planar 4:2:0) frames as a decoder gives them.

    ``(input (N, H*3/2, W) uint8, state (N,5,L,L), alpha (1,)) -> (output (N, H*3/2, W) uint8, state_out)``: each
    row block is the Y plane (H x W) followed by U and V (H/2 x W/2 each), as PyAV's ``yuv420p`` arrays and OpenCV's
    ``COLOR_BGR2YUV_I420`` lay them out (BT.601, limited range). H and W must be even.

    The curve runs in RGB at chroma resolution (H/2 x W/2: the 2x2 mean of Y with U and V), which gives the output
    chroma directly; the analysis the U-Net sees takes the stride-2 samples of Y, as for BGR frames. Full-resolution
    luma then only adds its own detail around that result::

        Y_out = Yh_out + D delta / (1 + kappa relu(delta)),  delta = Y - Yh
        out = max(min(Y_out, 235), Y)      # never darker than the input, detail never past white

    ``Yh`` is the 2x2 mean of Y and ``Yh_out`` the luma of the curve's output there; ``D = k f'(V_B)`` is the detail
    gain ``k <= 1`` times the slope of the curve ``f(V) = V g``, ``g = 1 / (V + r (1 - V))``, at the brightest
    channel ``V_B`` of the smooth base, and ``kappa = k (1 - r) g`` (per unit of luma). The curve is a Moebius map,
    so ``f(V + e) - f(V) = f'(V) e / (1 + (1 - r) g e)`` exactly: bright detail follows the curve itself, not its
    tangent (the tangent overshoots a concave curve; it blew out 0.5 % more pixels of the real photos). Dark detail
    (``delta < 0``) is scaled by ``D`` alone, so nothing divides by a vanishing denominator. Where the highlight cap
    is the smaller branch, ``D = k (1 - h)`` and ``kappa = 0``. For a grey pixel this is what the RGB curve does to
    its own detail; the curve's ratio ``g`` in place of its slope would lift sensor noise up to ``1 + (a - 1) V``
    times more.

    *Monotonic* in each pixel's own luma, for fixed coefficients (``k``, ``r``, white balance, base): ``D`` and
    ``kappa`` are then fixed maps (``D > 0``, ``kappa >= 0``), and ``phi(delta) = delta / (1 + kappa relu(delta))``
    has ``0 < phi' <= 1``. ``Y`` enters ``delta`` directly and ``Yh`` (its own 2x2 block) with a weight
    ``w = 1/4``, so ``dY_out/dY = (1 - w) D phi' + w dYh_out/dYh >= 0``: ``Yh_out`` is the luma of
    the RGB curve at the block, which does not fall when the block's R, G and B rise together (each ``y_c = d_c
    g(V)`` with ``d_c <= V`` has a non-negative derivative along ``(1, 1, 1)``; so do the desaturation mix, the cap
    and the final maximum), as long as the YUV -> RGB conversion clips no channel. The ``min`` and ``max`` with
    non-decreasing functions of ``Y`` keep the result non-decreasing, and the ``max`` keeps every pixel at least as
    bright as it came in (no inverted highlights).

    The four maps (``Yh_out``, ``Yh``, ``D``, ``kappa``) live at chroma resolution (``D`` and ``kappa`` upsampled
    bilinearly from the base) and are repeated 2x2 to full resolution: each pixel is rendered against its own block,
    so a block's pixels average to the block's rendered value, and across block edges the jump is ``(chord slope -
    D) x step``, second order in smooth areas (measured: the second difference of a rendered gradient is the same
    across block edges as inside blocks). Bilinear maps cost 13 ms more at 1080p for 0.03 dB on SICE.

    *Cost* at full resolution: one cast of Y, the 2x2 mean, four one-channel 2x repeats, the detail term (subtract,
    relu, multiply-add, divide), the clip, the maximum and the cast back: about 14 one-channel passes, against about
    10 three-channel ones (and two colour conversions outside the graph) for BGR frames. The curve itself runs on
    a quarter of the pixels.
    Measured at 1080p in one run (``benchmarks/results/run_fps.md``): 38.5 ms in onnxruntime against 66.5 ms for
    the BGR frame graph. With the shipped weights (``benchmarks/results/realtime_v2.md``): 21.85 dB / 0.756 on the
    SICE held-out scenes and 1.07 % newly blown pixels on the real photos, against 21.89 / 0.761 and 1.06 % for the
    float32 path's output after a 4:2:0 round trip (what any 4:2:0 video encode keeps of it).
    """

    def __init__(self, model: RealtimeUNet) -> None:
        super().__init__()
        self.model = model
        self.lowres = model.lowres
        self.coeff_channels = model.coeff_channels

    def detail_gain(self, p: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``(D, kappa)`` (N, 2, h, w) at the base's resolution: how luma detail around a block is rendered.

        ``D = k f'(V_B)``: the detail gain times the curve's slope at ``V_B``, the brightest white-balanced channel
        of the smooth base ``p`` (N, 3, h, w) in [0, 1], with ``f'(V) = r g^2``, ``g = 1 / (V + r (1 - V))``;
        ``kappa = k (1 - r) g / 219`` per luma code. Where the highlight cap is the smaller branch: ``D = k (1 - h)``,
        ``kappa = 0`` (the cap is a straight line).
        """
        m = self.model
        k, r, wb = m.decode(c, p.shape[-2:])
        pw = p * wb
        v = torch.maximum(torch.maximum(pw[:, 0:1], pw[:, 1:2]), pw[:, 2:3])
        g = 1.0 / (v + r * (1.0 - v))
        slope, kappa = r * g * g, (1.0 - r) * g * (1.0 / 219.0)
        if m.highlight:
            capped = (1.0 - m.highlight) + m.highlight / (v + 1e-6) < g
            slope = torch.where(capped, torch.full_like(slope, 1.0 - m.highlight), slope)
            kappa = torch.where(capped, torch.zeros_like(kappa), kappa)
        return torch.cat([k * slope, k * kappa], dim=1)

    @staticmethod
    def planes(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, H*3/2, W) uint8 -> Y (N, 1, H, W) uint8, U and V (N, 1, H/2, W/2) float32 codes."""
        n, rows, w = frames.shape
        h = rows * 2 // 3
        flat = frames.reshape(n, rows * w)
        q = (h // 2) * (w // 2)
        y8 = flat[:, : h * w].reshape(n, 1, h, w)
        u = flat[:, h * w : h * w + q].reshape(n, 1, h // 2, w // 2).float()
        v = flat[:, h * w + q :].reshape(n, 1, h // 2, w // 2).float()
        return y8, u, v

    def analyse(self, y8: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Base ``p`` (RGB) and block std ``s`` from the stride-2 samples, as for BGR frames (their noise)."""
        return self.model.analyse_half(_yuv_to_rgb(y8[..., ::2, ::2].float(), u, v) * (1.0 / 255.0))

    def render(self, y8: torch.Tensor, u: torch.Tensor, v: torch.Tensor, p: torch.Tensor,
               c: torch.Tensor) -> torch.Tensor:
        """Apply raw coefficients ``c`` with base ``p`` to the planes; returns (N, H*3/2, W) uint8 I420."""
        m = self.model
        n, _, h, w = y8.shape
        y = y8.float()
        yh = F.avg_pool2d(y, 2, 2)
        xh = _yuv_to_rgb(yh, u, v)
        base_k, k, r, wb = m.render_maps(xh, p, c, base_scale=255.0)
        rgb = tone_curve(xh, base_k, k, r, wb, desaturation=m.desaturation, white=255.0, highlight=m.highlight)
        yo, uo, vo = _rgb_to_yuv(rgb)
        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=(h, w), mode="nearest")

        dk = F.interpolate(self.detail_gain(p, c), size=yh.shape[-2:], mode="bilinear", align_corners=False)
        delta = y - up(yh)
        yout = up(yo) + up(dk[:, 0:1]) * delta / (1.0 + up(dk[:, 1:2]) * torch.relu(delta))
        yout = torch.maximum(yout.clamp(max=_Y0 + 219.0), y)
        q = (h // 2) * (w // 2)
        planes = [(yout + 0.5).to(torch.uint8).reshape(n, h * w),
                  (uo.clamp(0.0, 255.0) + 0.5).to(torch.uint8).reshape(n, q),
                  (vo.clamp(0.0, 255.0) + 0.5).to(torch.uint8).reshape(n, q)]
        return torch.cat(planes, dim=1).reshape(n, h * 3 // 2, w)

    def forward(
        self, frames: torch.Tensor, state: torch.Tensor | None = None, alpha: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``state``/``alpha`` default to zeros: the single-image result."""
        y8, u, v = self.planes(frames)
        p, s = self.analyse(y8, u, v)
        c = self.model.predict(p, s)
        if state is not None and alpha is not None:
            c = alpha * state + (1.0 - alpha) * c
        return self.render(y8, u, v, p, c), c

def frame_graph(model: nn.Module, io: str = "uint8") -> nn.Module:
    """The uint8-frame export form of ``model``: ``io`` ``uint8`` (BGR frames) or ``i420`` (realtime preset only).

    :class:`RealtimeFrameGraph` (or :class:`RealtimeI420Graph`) for the realtime preset, else :class:`FrameGraph`.

    Raises:
        ValueError: ``i420`` for a model other than the realtime preset, or an unknown ``io``.
    """
    if io == "i420":
        if not isinstance(model, RealtimeUNet):
            raise ValueError(f"I420 frames are for the realtime preset, not {type(model).__name__}")
        return RealtimeI420Graph(model)
    if io != "uint8":
        raise ValueError(f"unknown frame I/O {io!r} (uint8 or i420)")
    return RealtimeFrameGraph(model) if isinstance(model, RealtimeUNet) else FrameGraph(model)
