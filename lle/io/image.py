"""Image files <-> arrays. On disk: 8/16-bit PNG/TIFF, JPEG, BMP, WebP. In memory: HWC RGB float32 in [0, 1]."""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lle._atomic import atomic_write_bytes
from lle.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageHeader",
    "decode_planes",
    "find_images",
    "probe_image",
    "write_error",
    "encode_image",
    "from_nchw",
    "is_image",
    "read_image",
    "read_layers",
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


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What a file's header says before any pixel is decoded. ``channels`` counts stored planes (alpha included)."""

    width: int
    height: int
    channels: int
    depth: int


_PNG_CHANNELS = {0: 1, 2: 3, 3: 0, 4: 2, 6: 4}  # colour type -> planes; 0: palette, alpha known only once decoded
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def probe_image(path: Path) -> ImageHeader | None:
    """Size, planes and bit depth of a PNG or JPEG from its header (a few bytes read); ``None`` for other formats.

    ``channels`` is 0 for a palette PNG (it may carry transparency); :func:`decode_planes` finds out.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(33)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                w, h, bits, ctype = struct.unpack(">IIBB", head[16:26])
                return ImageHeader(w, h, _PNG_CHANNELS.get(ctype, 3), 16 if bits == 16 else 8)
            if head[:2] != b"\xff\xd8":
                return None
            f.seek(2)
            while True:
                marker = f.read(4)
                if len(marker) < 4 or marker[0] != 0xFF:
                    return None
                seg = struct.unpack(">H", marker[2:])[0]
                if marker[1] in _JPEG_SOF:
                    bits, h, w, comps = struct.unpack(">BHHB", f.read(6))
                    return ImageHeader(w, h, comps if comps in (1, 3) else 3, 8)
                f.seek(seg - 2, 1)
    except (OSError, struct.error):
        return None


def write_error(path: Path, err: OSError) -> InputError:
    """The one-line :class:`InputError` for a failed write of ``path``, with the fix that fits the cause."""
    hints = {
        errno.ENOSPC: f"the disk holding {path.parent} is full: free some space or choose another -o/--output",
        errno.EDQUOT: f"your disk quota for {path.parent} is used up: free some space or choose another -o/--output",
        errno.EFBIG: "the file is larger than this file system or your limits allow: choose another -o/--output",
        errno.EROFS: f"{path.parent} is on a read-only file system: choose another -o/--output",
    }
    reason = err.strerror or str(err)
    return InputError(f"cannot write {path}: {reason}", hint=hints.get(err.errno or 0, "choose a writable -o/--output"))


def _file_bytes(path: Path) -> np.ndarray:
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from err


def _decode_colour(data: np.ndarray, path: Path) -> np.ndarray:
    """Decode to (H, W, 3) BGR at the file's bit depth, EXIF orientation applied."""
    img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if img is None:
        raise InputError(f"not a readable image: {path}", hint=f"supported: {', '.join(sorted(IMAGE_SUFFIXES))}")
    return img


def read_image(path: Path) -> tuple[np.ndarray, int]:
    """Read an image as (H, W, 3) RGB float32 in [0, 1] and its bit depth (8 or 16).

    EXIF orientation is applied; alpha is dropped; grey images become 3-channel (:func:`read_layers` keeps both).

    Raises:
        InputError: the file is missing or not a decodable image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input not found: {path}")
    img = _decode_colour(_file_bytes(path), path)
    if img.dtype == np.uint16:
        depth, scale = 16, 65535.0
    elif img.dtype == np.uint8:
        depth, scale = 8, 255.0
    else:
        raise InputError(f"unsupported pixel type {img.dtype} in {path}", hint="use 8- or 16-bit integer images")
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) / scale, depth


def decode_planes(path: Path) -> tuple[np.ndarray, int, np.ndarray | None, bool]:
    """Decode an image as stored, without float copies: ``(bgr, depth, alpha, grey)``.

    ``bgr`` is (H, W, 3) uint8 or uint16 with EXIF orientation applied, ``alpha`` the (H, W) alpha plane of the same
    dtype (or None), ``grey`` True for single-channel files. The file is decoded a second time (unrotated, all
    planes) only when its header says it may hold alpha, so a large RGB photo costs one decoded copy.

    Raises:
        InputError: the file is missing or not a decodable 8/16-bit image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input not found: {path}")
    header = probe_image(path)
    data = _file_bytes(path)
    bgr = _decode_colour(data, path)
    if bgr.dtype not in (np.uint8, np.uint16):
        raise InputError(f"unsupported pixel type {bgr.dtype} in {path}", hint="use 8- or 16-bit integer images")
    depth = 16 if bgr.dtype == np.uint16 else 8
    if header is not None and header.channels in (1, 3):
        return bgr, depth, None, header.channels == 1
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    del data
    if raw is None or raw.shape[:2] != bgr.shape[:2]:
        return bgr, depth, None, False
    grey = raw.ndim == 2 or raw.shape[2] == 1
    alpha = None
    if raw.ndim == 3 and raw.shape[2] in (2, 4) and raw.dtype in (np.uint8, np.uint16):
        alpha = np.ascontiguousarray(raw[..., -1])
        grey = raw.shape[2] == 2
    return bgr, depth, alpha, grey


def read_layers(path: Path) -> tuple[np.ndarray, int, np.ndarray | None, bool]:
    """:func:`read_image` plus what it drops: ``(rgb, depth, alpha (H, W) float32 in [0, 1] or None, grey)``.

    ``grey`` is True for single-channel files (their ``rgb`` has three equal channels). Alpha is returned when the
    file has an alpha channel and no EXIF rotation changed its shape.

    Raises:
        InputError: the file is missing or not a decodable image.
    """
    rgb, depth = read_image(path)
    raw = cv2.imdecode(np.fromfile(Path(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.shape[:2] != rgb.shape[:2]:
        return rgb, depth, None, False
    grey = raw.ndim == 2 or raw.shape[2] == 1
    alpha = None
    if raw.ndim == 3 and raw.shape[2] in (2, 4) and raw.dtype in (np.uint8, np.uint16):
        alpha = raw[..., -1].astype(np.float32) / (65535.0 if raw.dtype == np.uint16 else 255.0)
        grey = raw.shape[2] == 2
    return rgb, depth, alpha, grey


def encode_image(
    img: np.ndarray, suffix: str, depth: int = 8, *, alpha: np.ndarray | None = None, grey: bool = False
) -> bytes:
    """Encode (H, W, 3) RGB float in [0, 1] to the bytes of a ``suffix`` file (16-bit only for PNG/TIFF).

    ``grey`` writes one luma channel; ``alpha`` ((H, W) in [0, 1]) is appended where the format has alpha
    (PNG, TIFF, WebP), so greyscale stays greyscale and transparency survives.
    """
    suffix = suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"cannot write {suffix!r} images", hint=f"use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    x = np.clip(img, 0.0, 1.0)
    planes = cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2GRAY)[..., None] if grey else x[..., ::-1]
    if alpha is not None and suffix in {".png", ".tif", ".tiff", ".webp"}:
        planes = np.concatenate([np.repeat(planes, 3, axis=2) if grey else planes, alpha[..., None]], axis=2)
    if depth == 16 and suffix in _SIXTEEN_BIT:
        arr = (planes * 65535.0 + 0.5).astype(np.uint16)
    else:
        arr = (planes * 255.0 + 0.5).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = arr[..., 0]
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in {".jpg", ".jpeg"} else []
    ok, buf = cv2.imencode(suffix, np.ascontiguousarray(arr), params)
    if not ok:
        raise InputError(f"OpenCV could not encode a {suffix} image")
    return buf.tobytes()


def write_image(
    path: Path, img: np.ndarray, depth: int = 8, *, alpha: np.ndarray | None = None, grey: bool = False
) -> None:
    """Write (H, W, 3) RGB float in [0, 1] to ``path`` atomically (temp file + rename); format from the suffix.

    ``alpha``/``grey`` as in :func:`encode_image`.

    Raises:
        InputError: unknown suffix or unwritable destination.
    """
    path = Path(path)
    data = encode_image(img, path.suffix, depth, alpha=alpha, grey=grey)
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        raise write_error(path, err) from err


def to_nchw(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (1, 3, H, W) float32, contiguous."""
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


def from_nchw(x: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) -> (H, W, 3) float32."""
    return np.ascontiguousarray(x[0].transpose(1, 2, 0))
