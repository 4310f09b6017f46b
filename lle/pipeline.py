"""Shared pre/post-processing: pad to the model's size multiple -> infer -> crop back -> clip.

Used by ``lle enhance``, ``lle run`` and ``lle bench`` so every path treats borders and ranges the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["Enhancer", "cap_knots", "exposure_limit", "pad_to_multiple", "tile_windows", "unpad"]

Infer = Callable[[np.ndarray], np.ndarray]
ReadWindow = Callable[[int, int, int, int], np.ndarray]
EmitRows = Callable[[int, int, np.ndarray], None]


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Edge-replicate pad (N, C, H, W) at the bottom/right so H and W are multiples of ``multiple``.

    Replication (not reflection) works for any size, including 1x1. Returns the padded array and the original (H, W).

    Example:
        >>> p, hw = pad_to_multiple(np.zeros((1, 3, 17, 9), np.float32), 16)
        >>> p.shape, hw
        ((1, 3, 32, 16), (17, 9))
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
    return x, (h, w)


def unpad(y: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Crop (N, C, H', W') back to the original (H, W)."""
    return y[..., : hw[0], : hw[1]]


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_HELD_TOL = 2e-3  # a mean output luma this close to its exposure limit counts as held back by the cap
_Scene = tuple[np.ndarray, np.ndarray, np.ndarray]  # preview input luma, output luma, held back (per image)


def cap_knots(cap: Sequence[float]) -> list[tuple[float, float]]:
    """``exposure_cap = [m_a, cap_a, m_b, cap_b, ...]`` -> the cap curve's knots, with (0, 1) and (1, 1) at the ends.

    Shared by the model (:func:`lle.models.unet.exposure_cap_at`) and :func:`exposure_limit`; torch-free.
    """
    return [(0.0, 1.0), *zip(cap[0::2], cap[1::2], strict=True), (1.0, 1.0)]


def exposure_limit(m: np.ndarray | float, *cap: float) -> np.ndarray:
    """NumPy twin of :func:`lle.models.unet.exposure_cap_at`.

    The brightest mean output luma a quality model with ``exposure_cap = [m_a, cap_a, ...]`` lets through for an
    input of mean luma ``m``: straight lines through the knots, from 1 at black to 1 at white.
    """
    knots = cap_knots(cap)
    return np.interp(np.asarray(m, np.float64), [k[0] for k in knots], [k[1] for k in knots])


def _mean_luma(x: np.ndarray) -> np.ndarray:
    """Per-image mean luma of (N, 3, H, W), shape (N,)."""
    return np.einsum("nchw,c->n", x, _LUMA, dtype=np.float64) / (x.shape[2] * x.shape[3])


def tile_windows(size: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Start/stop pairs covering [0, size) with windows of ``tile`` overlapping by at least ``overlap``."""
    if size <= tile:
        return [(0, size)]
    step = tile - overlap
    starts = list(range(0, size - tile, step)) + [size - tile]
    return [(s, s + tile) for s in starts]


def _ramp(n: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    w = np.ones(n, np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not first:
            w[:overlap] = r
        if not last:
            w[-overlap:] = r[::-1]
    return w


class Enhancer:
    """Wraps a raw inference function with padding, tiling, cropping and clipping.

    ``infer`` maps (N, 3, H, W) float32 in [0, 1] with H, W multiples of ``size_multiple`` to the same shape.
    """

    def __init__(self, infer: Infer, size_multiple: int, *, tile: int | None = None, overlap: int = 32,
                 exposure_cap: tuple[float, ...] | None = None) -> None:  # fmt: skip
        if tile is not None and (tile < 2 * overlap or tile % size_multiple):
            raise ValueError(f"tile={tile} must be a multiple of {size_multiple} and >= 2*overlap ({2 * overlap})")
        self.infer, self.size_multiple, self.tile, self.overlap = infer, size_multiple, tile, overlap
        self.bytes_per_px = 0  # the model's memory per input pixel, when known (sizes tiles to a memory budget)
        self.exposure_cap = exposure_cap
        """The model's scene-adaptive exposure (quality card ``arch.exposure_cap``). The model applies it to what
        it sees, so tiles would each get their own exposure; with this set, tiling keeps the whole image's."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Enhance (N, 3, H, W) float32 in [0, 1] of any H, W >= 1. Returns the same shape, clipped to [0, 1]."""
        h, w = batch.shape[-2:]
        if self.tile is None or (h <= self.tile and w <= self.tile):
            out = self._run(batch)
        else:
            out = self._tiled(batch)
        return np.clip(out, 0.0, 1.0, out=out)

    def stream(self, h: int, w: int, read: ReadWindow, emit: EmitRows, *, tile: int | None = None) -> None:
        """Enhance an H x W image tile by tile, holding at most one band of ``tile`` rows of float32 output.

        ``read(y0, y1, x0, x1)`` returns that window of the input as (1, 3, y1-y0, x1-x0) float32 in [0, 1];
        ``emit(y0, y1, rows)`` receives finished rows (1, 3, y1-y0, W) float32 in [0, 1], top to bottom, each row
        once. The result equals ``self(image)`` with tiles of ``tile`` (default: this Enhancer's; None = whole).
        Tile weights are separable, so the blend normalisation is an outer product of two 1-D sums.
        """
        size = tile or self.tile or max(h, w)
        overlap = self.overlap if size == self.tile else min(self.overlap, size // 4)
        rows, cols = tile_windows(h, size, overlap), tile_windows(w, size, overlap)
        scene = self._scene(read, h, w, size) if len(rows) * len(cols) > 1 else None
        wys = [_ramp(b - a, overlap, i == 0, i == len(rows) - 1) for i, (a, b) in enumerate(rows)]
        wxs = [_ramp(b - a, overlap, j == 0, j == len(cols) - 1) for j, (a, b) in enumerate(cols)]
        ny, nx = np.zeros(h, np.float32), np.zeros(w, np.float32)
        for (a, b), wy in zip(rows, wys, strict=True):
            ny[a:b] += wy
        for (a, b), wx in zip(cols, wxs, strict=True):
            nx[a:b] += wx
        acc: np.ndarray | None = None
        acc_y0 = 0
        for (y0, y1), wy in zip(rows, wys, strict=True):
            band = np.zeros((1, 3, y1 - y0, w), np.float32)
            if acc is not None:
                if y0 > acc_y0:
                    emit(acc_y0, y0, self._finish(acc[:, :, : y0 - acc_y0], ny[acc_y0:y0], nx))
                keep = acc[:, :, y0 - acc_y0 :]
                band[:, :, : keep.shape[2]] = keep
            acc, acc_y0 = band, y0
            for (x0, x1), wx in zip(cols, wxs, strict=True):
                out = self._tile(read(y0, y1, x0, x1), scene, y0, x0, (h, w))
                out *= wy[:, None] * wx[None, :]
                acc[:, :, :, x0:x1] += out
        if acc is not None:
            emit(acc_y0, h, self._finish(acc, ny[acc_y0:h], nx))

    @staticmethod
    def _finish(acc: np.ndarray, ny: np.ndarray, nx: np.ndarray) -> np.ndarray:
        out = acc / (ny[:, None] * nx[None, :])
        return np.clip(out, 0.0, 1.0, out=out)

    def run_window(self, x: np.ndarray) -> np.ndarray:
        """Pad (N, 3, H, W) float32 to the size multiple, infer and crop back; not clipped."""
        return self._run(x)

    def _scene(self, read: ReadWindow, h: int, w: int, size: int) -> _Scene | None:
        """The whole image's exposure, for tiles: a preview's input and output luma, and whether the cap held it.

        The preview (one per image of the batch) fits one tile: k x k block means, read band by band (one tile's
        rows of floats at a time), then resized to the size multiple so the model sees exactly the preview, without
        padding. None without an exposure cap.
        """
        if self.exposure_cap is None:
            return None
        import cv2

        k = -(-max(h, w) // size)
        hs, ws = max(1, h // k), max(1, w // k)
        step = k * max(1, size // k)
        bands = []
        for y0 in range(0, hs * k, step):
            y1 = min(y0 + step, hs * k)
            win = read(y0, y1, 0, ws * k)
            bands.append(win.reshape(win.shape[0], 3, (y1 - y0) // k, k, ws, k).mean((3, 5), dtype=np.float32))
        small = np.concatenate(bands, axis=2)
        m = self.size_multiple
        hp, wp = (max(m, n - n % m) for n in (hs, ws))
        if (hp, wp) != (hs, ws):
            small = np.stack([cv2.resize(np.ascontiguousarray(im.transpose(1, 2, 0)), (wp, hp),
                                         interpolation=cv2.INTER_AREA).transpose(2, 0, 1) for im in small])
        out = np.clip(self._run(small), 0.0, 1.0)
        lx, ly = np.einsum("nchw,c->nhw", small, _LUMA), np.einsum("nchw,c->nhw", out, _LUMA)
        m_in, m_out = lx.mean((1, 2), dtype=np.float64), ly.mean((1, 2), dtype=np.float64)
        return lx, ly, m_out >= exposure_limit(m_in, *self.exposure_cap) - _HELD_TOL

    def _tile(self, x: np.ndarray, scene: _Scene | None, y0: int, x0: int, hw: tuple[int, int]) -> np.ndarray:
        """One tile's output (not clipped), with the whole image's exposure.

        With an exposure cap, the tile's lift ``y - x`` is rescaled so that its mean equals the whole-image
        preview's over the same area, whenever the cap held back the preview or the tile: the model capped each on
        its own, and the scene's decision is the whole image's.
        """
        y = self._run(x)
        if scene is None or self.exposure_cap is None:
            return y
        lx, ly, preview_held = scene
        (h, w), (th, tw), (hp, wp) = hw, x.shape[-2:], lx.shape[1:]
        a, b = min(y0 * hp // h, hp - 1), min(x0 * wp // w, wp - 1)
        c, d = max(a + 1, -(-(y0 + th) * hp // h)), max(b + 1, -(-(x0 + tw) * wp // w))
        tm_in, tm_out = _mean_luma(x), _mean_luma(np.clip(y, 0.0, 1.0))
        held = preview_held | (tm_out >= exposure_limit(tm_in, *self.exposure_cap) - _HELD_TOL)
        want = ly[:, a:c, b:d].mean((1, 2), dtype=np.float64) - lx[:, a:c, b:d].mean((1, 2), dtype=np.float64)
        got = tm_out - tm_in
        s = np.where(held & (got > 1e-4), np.clip(want / np.maximum(got, 1e-4), 0.0, 4.0), 1.0).astype(np.float32)
        if np.all(s == 1.0):
            return y
        return x + s[:, None, None, None] * (np.clip(y, 0.0, 1.0) - x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        padded, hw = pad_to_multiple(np.ascontiguousarray(x, dtype=np.float32), self.size_multiple)
        return np.array(unpad(self.infer(padded), hw), dtype=np.float32, copy=True)

    def _tiled(self, x: np.ndarray) -> np.ndarray:
        assert self.tile is not None
        h, w = x.shape[-2:]
        out = np.zeros(x.shape, np.float32)
        norm = np.zeros((h, w), np.float32)
        rows, cols = tile_windows(h, self.tile, self.overlap), tile_windows(w, self.tile, self.overlap)
        scene = self._scene(lambda a, b, c, d: x[..., a:b, c:d], h, w, self.tile) if len(rows) * len(cols) > 1 else None
        for i, (y0, y1) in enumerate(rows):
            wy = _ramp(y1 - y0, self.overlap, i == 0, i == len(rows) - 1)
            for j, (x0, x1) in enumerate(cols):
                wx = _ramp(x1 - x0, self.overlap, j == 0, j == len(cols) - 1)
                wgt = wy[:, None] * wx[None, :]
                out[..., y0:y1, x0:x1] += self._tile(x[..., y0:y1, x0:x1], scene, y0, x0, (h, w)) * wgt
                norm[y0:y1, x0:x1] += wgt
        return out / norm
