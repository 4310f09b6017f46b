"""What every frame source yields and what it is: :class:`Frame` and the :class:`Source` interface.

The one module the video readers and writers (:mod:`lle.io.sources`, :mod:`lle.io.av_video`,
:mod:`lle.io.sinks`) all import, so none of them imports another to get these.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Frame", "Source", "bgr_to_i420", "i420_size", "is_i420", "to_bgr"]


def is_i420(image: np.ndarray) -> bool:
    """True for an I420 frame: a 2-D (H*3/2, W) uint8 array (BGR frames are (H, W, 3))."""
    return image.ndim == 2


def i420_size(image: np.ndarray) -> tuple[int, int]:
    """(width, height) of the picture in an I420 array (H*3/2, W)."""
    return image.shape[1], image.shape[0] * 2 // 3


def bgr_to_i420(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """(H, W, 3) BGR uint8 -> ((H'*3/2, W') I420 uint8, (H, W)); odd sizes are edge-padded to even H' x W'.

    BT.601 limited range (OpenCV's conversion, the same as FFmpeg's default for ``yuv420p``).
    """
    import cv2

    h, w = image.shape[:2]
    if h % 2 or w % 2:
        image = cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2YUV_I420), (h, w)


def to_bgr(image: np.ndarray, hw: tuple[int, int] | None = None) -> np.ndarray:
    """A BGR frame as it is, or an I420 frame converted to (H, W, 3) BGR uint8 (cropped to ``hw`` when given)."""
    if not is_i420(image):
        return image
    import cv2

    out = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_YUV2BGR_I420)
    return out if hw is None else np.ascontiguousarray(out[: hw[0], : hw[1]])


@dataclass(slots=True)
class Frame:
    """One frame: ``index`` counts frames read from the source (gaps = dropped), ``name`` names image outputs.

    ``image`` is (H, W, 3) BGR uint8, or (H*3/2, W) I420 uint8 when the source was asked for I420 (see
    :func:`is_i420`).
    """

    index: int
    image: np.ndarray
    name: str
    t_capture: float = 0.0


class Source(abc.ABC):
    """An iterable of frames; a context manager that releases the device or file."""

    live: bool = False
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height)
    total: int | None = None
    description: str = ""
    is_video: bool = False

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def want_i420(self) -> bool:
        """Ask for I420 frames (before iterating); True when the source will deliver them, else it stays BGR.

        Sources whose decoder produces 4:2:0 planes anyway (:class:`lle.io.av_video.AvVideoSource`) then skip the
        colour conversion to BGR.
        """
        return False

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the device or file. Safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
