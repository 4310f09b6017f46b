"""Paired augmentations: identical geometry for the low and reference images; exposure jitter on the input only."""

from __future__ import annotations

import numpy as np

__all__ = ["paired_augment", "paired_crop", "paired_flip_rot"]


def paired_crop(a: np.ndarray, b: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Same random ``size`` x ``size`` crop of two (H, W, C) arrays of equal H, W (edge-padded if smaller)."""
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"paired images differ in size: {a.shape[:2]} vs {b.shape[:2]}")
    h, w = a.shape[:2]
    if h < size or w < size:
        pad = ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0))
        a, b = np.pad(a, pad, mode="edge"), np.pad(b, pad, mode="edge")
        h, w = a.shape[:2]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return a[y : y + size, x : x + size], b[y : y + size, x : x + size]


def paired_flip_rot(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Same random horizontal flip and 90-degree rotation of two (H, W, C) arrays."""
    k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    if flip:
        a, b = a[:, ::-1], b[:, ::-1]
    return np.rot90(a, k), np.rot90(b, k)


def paired_augment(
    low: np.ndarray, ref: np.ndarray, size: int, rng: np.random.Generator, *, exposure_jitter: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Crop, flip, rotate both; scale the low image's brightness by 2**U(-j, j) stops (reference untouched)."""
    low, ref = paired_crop(low, ref, size, rng)
    low, ref = paired_flip_rot(low, ref, rng)
    low = np.ascontiguousarray(low, dtype=np.float32)
    if exposure_jitter > 0:
        low = np.clip(low * np.float32(2.0 ** rng.uniform(-exposure_jitter, exposure_jitter)), 0.0, 1.0)
    return low, np.ascontiguousarray(ref, dtype=np.float32)
