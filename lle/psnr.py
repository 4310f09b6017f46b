"""PSNR of numpy arrays: the one implementation behind export parity, the mixed-precision search and ``lle bench``.

(Training and ``lle eval`` measure on torch tensors with :mod:`lle.training.metrics`.)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["psnr"]


def psnr(x: np.ndarray, ref: np.ndarray, *, data_range: float = 1.0, cap: float = 100.0, clip: bool = False) -> float:
    """PSNR in dB of ``x`` against ``ref`` (same size), computed in float64.

    ``clip`` first clips both to [0, ``data_range``] (as the pipeline clips its output); the result is capped at
    ``cap`` (identical arrays give ``cap``; ``math.inf`` for no cap). Non-finite values in ``x`` give NaN, which fails
    every threshold.

    Example:
        >>> a = np.zeros((4, 4, 3), np.float32)
        >>> psnr(a, a), round(psnr(a, a + 0.1), 1), psnr(a, a, cap=math.inf)
        (100.0, 20.0, inf)
    """
    xf, rf = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    if not np.isfinite(xf).all():
        return math.nan
    if clip:
        xf, rf = np.clip(xf, 0.0, data_range), np.clip(rf, 0.0, data_range)
    mse = float(np.mean((xf - rf) ** 2))
    if mse == 0.0:
        return cap
    return min(cap, 10.0 * math.log10(data_range**2 / mse))
