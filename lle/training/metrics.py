"""Image quality metrics in torch on (N, 3, H, W) float in [0, 1]. Match scikit-image's definitions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "psnr", "psnr_gt_mean", "ssim"]


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB, shape (N,). Identical images give +inf."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def psnr_gt_mean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR after scaling ``x`` so its mean equals ``y``'s: the error that remains once exposure is factored out."""
    scale = y.float().flatten(1).mean(1) / x.float().flatten(1).mean(1).clamp_min(1e-6)
    return psnr((x.float() * scale.view(-1, 1, 1, 1)).clamp(0, 1), y)


def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, radius: int | None = None) -> torch.Tensor:
    """1-D normalised Gaussian of radius ``int(truncate * sigma + 0.5)`` (scipy/scikit-image convention)."""
    r = int(truncate * sigma + 0.5) if radius is None else radius
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM, shape (N,), averaged over channels.

    Same as ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=...)``: Gaussian 11x11 window, border cropped.
    Images smaller than the window fall back to a window that fits.
    """
    g = gaussian_window(sigma).to(x.device)
    if min(x.shape[-2:]) < g.numel():
        r = (min(x.shape[-2:]) - 1) // 2
        g = gaussian_window(max(0.5, r / 3.5), radius=r).to(x.device)
    x, y = x.float(), y.float()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx * mx
    syy = _blur(y * y, g) - my * my
    sxy = _blur(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)
