"""Benchmark inputs and the frame <-> tensor conversions that are timed as pre/post-processing.

Test frames are fixed: your own images (``--frames DIR``), else scikit-image's sample photos (when scikit-image is
installed), else a seeded synthetic scene; resized to the benchmark size and (optionally) darkened like a low-light
capture, as uint8 HWC RGB. The default INT8 calibration set is cut from the same scikit-image photos, so for an
unbiased INT8 accuracy figure pass held-out images with ``--frames``.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import cv2
import numpy as np

from lle.errors import InputError
from lle.pipeline import pad_to_multiple, unpad
from lle.psnr import psnr

__all__ = ["is_black", "make_frames", "parse_size", "postprocess", "preprocess", "psnr"]

_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> (width, height).

    Raises:
        ValueError: not two positive integers joined by ``x``.

    Example:
        >>> parse_size("640x360")
        (640, 360)
    """
    w, sep, h = text.strip().lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 1 or int(h) < 1:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 1280x720)")
    return int(w), int(h)


def _synthetic(h: int, w: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = r.uniform(2, 12), r.uniform(2, 12), r.uniform(0, 2 * math.pi)
        img[..., c] = 0.5 + 0.35 * np.sin(xx / w * fx + ph) * np.cos(yy / h * fy)
    for _ in range(12):  # a few hard-edged objects, so the output has structure at every scale
        x0, y0 = int(r.integers(0, w)), int(r.integers(0, h))
        cv2.rectangle(img, (x0, y0), (x0 + w // 8, y0 + h // 8), tuple(float(v) for v in r.uniform(0, 1, 3)), -1)
    return img


@functools.lru_cache(maxsize=len(_SAMPLES))
def _sample_photo(i: int) -> np.ndarray | None:
    try:
        from skimage import data
    except ImportError:
        return None
    try:
        img = getattr(data, _SAMPLES[i % len(_SAMPLES)])()
    except Exception:  # noqa: BLE001  (a sample that needs a download is skipped; synthetic frames replace it)
        return None
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] < 3:
        return None
    return img[..., :3].astype(np.float32) / 255.0


def _read_frames(folder: Path) -> list[np.ndarray]:
    from lle.io.image import find_images, read_image

    paths = find_images(folder) if folder.is_dir() else []
    if not paths:
        raise InputError(f"no images in test-frame folder {folder}", hint="--frames DIR with .png/.jpg images")
    return [read_image(p)[0] for p in paths]


def make_frames(
    width: int, height: int, count: int = 3, *, seed: int = 0, photos: bool = True, source: Path | None = None,
    darken: bool = True,
) -> list[np.ndarray]:  # fmt: skip
    """``count`` dark test frames, (H, W, 3) uint8 RGB, deterministic for a given size and seed.

    Each frame is an image of ``source`` (a folder, cycled in name order), else a scikit-image sample photo, else a
    synthetic scene, resized to ``width`` x ``height``. With ``darken`` it is darkened like a low-light capture:
    gamma 1.4, a random exposure in [0.08, 0.25] and Gaussian read noise (sigma 1.5 / 255).

    Raises:
        InputError: ``source`` holds no readable image.

    Example:
        >>> f = make_frames(64, 48, 2, photos=False)
        >>> len(f), f[0].shape, f[0].dtype
        (2, (48, 64, 3), dtype('uint8'))
    """
    r = np.random.default_rng(seed)
    own = _read_frames(source) if source is not None else []
    out = []
    for i in range(count):
        img = own[i % len(own)] if own else _sample_photo(i) if photos else None
        if img is None:
            img = _synthetic(height, width, seed + i)
        else:
            interp = cv2.INTER_AREA if img.shape[1] > width else cv2.INTER_LINEAR
            img = cv2.resize(img, (width, height), interpolation=interp)
        if darken:
            gain = np.float32(r.uniform(0.08, 0.25) * 255.0)
            noise = r.standard_normal(img.shape, dtype=np.float32) * np.float32(1.5)
            img = np.power(np.clip(img, 0, 1), np.float32(1.4)) * gain + noise + np.float32(0.5)
        else:
            img = img * np.float32(255.0) + np.float32(0.5)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def preprocess(frames: list[np.ndarray], multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 (H, W, 3) frames -> padded (N, 3, H', W') float32 in [0, 1] and the original (H, W)."""
    x = np.stack(frames).transpose(0, 3, 1, 2).astype(np.float32)
    x *= np.float32(1.0 / 255.0)
    return pad_to_multiple(x, multiple)


def postprocess(y: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(N, 3, H', W') float -> (N, H, W, 3) uint8: crop the padding, clip, round."""
    y = np.clip(unpad(y, hw), 0.0, 1.0)  # clip first: convertScaleAbs would fold negatives back up
    # One OpenCV pass per plane (scale, round, saturate) then an interleave: ~1.4x faster than the numpy chain.
    return np.stack([cv2.merge([cv2.convertScaleAbs(y[n, c], alpha=255.0) for c in range(3)]) for n in range(len(y))])


def is_black(x: np.ndarray, ref: np.ndarray) -> bool:
    """True when ``x`` is (nearly) all black while ``ref`` is not: the classic FP16 overflow/underflow symptom.

    Example:
        >>> is_black(np.zeros((2, 2)), np.full((2, 2), 0.5)), is_black(np.full((2, 2), 0.5), np.full((2, 2), 0.5))
        (True, False)
    """
    ref_mean = float(np.mean(ref))
    return ref_mean > 0 and float(np.nanmean(x)) < 0.02 * ref_mean
