"""Picture-fault metrics on (H, W, 3) float32 RGB in [0, 1]: colour, noise in flat dark areas, highlights.

PSNR and SSIM average over the frame and miss the faults a viewer sees first: washed-out or shifted colour, grain
lifted on a dark wall, blown or inverted street lamps. Each function here measures one of them (numpy + OpenCV only,
no torch), so ``lle eval`` and the benchmark scripts report the same numbers.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "CLIP_LEVEL", "ab_error", "black_level", "chroma", "chroma_ratio", "clipped_share", "flat_dark_mask",
    "flat_dark_noise", "inverted_share", "lab", "local_contrast", "picture_metrics",
]  # fmt: skip

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
CLIP_LEVEL = 0.98
"""A channel at or above this is counted as clipped."""


def lab(x: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB ``x``: L in [0, 100], a* and b* roughly in [-110, 110]."""
    return cv2.cvtColor(np.ascontiguousarray(np.clip(x, 0.0, 1.0), np.float32), cv2.COLOR_RGB2Lab)


def chroma(x: np.ndarray) -> np.ndarray:
    """Per-pixel chroma ``sqrt(a*^2 + b*^2)`` (H, W)."""
    return _chroma_of(lab(x))


def _chroma_of(lab_img: np.ndarray) -> np.ndarray:
    ab = lab_img[..., 1:]
    return np.sqrt((ab * ab).sum(-1))


def _chroma_ratio_of(lab_y: np.ndarray, lab_ref: np.ndarray) -> float:
    return float(_chroma_of(lab_y).mean() / max(float(_chroma_of(lab_ref).mean()), 1e-6))


def _ab_error_of(lab_y: np.ndarray, lab_ref: np.ndarray) -> float:
    d = lab_y[..., 1:] - lab_ref[..., 1:]
    return float(np.sqrt((d * d).sum(-1)).mean())


def chroma_ratio(y: np.ndarray, ref: np.ndarray) -> float:
    """Mean chroma of ``y`` over that of ``ref``: 1 = as colourful as the reference, < 1 washed out.

    Example:
        >>> ref = np.zeros((8, 8, 3), np.float32) + np.array([0.6, 0.3, 0.2], np.float32)
        >>> grey = np.full_like(ref, 0.4)
        >>> round(chroma_ratio(ref, ref), 3), chroma_ratio(grey, ref) < 0.01
        (1.0, True)
    """
    return _chroma_ratio_of(lab(y), lab(ref))


def ab_error(y: np.ndarray, ref: np.ndarray) -> float:
    """Mean Euclidean distance of the a*b* planes (hue and saturation error, brightness ignored)."""
    return _ab_error_of(lab(y), lab(ref))


def flat_dark_mask(img: np.ndarray, *, dark: float = 0.35, flat: float = 0.012) -> np.ndarray:
    """Pixels of ``img`` in flat dark regions: blurred luma under ``dark`` and its 9x9 local std under ``flat``.

    Computed on a blurred copy, so the noise being measured does not decide where it is measured.
    """
    y = cv2.GaussianBlur(np.ascontiguousarray(img @ _LUMA), (0, 0), 2.0)
    m = cv2.blur(y, (9, 9))
    var = np.clip(cv2.blur(y * y, (9, 9)) - m * m, 0.0, None)
    return (m < dark) & (np.sqrt(var) < flat)


def flat_dark_noise(y: np.ndarray, mask: np.ndarray) -> float:
    """Grain of ``y`` where ``mask`` is set: std of the luma high-pass (``y - blur(y)``), in 8-bit levels.

    NaN when the mask is empty. Use :func:`flat_dark_mask` of the reference (paired) or of the output (unpaired).

    Example:
        >>> r = np.random.default_rng(0)
        >>> wall = np.full((64, 64, 3), 0.1, np.float32)
        >>> noisy = np.clip(wall + r.normal(0, 0.02, wall.shape), 0, 1).astype(np.float32)
        >>> m = flat_dark_mask(wall)
        >>> flat_dark_noise(wall, m), flat_dark_noise(noisy, m) > 2.0
        (0.0, True)
    """
    if not mask.any():
        return float("nan")
    lum = np.ascontiguousarray(y @ _LUMA)
    hp = lum - cv2.GaussianBlur(lum, (0, 0), 1.5)
    return float(hp[mask].std() * 255.0)


def clipped_share(y: np.ndarray, x: np.ndarray) -> float:
    """Share of pixels blown in ``y`` (a channel >= :data:`CLIP_LEVEL`) that were not blown in the input ``x``."""
    return float(((y.max(-1) >= CLIP_LEVEL) & (x.max(-1) < CLIP_LEVEL)).mean())


def inverted_share(y: np.ndarray, x: np.ndarray, *, bright: float = 0.6, margin: float = 0.05) -> float:
    """Share of the input's bright pixels (luma > ``bright``) that come out darker by more than ``margin``.

    A monotonic, brightening curve gives 0; a curve that bends down turns street lamps into dark dots. 0 when the
    input has no bright pixels.
    """
    lx, ly = x @ _LUMA, y @ _LUMA
    sel = lx > bright
    return float((ly[sel] < lx[sel] - margin).mean()) if sel.any() else 0.0


def _smooth_luma(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(np.ascontiguousarray(x @ _LUMA), (0, 0), sigma)


def black_level(y: np.ndarray, q: float = 1.0) -> float:
    """Where the blacks sit: the ``q``-th percentile of smoothed luma, in 8-bit levels.

    The 2 px blur keeps single noisy pixels from setting it. Compare with the reference's: a black keyboard that the
    reference keeps at 5 and the output shows at 40 is a lifted, milky black.

    Example:
        >>> img = np.full((64, 64, 3), 0.5, np.float32)
        >>> img[:16] = 0.02
        >>> round(black_level(img), 1), round(black_level(0.2 + 0.8 * img), 1)
        (5.1, 55.1)
    """
    return float(np.percentile(_smooth_luma(y, 2.0), q) * 255.0)


def local_contrast(y: np.ndarray, window: int = 15) -> float:
    """Mean local standard deviation of smoothed luma in ``window`` x ``window`` boxes, in 8-bit levels.

    The 1 px blur keeps grain from counting as contrast; flat, milky output scores low against its reference.

    Example:
        >>> r = np.random.default_rng(0)
        >>> img = r.uniform(0, 1, (8, 8, 1)).repeat(8, 0).repeat(8, 1).repeat(3, 2).astype(np.float32)
        >>> local_contrast(0.5 * img) / local_contrast(img)
        0.5
    """
    lum = _smooth_luma(y, 1.0)
    m = cv2.blur(lum, (window, window))
    var = np.clip(cv2.blur(lum * lum, (window, window)) - m * m, 0.0, None)
    return float(np.sqrt(var).mean() * 255.0)


def picture_metrics(y: np.ndarray, x: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
    """All fault metrics of output ``y`` for input ``x`` (and reference ``ref`` when there is one).

    Keys: ``noise`` (flat-dark grain of ``y``, 8-bit levels), ``clipped``, ``inverted``, ``mean_luma``, ``black``
    (:func:`black_level`), ``contrast`` (:func:`local_contrast`); with ``ref`` also ``chroma_ratio``, ``ab_error``,
    ``ref_noise`` (the reference's own grain in the same mask), ``ref_black`` and ``contrast_ratio`` (output's local
    contrast over the reference's: 1 = as crisp, < 1 flat).
    """
    mask = flat_dark_mask(ref if ref is not None else y)
    out = {"noise": flat_dark_noise(y, mask), "clipped": clipped_share(y, x), "inverted": inverted_share(y, x),
           "mean_luma": float((y @ _LUMA).mean()), "black": black_level(y), "contrast": local_contrast(y)}  # fmt: skip
    if ref is not None:
        ly, lr = lab(y), lab(ref)  # one conversion each for both colour metrics
        out.update(chroma_ratio=_chroma_ratio_of(ly, lr), ab_error=_ab_error_of(ly, lr),
                   ref_noise=flat_dark_noise(ref, mask), ref_black=black_level(ref),
                   contrast_ratio=out["contrast"] / max(local_contrast(ref), 1e-6))  # fmt: skip
    return out
