"""Physically motivated synthetic low light, as pure numpy functions on (H, W, 3) float32 sRGB in [0, 1].

Pipeline: sRGB -> linear, exposure cut by ``ev`` stops, white-balance shift, Poisson shot noise plus Gaussian read
noise in linear units (like a sensor at high ISO), optionally row noise and the spatial/colour correlation a demosaic
gives the noise (chroma blotches rather than independent per-pixel speckle), back to sRGB, 8-bit quantisation, and
optionally JPEG compression after the noise (as a camera or phone stores a night shot).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "DegradeParams", "SynthConfig", "correlate_noise", "degrade", "jpeg_roundtrip", "linear_to_srgb", "sample_params",
    "srgb_to_linear", "synthesize",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class SynthConfig:
    """Ranges the degradation parameters are drawn from (uniformly; ISO gain log-uniformly)."""

    ev: tuple[float, float] = (1.5, 5.0)
    """Exposure reduction in stops."""
    wb_shift: float = 0.15
    """Max relative change of the red and blue channel gains (colour-temperature shift)."""
    photons_at_white: tuple[float, float] = (150.0, 4000.0)
    """Full-scale photon count before the exposure cut; fewer photons = higher ISO = more shot noise."""
    read_noise: tuple[float, float] = (0.0005, 0.004)
    """Std of Gaussian read noise in linear units of full scale."""
    quantize: bool = True
    noise_blur: tuple[float, float] = (0.0, 0.0)
    """Gaussian sigma (pixels) of the blur applied to the noise field: the neighbour correlation of demosaiced noise."""
    chroma_mix: tuple[float, float] = (0.0, 0.0)
    """Share of each channel's noise replaced by the other channels' (0 = independent; demosaic correlates them)."""
    row_noise: tuple[float, float] = (0.0, 0.0)
    """Std of a per-row offset in linear units (readout banding)."""
    jpeg_quality: tuple[int, int] = (0, 0)
    """JPEG quality range applied after the noise; (0, 0) = no JPEG."""


@dataclass(frozen=True, slots=True)
class DegradeParams:
    """One draw of degradation parameters."""

    ev: float
    wb: tuple[float, float, float]
    photons_at_white: float
    read_noise: float
    noise_blur: float = 0.0
    chroma_mix: float = 0.0
    row_noise: float = 0.0
    jpeg_quality: int = 0


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer function (IEC 61966-2-1)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function (IEC 61966-2-1)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def sample_params(cfg: SynthConfig, rng: np.random.Generator) -> DegradeParams:
    """Draw one parameter set from ``cfg``'s ranges."""
    r, b = 1.0 + rng.uniform(-cfg.wb_shift, cfg.wb_shift, size=2)
    lo, hi = np.log(cfg.photons_at_white[0]), np.log(cfg.photons_at_white[1])
    return DegradeParams(
        ev=float(rng.uniform(*cfg.ev)),
        wb=(float(r), 1.0, float(b)),
        photons_at_white=float(np.exp(rng.uniform(lo, hi))),
        read_noise=float(rng.uniform(*cfg.read_noise)),
        noise_blur=float(rng.uniform(*cfg.noise_blur)),
        chroma_mix=float(rng.uniform(*cfg.chroma_mix)),
        row_noise=float(rng.uniform(*cfg.row_noise)),
        jpeg_quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)) if cfg.jpeg_quality[1] else 0,
    )


def correlate_noise(noise: np.ndarray, blur: float, mix: float) -> np.ndarray:
    """Blur an (H, W, 3) noise field by ``blur`` pixels and mix ``mix`` of each channel with the others' mean.

    The result is rescaled to the input's per-channel std, so only the correlation changes, not the noise level.

    Example:
        >>> n = np.random.default_rng(0).normal(size=(64, 64, 3)).astype(np.float32)
        >>> c = correlate_noise(n, 1.0, 0.5)
        >>> bool(abs(c.std() - n.std()) < 0.05), bool(np.corrcoef(c[..., 0].ravel(), c[..., 1].ravel())[0, 1] > 0.3)
        (True, True)
    """
    if blur <= 0 and mix <= 0:
        return noise
    std0 = noise.std(axis=(0, 1), keepdims=True) + 1e-12
    out = cv2.GaussianBlur(noise, (0, 0), blur) if blur > 0 else noise
    if mix > 0:
        out = (1.0 - mix) * out + mix * out.mean(axis=2, keepdims=True)
    return (out * (std0 / (out.std(axis=(0, 1), keepdims=True) + 1e-12))).astype(np.float32)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode (H, W, 3) float RGB in [0, 1] as JPEG at ``quality`` and decode it again (8-bit)."""
    u8 = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding at quality {quality} failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if dec is None:
        raise ValueError(f"JPEG decoding at quality {quality} failed")
    return (dec[..., ::-1].astype(np.float32) / 255.0).copy()


def degrade(img: np.ndarray, p: DegradeParams, rng: np.random.Generator, *, quantize: bool = True) -> np.ndarray:
    """Apply one degradation to (H, W, 3) sRGB float32 in [0, 1]; returns the same shape and range."""
    lin = srgb_to_linear(img) * np.float32(2.0**-p.ev) * np.asarray(p.wb, np.float32)
    lam = np.clip(lin, 0.0, None) * p.photons_at_white
    noise = rng.poisson(lam).astype(np.float32) / p.photons_at_white - np.clip(lin, 0.0, None)
    noise += rng.normal(0.0, p.read_noise, size=lin.shape).astype(np.float32)
    noise = correlate_noise(noise, p.noise_blur, p.chroma_mix)
    if p.row_noise > 0:
        noise += rng.normal(0.0, p.row_noise, size=(lin.shape[0], 1, 1)).astype(np.float32)
    out = linear_to_srgb(np.clip(lin, 0.0, None) + noise)
    if p.jpeg_quality > 0:
        out = jpeg_roundtrip(out, p.jpeg_quality)
    elif quantize:
        out = np.round(out * 255.0) / 255.0
    return out.astype(np.float32)


def synthesize(img: np.ndarray, cfg: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, DegradeParams]:
    """Draw parameters and degrade ``img``. Returns (low-light image, parameters)."""
    p = sample_params(cfg, rng)
    return degrade(img, p, rng, quantize=cfg.quantize), p
