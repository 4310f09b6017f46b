"""Image files <-> arrays. On disk: 8/16-bit PNG/TIFF, JPEG, BMP, WebP. In memory: HWC RGB float32 in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lle._atomic import atomic_write_bytes
from lle.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "find_images",
    "encode_image",
    "from_nchw",
    "is_image",
    "read_image",
    "to_nchw",
    "write_image",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
_SIXTEEN_BIT = frozenset({".png", ".tif", ".tiff"})


def is_image(path: Path) -> bool:
    """True when ``path`` has an image suffix (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def find_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (hidden files skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image(p) and not p.name.startswith("."))


def read_image(path: Path) -> tuple[np.ndarray, int]:
    """Read an image as (H, W, 3) RGB float32 in [0, 1] and its bit depth (8 or 16).

    EXIF orientation is applied; alpha is dropped; grey images become 3-channel.

    Raises:
        InputError: the file is missing or not a decodable image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input not found: {path}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from err
    img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if img is None:
        raise InputError(f"not a readable image: {path}", hint=f"supported: {', '.join(sorted(IMAGE_SUFFIXES))}")
    if img.dtype == np.uint16:
        depth, scale = 16, 65535.0
    elif img.dtype == np.uint8:
        depth, scale = 8, 255.0
    else:
        raise InputError(f"unsupported pixel type {img.dtype} in {path}", hint="use 8- or 16-bit integer images")
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) / scale, depth


def encode_image(img: np.ndarray, suffix: str, depth: int = 8) -> bytes:
    """Encode (H, W, 3) RGB float in [0, 1] to the bytes of a ``suffix`` file (16-bit only for PNG/TIFF)."""
    suffix = suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"cannot write {suffix!r} images", hint=f"use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    x = np.clip(img, 0.0, 1.0)
    if depth == 16 and suffix in _SIXTEEN_BIT:
        arr = (x * 65535.0 + 0.5).astype(np.uint16)
    else:
        arr = (x * 255.0 + 0.5).astype(np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in {".jpg", ".jpeg"} else []
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise InputError(f"OpenCV could not encode a {suffix} image")
    return buf.tobytes()


def write_image(path: Path, img: np.ndarray, depth: int = 8) -> None:
    """Write (H, W, 3) RGB float in [0, 1] to ``path`` atomically (temp file + rename); format from the suffix.

    Raises:
        InputError: unknown suffix or unwritable destination.
    """
    path = Path(path)
    data = encode_image(img, path.suffix, depth)
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}", hint="choose a writable -o/--output") from err


def to_nchw(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (1, 3, H, W) float32, contiguous."""
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


def from_nchw(x: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) -> (H, W, 3) float32."""
    return np.ascontiguousarray(x[0].transpose(1, 2, 0))
