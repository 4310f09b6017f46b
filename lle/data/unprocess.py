"""Night shots from clean photos through a camera model: unprocess to raw, expose, add sensor noise, re-process.

After Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019). Every step is a pure numpy function
on (H, W, 3) float32 arrays, so each one can be tested on its own; none moves a pixel, so a pair keeps identical
geometry.

Unprocess (sRGB photo -> linear camera RGB):
    inverse tone curve (smoothstep) -> inverse sRGB gamma -> sRGB-to-camera colour matrix -> inverse white balance.
Expose: an exposure cut of ``ev`` stops, with a black-level error (a small offset left after black subtraction).
Sensor noise in camera space: heteroscedastic Gaussian ``var = shot * x + read`` (shot noise grows with the signal;
read noise floor), optionally row noise (readout banding) and the neighbour/colour correlation a demosaic gives.
Re-process with a *different* camera: white balance with an auto-white-balance error, a jittered colour matrix, the
tone curve with probability ``tone_prob`` and a gamma around sRGB's, then 8 bits and optionally JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lle.data.synth import correlate_noise, jpeg_roundtrip, linear_to_srgb, srgb_to_linear

__all__ = [
    "RGB_TO_XYZ", "UnprocessConfig", "UnprocessParams", "XYZ_TO_CAMS", "add_sensor_noise", "apply_ccm",
    "degrade_camera", "inverse_smoothstep", "process", "random_ccm", "sample_camera", "smoothstep", "unprocess",
]  # fmt: skip

RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    np.float32,
)
"""Linear sRGB (D65) to CIE XYZ."""

XYZ_TO_CAMS = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
    ],
    np.float32,
)
"""XYZ-to-camera matrices of four real cameras (the set Brooks et al. sample from)."""


@dataclass(frozen=True, slots=True)
class UnprocessConfig:
    """Ranges the camera-model parameters are drawn from."""

    ev: tuple[float, float] = (0.5, 6.0)
    """Exposure cut in stops."""
    shot_noise: tuple[float, float] = (1e-4, 4e-3)
    """Shot-noise variance factor (log-uniform): ``var = shot * x + read`` in linear units of full scale."""
    read_scatter: float = 0.26
    """Std of log(read) around the camera-typical ``log(read) = 2.18 log(shot) + 1.2``."""
    red_gain: tuple[float, float] = (1.9, 2.4)
    blue_gain: tuple[float, float] = (1.5, 1.9)
    awb_error: float = 0.08
    """Max relative error of the re-processing white balance (red and blue, independently)."""
    ccm_jitter: float = 0.05
    """Max relative change of the re-processing colour matrix's off-diagonal mixing."""
    black_level_error: float = 0.002
    """Max absolute offset left after black-level subtraction (linear units)."""
    row_noise: tuple[float, float] = (0.0, 0.0015)
    noise_blur: tuple[float, float] = (0.0, 0.8)
    chroma_mix: tuple[float, float] = (0.0, 0.4)
    tone_prob: float = 0.7
    """Probability that the re-processing applies the smoothstep tone curve (the unprocessing always inverts it)."""
    srgb_prob: float = 0.5
    """Probability that the re-processing uses the sRGB curve; otherwise a power law drawn from ``gamma``."""
    gamma: tuple[float, float] = (2.0, 2.5)
    jpeg_quality: tuple[int, int] = (70, 95)
    """JPEG quality range after the noise; (0, 0) = none (8-bit PNG-like)."""


@dataclass(frozen=True, slots=True)
class UnprocessParams:
    """One camera draw."""

    ev: float
    rgb2cam: tuple[tuple[float, ...], ...]
    gains: tuple[float, float, float]
    """White-balance gains the unprocessing inverts (camera -> neutral)."""
    shot: float
    read: float
    black_error: float = 0.0
    row_noise: float = 0.0
    noise_blur: float = 0.0
    chroma_mix: float = 0.0
    awb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Re-processing gain error, multiplied onto ``gains``."""
    ccm_mix: float = 1.0
    """Re-processing colour matrix: off-diagonal terms of cam2rgb scaled by this."""
    tone: bool = True
    gamma: float | None = None
    """Re-processing transfer curve: None = sRGB, else the power law ``x ** (1 / gamma)``."""
    jpeg_quality: int = 0


def smoothstep(x: np.ndarray) -> np.ndarray:
    """The global tone curve ``3x^2 - 2x^3`` (a camera's S-curve), on [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return (3.0 * x * x - 2.0 * x * x * x).astype(np.float32)


def inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`smoothstep`.

    Example:
        >>> x = np.linspace(0, 1, 11, dtype=np.float32)
        >>> bool(np.allclose(inverse_smoothstep(smoothstep(x)), x, atol=1e-5))
        True
    """
    y = np.clip(y, 0.0, 1.0)
    return (0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)).astype(np.float32)


def apply_ccm(x: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """Multiply every pixel of (H, W, 3) ``x`` by the 3x3 colour matrix ``ccm`` (out = ccm @ rgb)."""
    m = np.asarray(ccm, np.float32)
    # Nine plane multiply-adds: no BLAS call, whose thread pool would fight the training's own threads.
    return np.stack([x[..., 0] * m[d, 0] + x[..., 1] * m[d, 1] + x[..., 2] * m[d, 2] for d in range(3)], axis=-1)


def random_ccm(rng: np.random.Generator) -> np.ndarray:
    """A random sRGB-to-camera matrix: a convex mix of the cameras in :data:`XYZ_TO_CAMS`, rows normalised to 1.

    Row normalisation keeps white white (``ccm @ 1 = 1``), so white balance stays a separate step.
    """
    w = rng.uniform(1e-8, 1.0, len(XYZ_TO_CAMS))
    xyz2cam = np.tensordot(w / w.sum(), XYZ_TO_CAMS, axes=1)
    rgb2cam = xyz2cam @ RGB_TO_XYZ
    return (rgb2cam / rgb2cam.sum(axis=1, keepdims=True)).astype(np.float32)


def _gamma_encode(x: np.ndarray, gamma: float | None) -> np.ndarray:
    """sRGB's curve for ``None``, else the power law ``x ** (1 / gamma)``."""
    if gamma is None:
        return linear_to_srgb(x)
    return np.power(np.clip(x, 0.0, 1.0), 1.0 / gamma).astype(np.float32)


def unprocess(img: np.ndarray, rgb2cam: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """sRGB photo (H, W, 3) in [0, 1] -> linear camera RGB before white balance, in [0, 1]."""
    lin = srgb_to_linear(inverse_smoothstep(img))
    cam = apply_ccm(lin, rgb2cam)
    return np.clip(cam / np.asarray(gains, np.float32), 0.0, 1.0).astype(np.float32)


def process(raw: np.ndarray, gains: tuple[float, float, float], cam2rgb: np.ndarray, *, tone: bool = True,
            gamma: float | None = None) -> np.ndarray:  # fmt: skip
    """Linear camera RGB -> display RGB in [0, 1]: white balance, colour matrix, gamma, optional tone curve.

    ``gamma``: None = the sRGB curve, else a power law. With ``tone=True``, ``gamma=None`` and ``cam2rgb`` the
    inverse of the unprocessing matrix, this inverts :func:`unprocess` for every pixel that did not clip.
    """
    x = np.clip(raw * np.asarray(gains, np.float32), 0.0, 1.0)
    x = np.clip(apply_ccm(x, cam2rgb), 0.0, 1.0)
    x = _gamma_encode(x, gamma)
    return smoothstep(x) if tone else x


def add_sensor_noise(raw: np.ndarray, shot: float, read: float, rng: np.random.Generator, *, row: float = 0.0,
                     blur: float = 0.0, mix: float = 0.0, black_error: float = 0.0) -> np.ndarray:  # fmt: skip
    """Heteroscedastic sensor noise on linear camera RGB: ``var = shot * x + read``.

    Plus row noise, demosaic-like correlation and a black-level offset. The result is clipped at 0 (a sensor cannot
    go below black) but not rescaled.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> flat = lambda v: np.full((128, 128, 3), v, np.float32)
        >>> stds = [float((add_sensor_noise(flat(v), 1e-3, 1e-6, rng) - v).std()) for v in (0.1, 0.4)]
        >>> bool(stds[1] > 1.8 * stds[0])  # std ~ sqrt(shot * x): 4x the signal, 2x the noise
        True
    """
    sigma = np.sqrt(np.clip(raw, 0.0, None) * shot + read).astype(np.float32)
    noise = rng.standard_normal(raw.shape, dtype=np.float32) * sigma
    noise = correlate_noise(noise, blur, mix)
    if row > 0:
        noise += rng.normal(0.0, row, size=(raw.shape[0], 1, 1)).astype(np.float32)
    return np.clip(raw + noise + np.float32(black_error), 0.0, None).astype(np.float32)


def sample_camera(cfg: UnprocessConfig, rng: np.random.Generator) -> UnprocessParams:
    """Draw one camera model from ``cfg``'s ranges."""
    lo, hi = np.log(cfg.shot_noise[0]), np.log(cfg.shot_noise[1])
    log_shot = rng.uniform(lo, hi)
    read = float(np.exp(2.18 * log_shot + 1.20 + rng.normal(0.0, cfg.read_scatter)))
    awb = 1.0 + rng.uniform(-cfg.awb_error, cfg.awb_error, size=2)
    jq = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)) if cfg.jpeg_quality[1] else 0
    return UnprocessParams(
        ev=float(rng.uniform(*cfg.ev)),
        rgb2cam=tuple(tuple(float(v) for v in row) for row in random_ccm(rng)),
        gains=(float(rng.uniform(*cfg.red_gain)), 1.0, float(rng.uniform(*cfg.blue_gain))),
        shot=float(np.exp(log_shot)),
        read=read,
        black_error=float(rng.uniform(-cfg.black_level_error, cfg.black_level_error)),
        row_noise=float(rng.uniform(*cfg.row_noise)),
        noise_blur=float(rng.uniform(*cfg.noise_blur)),
        chroma_mix=float(rng.uniform(*cfg.chroma_mix)),
        awb=(float(awb[0]), 1.0, float(awb[1])),
        ccm_mix=float(1.0 + rng.uniform(-cfg.ccm_jitter, cfg.ccm_jitter)),
        tone=bool(rng.uniform() < cfg.tone_prob),
        gamma=None if rng.uniform() < cfg.srgb_prob else float(rng.uniform(*cfg.gamma)),
        jpeg_quality=jq,
    )


def _inverse3(m: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 matrix by its adjugate (no LAPACK call for a 3x3)."""
    a = np.asarray(m, np.float64)
    adj = np.array([[a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1], a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2],
                     a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]],
                    [a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2], a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0],
                     a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]],
                    [a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0], a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1],
                     a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]]])  # fmt: skip
    return (adj / (a[0] @ adj[:, 0])).astype(np.float32)


def _mix_off_diagonal(m: np.ndarray, scale: float) -> np.ndarray:
    """Scale a colour matrix's off-diagonal terms, then renormalise rows so white stays white."""
    d = np.diag(np.diag(m))
    out = d + scale * (m - d)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def degrade_camera(img: np.ndarray, p: UnprocessParams, rng: np.random.Generator) -> np.ndarray:
    """A clean sRGB photo (H, W, 3) in [0, 1] -> the night shot of camera ``p``: same shape, range and geometry."""
    rgb2cam = np.asarray(p.rgb2cam, np.float32)
    raw = unprocess(img, rgb2cam, p.gains) * np.float32(2.0**-p.ev)
    noisy = add_sensor_noise(raw, p.shot, p.read, rng, row=p.row_noise, blur=p.noise_blur, mix=p.chroma_mix,
                             black_error=p.black_error)  # fmt: skip
    gains = tuple(g * e for g, e in zip(p.gains, p.awb, strict=True))
    cam2rgb = _mix_off_diagonal(_inverse3(rgb2cam), p.ccm_mix)
    out = process(noisy, gains, cam2rgb, tone=p.tone, gamma=p.gamma)  # type: ignore[arg-type]
    if p.jpeg_quality > 0:
        return jpeg_roundtrip(out, p.jpeg_quality)
    return (np.round(out * 255.0) / 255.0).astype(np.float32)
