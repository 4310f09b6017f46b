"""Quality preset: a full-resolution U-Net predicting a residual correction of the input."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lle.models.blocks import Decoder, Encoder
from lle.models.registry import register_model
from lle.pipeline import cap_knots

__all__ = ["QualityUNet", "cap_exposure", "check_exposure_cap", "exposure_cap_at", "roll_off_highlights"]

_LUMA = (0.299, 0.587, 0.114)


def _mean_luma(x: torch.Tensor) -> torch.Tensor:
    """Per-image mean luma of (N, 3, H, W), shape (N, 1, 1, 1)."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).mean((2, 3), keepdim=True)


def exposure_cap_at(m: torch.Tensor, *cap: float) -> torch.Tensor:
    """Brightest mean output luma allowed for an input of mean luma ``m``.

    ``cap`` is ``[m_a, cap_a, m_b, cap_b, ...]``: the curve runs straight through the knots (m_a, cap_a), ...,
    from 1 (no cap) at black to 1 at white. ``[0.25, 0.4]`` is a V with its tip at 0.4 for an input of 0.25;
    ``[0.2, 0.4, 0.25, 0.4, 0.6, 0.6]`` holds 0.4 from 0.2 to 0.25 and allows no lift at all from 0.6 up.

        >>> [round(float(exposure_cap_at(torch.tensor(m), 0.25, 0.4)), 2) for m in (0.0, 0.1, 0.25, 0.5, 1.0)]
        [1.0, 0.76, 0.4, 0.6, 1.0]
        >>> [round(float(exposure_cap_at(torch.tensor(m), 0.2, 0.4, 0.25, 0.4, 0.6, 0.6)), 2)
        ...  for m in (0.1, 0.2, 0.23, 0.25, 0.4, 0.8)]
        [0.7, 0.4, 0.4, 0.4, 0.49, 0.8]
    """
    knots = cap_knots(cap)
    out = torch.ones_like(m)
    for (m_a, c_a), (m_b, c_b) in zip(knots, knots[1:], strict=False):
        out = torch.where(m >= m_a, c_a + (c_b - c_a) * (m - m_a) / (m_b - m_a), out)
    return out


def check_exposure_cap(value: Sequence[float]) -> tuple[float, ...]:
    """``[m_a, cap_a, m_b, cap_b, ...]`` as floats, checked: 0 < m_a < m_b < ... < 1 and m <= cap <= 1 at each knot.

    Raises:
        ValueError: anything else, naming the value.
    """
    v = tuple(float(t) for t in value)
    ms, caps = v[0::2], v[1::2]
    ok = (len(v) >= 2 and len(v) % 2 == 0 and 0.0 < ms[0] and ms[-1] < 1.0
          and all(a < b for a, b in zip(ms, ms[1:], strict=False))
          and all(m <= c <= 1.0 for m, c in zip(ms, caps, strict=True)))  # fmt: skip
    if not ok:
        raise ValueError(f"exposure_cap={list(value)} must be knots [m_a, cap_a, m_b, cap_b, ...] with "
                         "0 < m_a < m_b < ... < 1 and m <= cap <= 1 at each knot")  # fmt: skip
    return v


def cap_exposure(x: torch.Tensor, y: torch.Tensor, *cap: float) -> torch.Tensor:
    """Scene-adaptive exposure: hold ``y`` to the mean luma :func:`exposure_cap_at` allows for input ``x``.

    Where output ``y`` is brighter on average than that, it moves back towards ``x`` (``x + t (y - x)``, one ``t``
    per image) until its mean luma is at the cap.

    A dark scene is far below its cap and passes untouched; a moderately lit one (a lit night street at mean luma
    0.25) is lifted only a little and keeps its contrast. ``t`` is one number per image, so the blend keeps every
    per-pixel property ``y`` has against ``x`` (``y >= x`` stays true, the order of pixels is kept where both agree).
    The blend uses ``y`` clipped to [0, 1], as it will be shown, so the capped mean is exact.
    """
    yc = y.clamp(0.0, 1.0)
    mx, my = _mean_luma(x), _mean_luma(yc)
    limit = exposure_cap_at(mx, *cap)
    t = ((limit - mx) / (my - mx).clamp_min(1e-6)).clamp(0.0, 1.0)
    return torch.where(my > limit, x + t * (yc - x), y)


def roll_off_highlights(x: torch.Tensor, y: torch.Tensor, knee: float) -> torch.Tensor:
    """Highlight roll-off: a pixel lifted past ``knee`` of its headroom ``1 - x`` eases towards white.

    With ``u = (y - x) / (1 - x)`` the share of the headroom the lift uses, ``u`` above ``knee`` becomes
    ``knee + (1 - knee) (1 - exp(-(u - knee) / (1 - knee)))``: continuous with slope 1 at the knee, increasing, and
    below 1 for every finite lift, so a bright wall or a lamp's halo keeps its gradation instead of blowing to white.
    Pixels at or below their input (``y <= x``) and lifts under the knee pass unchanged, and ``y >= x`` stays true.

        >>> x = torch.full((4,), 0.5)
        >>> [round(v, 3) for v in roll_off_highlights(x, torch.tensor([0.3, 0.8, 1.0, 1.2]), 0.8).tolist()]
        [0.3, 0.8, 0.963, 0.995]
    """
    xc = x.clamp(0.0, 1.0)
    head = (1.0 - xc).clamp_min(1e-4)
    u = (y - xc) / head
    eased = knee + (1.0 - knee) * (1.0 - torch.exp(-(u - knee).clamp_min(0.0) / (1.0 - knee)))
    return torch.where(u > knee, xc + eased * head, y)  # u > knee > 0 implies y > x


class QualityUNet(nn.Module):
    """Full-resolution U-Net. (N, 3, H, W) float32 in [0, 1] -> same shape, H and W multiples of ``size_multiple``.

    The head outputs a per-pixel gain (as a log) and a residual: ``y = x * exp(g) + r``. Both start at zero, so an
    untrained model is the identity; the gain carries exposure, the residual carries denoising and colour.
    ``exposure_cap = [m_a, cap_a, m_b, cap_b, ...]`` adds :func:`cap_exposure`: an input of mean luma ``m_a`` comes
    out at most ``cap_a`` bright on average, straight lines joining the knots and relaxing to no cap at black and at
    white (:func:`exposure_cap_at`). ``highlight_knee`` adds
    :func:`roll_off_highlights` before the cap. ``never_darker`` ends with ``max(y, x)`` per channel: no pixel comes
    out darker than it went in, so a street lamp or a lit window can never turn into a dark spot (inverted highlight),
    whatever the denoising does around it. None of the three has weights.
    """

    def __init__(self, width: int = 16, depth: int = 4, exposure_cap: Sequence[float] | None = None,
                 highlight_knee: float | None = None, never_darker: bool = False) -> None:  # fmt: skip
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"width and depth must be >= 1, got width={width} depth={depth}")
        self.exposure_cap: tuple[float, ...] | None = None
        if exposure_cap is not None:
            self.exposure_cap = check_exposure_cap(exposure_cap)
        if highlight_knee is not None and not 0.0 < highlight_knee < 1.0:
            raise ValueError(f"highlight_knee={highlight_knee} must be between 0 and 1 (a share of the headroom)")
        self.highlight_knee = None if highlight_knee is None else float(highlight_knee)
        self.never_darker = bool(never_darker)
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
        y = x * torch.exp(gain.clamp(max=4.0)) + res
        if self.highlight_knee is not None:
            y = roll_off_highlights(x, y, self.highlight_knee)
        if self.exposure_cap is not None:
            y = cap_exposure(x, y, *self.exposure_cap)
        if self.never_darker:
            y = torch.maximum(y, x)
        return y


@register_model("quality")
def quality(width: int = 16, depth: int = 4, exposure_cap: list[float] | None = None,
            highlight_knee: float | None = None, never_darker: bool = False) -> QualityUNet:  # fmt: skip
    """Quality preset (about 2.8 M parameters at width 16, depth 4)."""
    return QualityUNet(width=width, depth=depth, exposure_cap=exposure_cap, highlight_knee=highlight_knee,
                       never_darker=never_darker)
