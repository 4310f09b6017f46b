"""Temporal stability for video: coefficient smoothing with scene-cut reset, and a flicker metric.

The realtime preset's video graph blends this frame's low-resolution coefficients with the previous ones
(``state_out = alpha * state + (1 - alpha) * coefficients``). :class:`TemporalSmoother` chooses ``alpha`` per frame:
``0`` for the first frame and at scene cuts, ``alpha`` otherwise. A scene cut is a large mean absolute difference
between tiny grey thumbnails of consecutive *input* frames, so noise and small motion never trigger it.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from lle.io.frames import i420_size, is_i420

__all__ = ["TemporalSmoother", "flicker", "flicker_ratio", "thumbnail"]

THUMB_SIZE = (32, 18)  # (width, height): cheap (~0.1 ms at 1080p with INTER_AREA), blind to sensor noise


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 (any channel order), or an (H*3/2, W) I420 frame (its Y plane) -> (18, 32) grey float32."""
    if is_i420(image):
        small = cv2.resize(image[: i420_size(image)[1]], THUMB_SIZE, interpolation=cv2.INTER_AREA)
        return small.astype(np.float32) / 255.0
    small = cv2.resize(image, THUMB_SIZE, interpolation=cv2.INTER_AREA)
    return small.mean(axis=2, dtype=np.float32) / 255.0


class TemporalSmoother:
    """Per-frame ``alpha`` for :meth:`lle.backends.Backend.infer_stateful`.

    Args:
        alpha: blend weight of the previous coefficients on a continuing scene (0 = no smoothing; 0.8-0.9 removes
            most flicker while following lighting changes within a few frames).
        cut_threshold: mean absolute thumbnail difference (in [0, 1]) above which a frame starts a new scene.

    Example:
        >>> s = TemporalSmoother(alpha=0.85)
        >>> dark, bright = np.zeros((48, 64, 3), np.uint8), np.full((48, 64, 3), 200, np.uint8)
        >>> [s.alpha_for(f) for f in (dark, dark, bright)]
        [0.0, 0.85, 0.0]
    """

    def __init__(self, alpha: float = 0.85, cut_threshold: float = 0.1) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha={alpha} must be in [0, 1)")
        self.alpha, self.cut_threshold = alpha, cut_threshold
        self._prev: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        """Forget the previous frame (the next one starts a scene)."""
        self._prev = None

    def alpha_for(self, image: np.ndarray) -> float:
        """``alpha`` for this input frame ((H, W, 3) uint8), updating the scene tracker."""
        thumb = thumbnail(image)
        prev, self._prev = self._prev, thumb
        if prev is None or prev.shape != thumb.shape:
            return 0.0
        if float(np.abs(thumb - prev).mean()) > self.cut_threshold:
            self.cuts += 1
            return 0.0
        return self.alpha


def flicker(frames: Iterable[np.ndarray]) -> float:
    """Relative temporal flicker of a clip: mean absolute frame-to-frame change divided by the mean level.

    Frames are (H, W, C) or (H, W) arrays of one size (any dtype). Dividing by the mean level makes the number
    independent of brightness, so a brightened clip can be compared with its dark input: a pure gain leaves it
    unchanged. Returns 0 for fewer than two frames.

    Example:
        >>> f = [np.full((4, 4), v, np.float32) for v in (0.1, 0.2, 0.1)]
        >>> round(flicker(f), 3)
        0.75
    """
    total, n, level, prev = 0.0, 0, 0.0, None
    for f in frames:
        x = np.asarray(f, np.float32)
        level += float(x.mean())
        if prev is not None:
            total += float(np.abs(x - prev).mean())
            n += 1
        prev = x
    if n == 0:
        return 0.0
    mean_level = level / (n + 1)
    return total / n / mean_level if mean_level > 0 else 0.0


def flicker_ratio(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> float:
    """``flicker(outputs) / flicker(inputs)`` on a static scene: <= 1 means the enhancer adds no flicker.

    Returns ``inf`` when the input has no flicker but the output has, 1.0 when neither has.
    """
    fi, fo = flicker(inputs), flicker(outputs)
    if fi == 0.0:
        return 1.0 if fo == 0.0 else float("inf")
    return fo / fi
