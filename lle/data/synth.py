"""Physically motivated synthetic low light, as pure numpy functions on (H, W, 3) float32 sRGB in [0, 1].

Pipeline: sRGB -> linear, exposure cut by ``ev`` stops, white-balance shift, Poisson shot noise plus Gaussian read
noise in linear units (like a sensor at high ISO), back to sRGB, 8-bit quantisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DegradeParams", "SynthConfig", "degrade", "linear_to_srgb", "sample_params", "srgb_to_linear", "synthesize"]


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


@dataclass(frozen=True, slots=True)
class DegradeParams:
    """One draw of degradation parameters."""

    ev: float
    wb: tuple[float, float, float]
    photons_at_white: float
    read_noise: float


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
    )


def degrade(img: np.ndarray, p: DegradeParams, rng: np.random.Generator, *, quantize: bool = True) -> np.ndarray:
    """Apply one degradation to (H, W, 3) sRGB float32 in [0, 1]; returns the same shape and range."""
    lin = srgb_to_linear(img) * np.float32(2.0**-p.ev) * np.asarray(p.wb, np.float32)
    lam = np.clip(lin, 0.0, None) * p.photons_at_white
    noisy = rng.poisson(lam).astype(np.float32) / p.photons_at_white
    noisy += rng.normal(0.0, p.read_noise, size=lin.shape).astype(np.float32)
    out = linear_to_srgb(noisy)
    if quantize:
        out = np.round(out * 255.0) / 255.0
    return out.astype(np.float32)


def synthesize(img: np.ndarray, cfg: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, DegradeParams]:
    """Draw parameters and degrade ``img``. Returns (low-light image, parameters)."""
    p = sample_params(cfg, rng)
    return degrade(img, p, rng, quantize=cfg.quantize), p
