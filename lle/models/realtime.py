"""Realtime preset: a U-Net on a small copy of the frame predicts a monotonic, noise-aware local tone curve.

Design (all full-resolution work is a handful of element-wise passes; the U-Net never sees the full frame):

1. **Analysis** (reads the frame once, at stride 2). ``x2 = x[..., ::2, ::2]``; 4x4 box means of ``x2`` and ``x2**2``
   give a base image ``p`` at 1/8 resolution (16 samples per value, so sensor noise drops 4x) and the local standard
   deviation ``s`` (noise plus texture) of each 8x8 block. ``[p, s]`` resized to ``lowres x lowres`` is the U-Net input,
   so it sees how noisy each region is, not just how dark.
2. **Coefficients** (``lowres x lowres``, 2 channels): a log gain ``g`` (soft-clamped to +-4.5, gain ``a = e^g``) and a
   detail logit (detail gain ``k = sigmoid(.)`` in (0, 1)). Replicate padding in every convolution and bilinear
   upsampling in the decoder, so a flat frame gives exactly flat coefficients up to the border (no border bands).
3. **Render** at full resolution, per pixel, with ``B`` the base ``p`` upsampled bilinearly and ``r = 1/a``::

       d = B + k (x - B)                      # base/detail split: detail (and noise) scaled by k <= 1
       V = max_c d                            # brightest channel
       y = d / (V + r (1 - V))                # Reinhard-style curve on V, colour ratios d_c / V kept
       y = y * min(1, g_h(V) / f(V))          # highlight cap g_h(V) = V + h (1 - V): keep a share 1 - h of the
                                              # distance to white (arch ``highlight``; 0 = off)
       y = y + s (f(V) - y),  s = s0 (1 - r)  # strong lifts pull colours towards the brightest channel
       out = max(y, x)                        # never darker than the input

   *Monotonic*, for fixed coefficients ``k``, ``r``: (a) in each channel's own input: ``d_c`` rises with ``x_c``
   (``k > 0``); if ``c`` is the brightest channel, ``y_c = f(V) = V / (r + (1 - r) V)`` with
   ``f'(V) = r / (r + (1 - r) V)^2 > 0``, otherwise ``y_c`` is ``d_c`` times a positive factor that does not depend
   on ``x_c``. (b) Along exposure: scaling a pixel and its surroundings by ``t`` scales ``B`` and ``d`` by ``t``, so
   ``y_c = t d_c / (r + (1 - r) t V)``, whose derivative in ``t`` is ``r d_c / (r + (1 - r) t V)^2 >= 0`` (a grey
   ramp is the special case); the desaturation step is ``t ((1 - s) d_c + s V) / (r + (1 - r) t V)``, the same form
   with a positive mix of ``d_c`` and ``V`` in place of ``d_c``. (c) The final maximum of two non-decreasing
   functions is non-decreasing.
   The highlight cap replaces ``f`` by ``min(f, g_h)``: both are non-decreasing with ``f(V)/V`` and ``g_h(V)/V``
   non-increasing, so the same argument holds for their minimum.
   *No blow-out*: ``f(0) = 0``, ``f(1) = 1``, ``f`` is concave for ``a > 1`` (slope ``a`` in the shadows, ``1/a`` at
   white), and ``y_c <= f(V) <= 1``, so highlights roll off and nothing clips. The roll-off alone still squeezes
   bright pixels into the last levels under a strong gain (at gain 10 everything above 0.85 lands at 0.98 or more);
   with the cap only inputs within ``0.02 / (1 - h)`` of white can reach 0.98. *No inverted
   highlights*: the final ``max`` keeps street lamps at least as bright as they came in, even where ``k`` is small.
   *Noise*: in dark flat regions the U-Net (which sees ``s``) lowers ``k``, so the lift applies to the denoised base.

Per-pixel cost at full resolution: a strided read for the analysis (~1/4 of the frame's floats), three bilinear
upsamplings (``(1 - k) B``: 3 channels; ``k`` and ``r``: 1 each), then 2 ops on 3 channels for ``d``, a 3-to-1
channel max, 4 ops on 1 channel for the curve denominator (3 more for the highlight cap), 1 division and 1 max on 3
channels: about 10 scalar ops per pixel and channel, all element-wise (OpenVINO fuses the chain into a few passes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lle.models.blocks import Decoder, Encoder, PaddingMode
from lle.models.registry import register_model

__all__ = ["MAX_LOG_GAIN", "RealtimeUNet", "TemporalRealtime", "exposure_weight", "tone_curve"]

MAX_LOG_GAIN = 4.5
"""Soft limit of the log gain: the shadow slope of the curve stays within e^+-4.5 (about 90x)."""

_PAD: PaddingMode = "replicate"


def exposure_weight(p: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """(N, 1, 1, 1) share of the predicted log gain a frame keeps, from the mean luma ``m`` of its base ``p``.

    1 up to ``m = lo`` (a dark frame: the model lifts it as trained), falling linearly to 0 at ``m = hi`` (a frame
    already exposed like a reference: gain 1, only the detail/noise split and white balance act). A moderately lit
    night scene is lifted a little instead of being pushed to daylight grey. Scaling the log gain only changes the
    coefficients, so the curve stays monotonic.

    Example:
        >>> [round(float(exposure_weight(torch.full((1, 3, 2, 2), m), 0.2, 0.4)), 2) for m in (0.1, 0.3, 0.5)]
        [1.0, 0.5, 0.0]
    """
    luma = 0.299 * p[:, 0:1] + 0.587 * p[:, 1:2] + 0.114 * p[:, 2:3]
    m = luma.mean(dim=(2, 3), keepdim=True)
    return ((hi - m) * (1.0 / (hi - lo))).clamp(0.0, 1.0)


def tone_curve(
    x: torch.Tensor, base_k: torch.Tensor, k: torch.Tensor, r: torch.Tensor, w: torch.Tensor | None = None,
    desaturation: float = 0.0, white: float = 1.0, highlight: float = 0.0,
) -> torch.Tensor:
    """Apply the realtime curve at full resolution.

    Args:
        x: (N, 3, H, W) input in [0, ``white``].
        base_k: (N, 3, H, W) ``(1 - k) * B``, the weighted smooth base, in [0, ``white`` (1 - k)].
        k: (N, 1, H, W) detail gain in (0, 1].
        r: (N, 1, H, W) inverse shadow gain ``1 / a``, positive.
        w: (N, 3, 1, 1) white-balance gains in (0, 1] (already folded into ``base_k``), or None for 1.
        desaturation: ``s0``: each channel moves a share ``s0 (1 - r)`` towards the brightest one, so strong lifts
            do not inflate chroma (scaling dark sRGB values keeps their ratios, which looks oversaturated against a
            real exposure); no change where the gain is 1.
        white: the value of white in ``x`` and ``base_k`` (255 for a frame graph working in 0..255, so no
            full-resolution rescaling pass is needed).
        highlight: ``h`` in (0, 1) caps the curve at ``V + h (white - V)``: a bright pixel keeps at least a share
            ``1 - h`` of its distance to white, so near-white detail is not squeezed into the last levels (what a
            strong gain's roll-off alone does: at gain 10 everything above 0.85 lands at 0.98 or more); 0 = off.

    Returns:
        (N, 3, H, W) in [0, ``white``], non-decreasing in ``x`` for fixed ``base_k``, ``k`` and ``r``.

    Example:
        >>> x = torch.linspace(0, 1, 11).view(1, 1, 1, 11).expand(1, 3, 1, 11)
        >>> y = tone_curve(x, torch.zeros_like(x), torch.ones(1, 1, 1, 11), torch.full((1, 1, 1, 11), 0.25))
        >>> bool((y[..., 1:] >= y[..., :-1]).all()), float(y[0, 0, 0, -1]), round(float(y[0, 0, 0, 1]), 3)
        (True, 1.0, 0.308)
    """
    d = base_k + (k * x if w is None else k * x * w)
    v = torch.maximum(torch.maximum(d[:, 0:1], d[:, 1:2]), d[:, 2:3])  # cheaper than ReduceMax in runtimes
    inv = white / (v + r * (white - v))  # one reciprocal on one channel, then one multiply on three
    if highlight:
        # + 1e-6 white: finite at v = 0 (where inv is the smaller anyway), so no inf * 0 = NaN in the gradient
        inv = torch.minimum(inv, (1.0 - highlight) + (highlight * white) / (v + 1e-6 * white))
    if desaturation:
        sig = desaturation * torch.relu(1.0 - r)
        return torch.maximum(d * ((1.0 - sig) * inv) + sig * v * inv, x)
    return torch.maximum(d * inv, x)


class RealtimeUNet(nn.Module):
    """Resolution-decoupled U-Net. (N, 3, H, W) float32 RGB in [0, 1], any H and W >= 1 -> same shape and range.

    See the module docstring for the curve, its monotonicity proof and its cost.
    """

    coeff_channels = 5
    """Coefficient map channels: log-gain logit, detail logit, then 3 white-balance logits (spatially constant)."""

    def __init__(self, width: int = 16, depth: int = 3, lowres: int = 128, desaturation: float = 0.0,
                 highlight: float = 0.0, exposure: tuple[float, float] | list[float] | None = None) -> None:
        super().__init__()
        lo, hi = (float(v) for v in (exposure or (0.0, 0.0)))
        if exposure is not None and not 0.0 < lo < hi <= 1.0:
            raise ValueError(f"exposure={list(exposure)} must be two mean lumas 0 < lo < hi <= 1")
        self.exposure = (lo, hi) if exposure is not None else None
        if not 0.0 <= desaturation < 1.0:
            raise ValueError(f"desaturation={desaturation} must be in [0, 1)")
        if not 0.0 <= highlight < 1.0:
            raise ValueError(f"highlight={highlight} must be in [0, 1)")
        self.desaturation = float(desaturation)
        self.highlight = float(highlight)
        if lowres % 2**depth:
            raise ValueError(f"lowres={lowres} must be a multiple of 2**depth={2**depth}")
        widths = [width * 2**i for i in range(depth + 1)]
        self.size_multiple = 1
        self.lowres = lowres
        self.encoder = Encoder(4, widths, padding_mode=_PAD)
        self.decoder = Decoder(widths, padding_mode=_PAD, upsample="bilinear")
        self.head = nn.Conv2d(widths[0], 2, 3, padding=1, padding_mode=_PAD)
        self.colour = nn.Conv2d(widths[-1], 3, 1)  # global white balance from the bottleneck's image-wide mean
        for conv in (self.head, self.colour):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        with torch.no_grad():
            self.head.bias[1] = 3.0  # type: ignore[index]  # gain 1, k ~ 0.95, white balance 1

    @classmethod
    def analyse(cls, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> base ``p`` (N, 3, ceil(H/8), ceil(W/8)) and block std ``s`` (N, 1, same)."""
        return cls.analyse_half(x[..., ::2, ::2])

    @staticmethod
    def analyse_half(x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`analyse` from the stride-2 samples ``x[..., ::2, ::2]``.

        A frame graph takes them from the uint8 frame: a quarter of the bytes of the float frame.
        """
        # Edge-replicate 3 rows/columns so partial 4x4 blocks at the bottom/right (and frames under 8 px) pool like
        # full ones; every runtime accepts it (OpenVINO refuses a pooling window larger than a static input).
        x2 = F.pad(x2, (0, 3, 0, 3), mode="replicate")
        p = F.avg_pool2d(x2, 4, 4)
        q = F.avg_pool2d(x2 * x2, 4, 4)
        s = torch.sqrt((q - p * p).mean(dim=1, keepdim=True).clamp(min=0.0) + 1e-6)
        return p, s

    def predict(self, p: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Raw coefficients (N, 5, lowres, lowres) from the analysis (RGB ``p``); see :attr:`coeff_channels`."""
        size = (self.lowres, self.lowres)
        small = F.interpolate(torch.cat([p, 4.0 * s], dim=1), size=size, mode="bilinear", align_corners=False)
        feats = self.encoder(small)
        c = self.head(self.decoder(feats))
        if self.exposure is not None:
            c = torch.cat([c[:, :1] * exposure_weight(p, *self.exposure), c[:, 1:]], dim=1)
        wb = self.colour(feats[-1].mean(dim=(2, 3), keepdim=True)).expand(-1, -1, *c.shape[-2:])
        return torch.cat([c, wb], dim=1)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Raw low-resolution coefficients (N, 5, lowres, lowres) of ``x`` (what the video graph smooths)."""
        return self.predict(*self.analyse(x))

    @staticmethod
    def decode(coeffs: torch.Tensor, size: tuple[int, ...] | torch.Size) -> tuple[torch.Tensor, torch.Tensor,
                                                                             torch.Tensor]:
        """Raw ``coeffs`` (N, 5, L, L) -> ``(k, r, w)``, the curve's parameters.

        Detail gain ``k`` and inverse gain ``r = 1 / a`` are (N, 1, *size); the white balance ``w`` (N, 3, 1, 1, RGB
        order) has its brightest channel at 1, so the curve keeps ``y <= 1``.
        """
        c = F.interpolate(coeffs[:, :2], size=size, mode="bilinear", align_corners=False)
        r = torch.exp(-MAX_LOG_GAIN * torch.tanh(c[:, :1] / MAX_LOG_GAIN))
        wl = coeffs[:, 2:5].mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(c[:, 1:2]), r, torch.exp(wl - wl.amax(dim=1, keepdim=True))

    @staticmethod
    def render_maps(
        x: torch.Tensor, p: torch.Tensor, coeffs: torch.Tensor, base_scale: float = 1.0, bgr: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Full-resolution maps of :func:`tone_curve` from raw ``coeffs`` (N, 5, L, L) and base ``p`` in [0, 1].

        Returns ``(base_k (N, 3, H, W), k (N, 1, H, W), r (N, 1, H, W), w (N, 3, 1, 1))`` at ``x``'s size;
        ``base_k`` is in units of ``base_scale`` (255 for frames in 0..255) with ``w`` folded in, both at low
        resolution where it is cheap. ``bgr``: ``x`` and ``p`` are in BGR order (``w`` is flipped to match).
        """
        k, r, w = RealtimeUNet.decode(coeffs, p.shape[-2:])
        if bgr:
            w = w.flip(1)
        size = x.shape[-2:]

        def up(t: torch.Tensor) -> torch.Tensor:  # one resize per map: no full-resolution slicing afterwards
            return F.interpolate(t, size=size, mode="bilinear", align_corners=False)

        return up(p * (base_scale * (1.0 - k)) * w), up(k), up(r), w

    def render(self, x: torch.Tensor, p: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """Apply raw ``coeffs`` (N, 5, L, L) to ``x`` (N, 3, H, W) with base ``p`` from :meth:`analyse`."""
        return tone_curve(x, *self.render_maps(x, p, coeffs), desaturation=self.desaturation,
                          highlight=self.highlight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, s = self.analyse(x)
        return self.render(x, p, self.predict(p, s))

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map older realtime weights onto this model.

        Handles v1 (3-channel stem, 6-channel gain/curvature head) and transposed-convolution decoders.

        The stem gets a zero weight for the new noise channel; the gain head starts from the mean of the three v1
        log-gain channels; the detail head starts at ``k ~ 0.95``; a 2x2 transposed convolution becomes the 1x1
        convolution of its mean tap. Tensors that already fit are kept as they are.
        """
        own = self.state_dict()
        out = dict(state)
        for name in ("colour.weight", "colour.bias"):  # no white balance before v2 run 3: start neutral
            out.setdefault(name, torch.zeros_like(own[name]))
        for i in range(len(self.decoder.ups)):
            old = f"decoder.ups.{i}"
            if f"{old}.weight" in out and f"{old}.1.weight" in own:
                # transposed 2x2 conv (in, out, 2, 2) -> 1x1 conv (out, in, 1, 1) after bilinear 2x: the mean tap
                w = out.pop(f"{old}.weight").float()
                out[f"{old}.1.weight"] = w.mean(dim=(2, 3)).t()[..., None, None].contiguous()
                out[f"{old}.1.bias"] = out.pop(f"{old}.bias")
        stem = "encoder.stem.0.weight"
        if stem in out and out[stem].shape[1] == 3 and own[stem].shape[1] == 4:
            w = out[stem]
            out[stem] = torch.cat([w, torch.zeros_like(w[:, :1])], dim=1)
        if "head.weight" in out and out["head.weight"].shape[0] == 6:
            w, b = out["head.weight"].float(), out["head.bias"].float()
            out["head.weight"] = torch.cat([w[:3].mean(0, keepdim=True), torch.zeros_like(w[:1])], dim=0)
            out["head.bias"] = torch.stack([b[:3].mean(), torch.tensor(3.0)])
        return out


@register_model("realtime")
def realtime(width: int = 16, depth: int = 3, lowres: int = 128, desaturation: float = 0.0,
             highlight: float = 0.0, exposure: list[float] | None = None) -> RealtimeUNet:
    """Realtime preset (about 0.7 M parameters at width 16, depth 3)."""
    return RealtimeUNet(width=width, depth=depth, lowres=lowres, desaturation=desaturation, highlight=highlight,
                        exposure=exposure)


class TemporalRealtime(nn.Module):
    """Video form of :class:`RealtimeUNet`: blends this frame's coefficients with the previous frame's.

    ``(input (N,3,H,W), state (N,5,L,L), alpha (1,)) -> (output (N,3,H,W), state_out (N,5,L,L))`` with
    ``state_out = alpha * state + (1 - alpha) * coefficients(input)``. ``alpha = 0`` is the single-image model;
    the caller raises alpha on static scenes (less flicker) and resets it to 0 at scene cuts.
    """

    def __init__(self, model: RealtimeUNet) -> None:
        super().__init__()
        self.model = model
        self.size_multiple = model.size_multiple
        self.lowres = model.lowres
        self.coeff_channels = model.coeff_channels

    def forward(self, x: torch.Tensor, state: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, s = self.model.analyse(x)
        c = self.model.predict(p, s)
        c = alpha * state + (1.0 - alpha) * c
        return self.model.render(x, p, c), c
