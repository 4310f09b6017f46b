"""Export wrappers that take frames as a decoder gives them: (N, H, W, 3) uint8 BGR in, the same out.

Cast, layout, channel order, scaling, padding to the size multiple, rounding and clipping all live inside the graph,
so a runtime gets the decoded frame's memory as it is and the encoder gets the result as it is. Exports of these
graphs carry ``lle.io`` = :data:`lle.backends.base.FRAME_IO`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lle.models.realtime import RealtimeUNet

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

    The full-resolution curve runs on three one-channel planes (one uint8 transpose of the frame, split on the outer
    axis), with the five coefficient maps upsampled by one Resize and split the same way: OpenVINO's bilinear
    Interpolate costs about as much per call as per channel, and it reorders 3-channel tensors to blocked layouts;
    no channel slicing for the curve's maximum. One uint8 Concat and transpose out. Same result as
    :meth:`RealtimeUNet.render_maps` + :func:`tone_curve` within float rounding (12 of 6.2 M values one level apart
    at 1080p). At 1080p (CPU time, 1 thread, loaded 2-core host): onnxruntime 120 -> 102 ms, OpenVINO 153 -> 100 ms.
    """

    white: torch.Tensor

    def __init__(self, model: RealtimeUNet) -> None:
        super().__init__()
        self.model = model
        self.lowres = model.lowres
        self.coeff_channels = model.coeff_channels
        self.register_buffer("white", torch.tensor(255.0), persistent=False)

    def forward(
        self, frames: torch.Tensor, state: torch.Tensor | None = None, alpha: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``state``/``alpha`` default to zeros: the single-image result."""
        m = self.model
        x2 = frames[:, ::2, ::2].permute(0, 3, 1, 2).float() * (1.0 / 255.0)  # strided read of the uint8 frame
        p, s = m.analyse_half(x2)
        c = m.predict(p.flip(1), s)
        if state is not None and alpha is not None:
            c = alpha * state + (1.0 - alpha) * c
        # B, G, R planes in 0..255: the curve is rewritten in those units
        n, h, wd = frames.shape[:3]
        # a Reshape after the permute keeps onnxruntime's transpose optimiser from moving it past the Split
        planes = frames.permute(0, 3, 1, 2).reshape(n, 3, h * wd).split(1, dim=1)
        xb, xg, xr = (t.reshape(n, 1, h, wd).float() for t in planes)
        *bk, k, r, w = self.maps(p, c, (h, wd))
        y = _curve_planes((xb, xg, xr), bk, k, r, w, self.white, m.desaturation, m.highlight)
        return torch.cat([(t + 0.5).to(torch.uint8) for t in y], dim=1).permute(0, 2, 3, 1), c

    def maps(self, p: torch.Tensor, c: torch.Tensor, size: tuple[int, ...] | torch.Size) -> tuple[torch.Tensor, ...]:
        """:meth:`RealtimeUNet.render_maps` in BGR order and 0..255 units, one Resize for all five planes.

        Returns ``(Bk_b, Bk_g, Bk_r, k, r)``, each (N, 1, *size), and the white balance ``w`` (N, 3, 1, 1, BGR).
        """
        k, r, w = self.model.decode(c, p.shape[-2:])
        w = w.flip(1)
        small = torch.cat([p * (255.0 * (1.0 - k)) * w, k, r], dim=1)
        n, (h, wd) = small.shape[0], size
        big = F.interpolate(small, size=(h, wd), mode="bilinear", align_corners=False).reshape(n, 5, h * wd)
        return (*(t.reshape(n, 1, h, wd) for t in big.split(1, dim=1)), w)


# BT.601 limited range, what x264/FFmpeg and OpenCV use for yuv420p <-> BGR when nothing else is said.
_Y0, _YS, _C0, _CS = 16.0, 219.0 / 255.0, 128.0, 224.0 / 255.0
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB

Planes = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _chroma_terms(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """U and V codes (float) -> their terms ``(cr, cb, gb, gr)`` in R, G and B.

    ``R = Y' + cr``, ``B = Y' + cb``, ``G = Y' - gb - gr`` with ``Y' = (Y - 16) / YS``. Computed once per frame and
    shared by the analysis (stride-2 luma samples) and the render (2x2 luma means), which each converted U and V.
    """
    pb = (u - _C0) * (1.0 / _CS)
    pr = (v - _C0) * (1.0 / _CS)
    gb, gr = (2.0 * _KB * (1.0 - _KB) / _KG) * pb, (2.0 * _KR * (1.0 - _KR) / _KG) * pr
    return (2.0 - 2.0 * _KR) * pr, (2.0 - 2.0 * _KB) * pb, gb, gr


def _rgb_planes(y: torch.Tensor, terms: tuple[torch.Tensor, ...]) -> Planes:
    """Y codes (float) and :func:`_chroma_terms` of the same size -> R, G, B planes in 0..255, clipped."""
    yf = (y - _Y0) * (1.0 / _YS)
    cr, cb, gb, gr = terms
    return (yf + cr).clamp(0.0, 255.0), (yf - gb - gr).clamp(0.0, 255.0), (yf + cb).clamp(0.0, 255.0)


def _curve_planes(x: Planes, bk: Sequence[torch.Tensor], k: torch.Tensor, r: torch.Tensor, w: torch.Tensor,
                  white: torch.Tensor, desaturation: float, highlight: float) -> Planes:
    """:func:`tone_curve` with ``white = 255`` on three one-channel planes (either channel order).

    ``x`` and ``bk`` (``(1 - k) w B`` in 0..255) are three (N, 1, h, w) planes each, ``k`` and ``r`` (N, 1, h, w),
    ``w`` (N, 3, 1, 1) in the planes' order, ``white`` a 0-d tensor 255. The same arithmetic per plane, so no
    3-channel Concat/Split (OpenVINO reorders those to blocked layouts) and no channel slicing for the maximum;
    ``255 / x`` is one Div by the constant ``white`` (a Python scalar exports as Reciprocal + Mul).
    """
    d = [b + k * xc * wc for b, xc, wc in zip(bk, x, w.split(1, dim=1), strict=True)]
    v = torch.maximum(torch.maximum(d[0], d[1]), d[2])
    inv = white / (v + r * (255.0 - v))
    if highlight:
        inv = torch.minimum(inv, (1.0 - highlight) + (white * highlight) / (v + 1e-6 * 255.0))
    if desaturation:
        si = (desaturation * torch.relu(1.0 - r)) * inv
        a, b = inv - si, si * v  # d (1 - s) inv + s v inv
        y0, y1, y2 = (torch.maximum(dc * a + b, xc) for dc, xc in zip(d, x, strict=True))
    else:
        y0, y1, y2 = (torch.maximum(dc * inv, xc) for dc, xc in zip(d, x, strict=True))
    return y0, y1, y2


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

    *Layout for the runtimes* (what the exported graph runs): no Resize, Pad or float Concat/Split at full
    resolution. Y is one Split of the input buffer, taken as ``(N, H/2, 2, W)`` row pairs: the chroma-resolution maps
    are repeated along W only (a nearest Resize to ``(H/2, W)``, half the pixels) and broadcast over the pair, which
    onnxruntime keeps on its vectorised path (a 6-D ``(N, H/2, 2, W/2, 2)`` broadcast cost it 15 ms per op at 1080p;
    onnxruntime 1.18 has no uint8 SpaceToDepth/DepthToSpace and the float pair was slower). OpenVINO fuses the whole
    detail step, clip, maximum and rounding into one kernel. Everything at chroma resolution is one-channel planes
    (OpenVINO reorders 3-channel tensors to blocked layouts around pooling and slicing: a fifth of its time in the
    3-channel form), the seven coefficient maps are upsampled by one Resize (OpenVINO's bilinear Interpolate costs
    about as much per call as per channel) and split on the outer axis (in place in OpenVINO), U and V are
    converted once for both the analysis and the render, and the output is one uint8 Concat of the three planes.
    At 1080p (CPU time, 1 thread, loaded 2-core host): onnxruntime 59 -> 54 ms, OpenVINO 105 -> 40 ms against the
    3-channel, full-resolution-Resize form.
    With the shipped weights (``benchmarks/results/realtime_v2.md``): 21.85 dB / 0.756 on the SICE held-out scenes
    and 1.07 % newly blown pixels on the real photos, against 21.89 / 0.761 and 1.06 % for the float32 path's
    output after a 4:2:0 round trip (what any 4:2:0 video encode keeps of it).
    """

    white: torch.Tensor

    def __init__(self, model: RealtimeUNet) -> None:
        super().__init__()
        self.model = model
        self.lowres = model.lowres
        self.coeff_channels = model.coeff_channels
        # A Div with a constant numerator is one op; ``255 / x`` exports as Reciprocal + Mul.
        self.register_buffer("white", torch.tensor(255.0), persistent=False)

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
    def planes(frames: torch.Tensor) -> Planes:
        """(N, H*3/2, W) uint8 -> Y (N, 1, H, W), U and V (N, 1, H/2, W/2), float32 codes.

        One reshape of the buffer and one Split into the three planes (no per-plane slicing of the frame).
        """
        n, rows, w = frames.shape
        h = rows * 2 // 3
        q = (h // 2) * (w // 2)
        y8, u8, v8 = frames.reshape(n, rows * w).split([h * w, q, q], dim=1)
        return (y8.reshape(n, 1, h, w).float(), u8.reshape(n, 1, h // 2, w // 2).float(),
                v8.reshape(n, 1, h // 2, w // 2).float())

    @staticmethod
    def chroma(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The U and V planes' terms in R, G and B, shared by :meth:`analyse` and :meth:`render`."""
        return _chroma_terms(u, v)

    @staticmethod
    def analyse(y: torch.Tensor, terms: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Base ``p`` (RGB) and block std ``s`` from the stride-2 samples of ``y``, as for BGR frames (their noise).

        :meth:`RealtimeUNet.analyse_half` plane by plane (a 1x1 max-pool with stride 2 takes the samples), with the
        ``1/255`` applied to the pooled values instead of the plane.
        """
        ps, qs = [], []
        for x in _rgb_planes(F.max_pool2d(y, 1, 2), terms):
            x = F.pad(x, (0, 3, 0, 3), mode="replicate")
            ps.append(F.avg_pool2d(x, 4, 4))
            qs.append(F.avg_pool2d(x * x, 4, 4))
        p = torch.cat(ps, dim=1) * (1.0 / 255.0)
        q = torch.cat(qs, dim=1) * (1.0 / 255.0**2)
        return p, torch.sqrt((q - p * p).mean(dim=1, keepdim=True).clamp(min=0.0) + 1e-6)

    def maps(self, p: torch.Tensor, c: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """The seven chroma-resolution maps from raw coefficients ``c`` and base ``p``, one Resize for all.

        Returns ``(Bk_r, Bk_g, Bk_b, k, r, D, kappa)``, each (N, 1, *size), and the white balance ``w`` (N, 3, 1, 1):
        ``Bk = 255 (1 - k) w p`` as in :meth:`RealtimeUNet.render_maps`, ``(D, kappa)`` from :meth:`detail_gain`.
        """
        k, r, wb = self.model.decode(c, p.shape[-2:])
        small = torch.cat([p * (255.0 * (1.0 - k)) * wb, k, r, self.detail_gain(p, c)], dim=1)
        n = small.shape[0]
        big = F.interpolate(small, size=size, mode="bilinear", align_corners=False)
        return (*(t.reshape(n, 1, *size) for t in big.reshape(n, 7, size[0] * size[1]).split(1, dim=1)), wb)

    def render(self, y: torch.Tensor, terms: tuple[torch.Tensor, ...], p: torch.Tensor,
               c: torch.Tensor) -> torch.Tensor:
        """Apply raw coefficients ``c`` with base ``p`` to Y codes ``y`` (N, 1, H, W); returns (N, H*3/2, W) uint8.

        :func:`tone_curve` with ``white = 255`` on R, G and B planes at chroma resolution, then the luma detail step
        on the row pairs of ``y`` (see the class docstring).
        """
        m = self.model
        n, _, hh, ww = y.shape
        h, w = hh // 2, ww // 2
        yh = F.avg_pool2d(y, 2, 2)
        x = _rgb_planes(yh, terms)
        *bk, k, r, dg, kap, wb = self.maps(p, c, (h, w))
        rr, gg, bb = _curve_planes(x, bk, k, r, wb, self.white, m.desaturation, m.highlight)
        yf = _KR * rr + _KG * gg + _KB * bb
        # + 0.5: the uint8 cast truncates, so this rounds; clipped to [0.5, 255.5] = codes 0..255
        uo = ((_C0 + 0.5) + (_CS / (2.0 - 2.0 * _KB)) * (bb - yf)).clamp(0.5, 255.5)
        vo = ((_C0 + 0.5) + (_CS / (2.0 - 2.0 * _KR)) * (rr - yf)).clamp(0.5, 255.5)
        yo = _Y0 + _YS * yf

        def up(t: torch.Tensor) -> torch.Tensor:  # (N, 1, h, w) -> (N, h, 1, W): repeat along W, broadcast rows
            return F.interpolate(t, size=(h, ww), mode="nearest").reshape(n, h, 1, ww)

        yr = y.reshape(n, h, 2, ww)
        delta = yr - up(yh)
        yout = up(yo) + up(dg) * delta / (1.0 + up(kap) * torch.relu(delta))
        yout = torch.maximum(yout.clamp(max=_Y0 + 219.0), yr)
        out = [(yout + 0.5).to(torch.uint8).reshape(n, hh * ww), uo.to(torch.uint8).reshape(n, h * w),
               vo.to(torch.uint8).reshape(n, h * w)]
        return torch.cat(out, dim=1).reshape(n, hh * 3 // 2, ww)

    def forward(
        self, frames: torch.Tensor, state: torch.Tensor | None = None, alpha: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``state``/``alpha`` default to zeros: the single-image result."""
        y, u, v = self.planes(frames)
        terms = self.chroma(u, v)
        p, s = self.analyse(y, terms)
        c = self.model.predict(p, s)
        if state is not None and alpha is not None:
            c = alpha * state + (1.0 - alpha) * c
        return self.render(y, terms, p, c), c


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
