"""One calibration set for every INT8 path, preprocessed exactly as at inference, with runtime adapters.

Images are RGB float32 in [0, 1], resized to cover the deployment resolution, centre-cropped to it and edge-padded to
the model's size multiple (as :func:`lle.pipeline.pad_to_multiple` pads at inference). The choice of images is
seeded and the count fixed, so two exports from the same folder see the same data. Images load lazily: a set at
1280x720 would not fit in memory otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lle.errors import InputError

__all__ = [
    "CalibrationSet",
    "Feed",
    "VIDEO_SUFFIXES",
    "build_calibration_dir",
    "ort_reader",
    "prepare",
    "quadrants",
    "to_nncf_dataset",
]

log = logging.getLogger(__name__)

Feed = Callable[[np.ndarray], dict[str, np.ndarray]]
"""(1, 3, H, W) image -> the graph's input dict (the realtime graph adds zero ``state`` / ``alpha``)."""
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})


def prepare(img: np.ndarray, hw: tuple[int, int], multiple: int) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> (1, 3, H', W') float32: cover ``hw``, centre-crop, pad to ``multiple``.

    Example:
        >>> prepare(np.zeros((50, 80, 3), np.float32), (30, 30), 16).shape
        (1, 3, 32, 32)
    """
    import cv2

    from lle.pipeline import pad_to_multiple

    th, tw = hw
    h, w = img.shape[:2]
    scale = max(th / h, tw / w)
    if abs(scale - 1.0) > 1e-6:
        size = (max(tw, round(w * scale)), max(th, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y0, x0 = (img.shape[0] - th) // 2, (img.shape[1] - tw) // 2
    crop = np.ascontiguousarray(img[y0 : y0 + th, x0 : x0 + tw].transpose(2, 0, 1)[None], dtype=np.float32)
    return pad_to_multiple(np.clip(crop, 0.0, 1.0), multiple)[0]


@dataclass(frozen=True, slots=True)
class CalibrationSet:
    """A seeded, fixed-size choice of images, split into calibration samples and held-out check images.

    Iterating yields the calibration samples as (1, 3, H, W) float32 in [0, 1]; :meth:`holdout_arrays` gives the
    held-out ones, used to check INT8 PSNR on images the calibrator never saw.
    """

    paths: tuple[Path, ...]
    holdout_paths: tuple[Path, ...]
    hw: tuple[int, int]
    multiple: int

    @classmethod
    def from_dir(
        cls, folder: Path, *, n: int, hw: tuple[int, int], multiple: int, seed: int = 0, holdout: int = 4
    ) -> CalibrationSet:
        """Pick ``n`` calibration + ``holdout`` check images from ``folder`` (sorted, then a seeded shuffle).

        Raises:
            InputError: the folder is missing or has fewer than ``holdout + 1`` images.
        """
        from lle.io.image import find_images

        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"calibration folder not found: {folder}", hint="pass --calib DIR (see calibration_data/)")
        found = find_images(folder)
        if len(found) < holdout + 1:
            raise InputError(
                f"calibration folder {folder} has {len(found)} images, need at least {holdout + 1}",
                hint="build one with: lle calib build SRC_DIR --out DIR --n 128",
            )
        order = np.random.default_rng(seed).permutation(len(found))
        chosen = [found[i] for i in order]
        held, rest = chosen[:holdout], chosen[holdout:]
        if len(rest) < n:
            log.warning("calibration folder %s has %d images, fewer than the %d asked for", folder, len(rest), n)
        return cls(tuple(rest[:n]), tuple(held), (int(hw[0]), int(hw[1])), int(multiple))

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        for p in self.paths:
            yield self.load(p)

    def load(self, path: Path) -> np.ndarray:
        """One image, preprocessed as at inference: (1, 3, H, W) float32 in [0, 1]."""
        from lle.io.image import read_image

        return prepare(read_image(path)[0], self.hw, self.multiple)

    def holdout_arrays(self) -> list[np.ndarray]:
        """The held-out images (never used for calibration), preprocessed like the samples."""
        return [self.load(p) for p in self.holdout_paths]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The padded (1, 3, H, W) every sample has."""
        m = self.multiple
        return (1, 3, -(-self.hw[0] // m) * m, -(-self.hw[1] // m) * m)


def quadrants(x: np.ndarray, multiple: int) -> list[np.ndarray]:
    """The four corner tiles of (N, C, H, W) ``x``, together covering every pixel.

    Each tile is half of each side rounded up to ``multiple`` (so tiles overlap when a half is not a multiple).

    Example:
        >>> [t.shape for t in quadrants(np.zeros((1, 3, 72, 100), np.float32), 16)][:2]
        [(1, 3, 48, 64), (1, 3, 48, 64)]
    """
    h, w = x.shape[-2:]
    def half(s: int) -> int:
        return min(s, -(-((s + 1) // 2) // multiple) * multiple)

    th, tw = half(h), half(w)
    return [np.ascontiguousarray(x[..., y0 : y0 + th, x0 : x0 + tw]) for y0 in (0, h - th) for x0 in (0, w - tw)]


def to_nncf_dataset(calib: CalibrationSet, feed: Feed, *, tiles: bool = False) -> Any:
    """An ``nncf.Dataset`` over ``calib`` whose items are the graph's input dicts.

    ``tiles``: each image comes as its four :func:`quadrants` instead (4x the items, a quarter of the pixels each).
    NNCF keeps every activation of an item it collects statistics on, about 1.4 GB for the quality preset at 720p;
    a quarter of that keeps an export on a small board. The per-tensor minimum and maximum over the tiles are the
    whole image's (up to the convolutions' padding at the tile edges).
    """
    from lle._lazy import require

    nncf = require("nncf", extra="openvino")
    if not tiles:
        return nncf.Dataset(list(calib.paths), lambda p: feed(calib.load(p)))
    last: dict[Path, list[np.ndarray]] = {}

    def item(pq: tuple[Path, int]) -> dict[str, np.ndarray]:
        path, q = pq
        if path not in last:  # items come in order: decode each image once for its four tiles
            last.clear()
            last[path] = quadrants(calib.load(path), calib.multiple)
        return feed(last[path][q])

    return nncf.Dataset([(p, q) for p in calib.paths for q in range(4)], item)


def ort_reader(calib: CalibrationSet, feed: Feed) -> Any:
    """An onnxruntime ``CalibrationDataReader`` over ``calib`` (one image per batch)."""
    from lle._lazy import require

    quant = require("onnxruntime.quantization", extra="onnx")

    class _Reader(quant.CalibrationDataReader):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self._it = iter(calib)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else feed(x)

        def rewind(self) -> None:
            self._it = iter(calib)

    return _Reader()


def _video_frames(path: Path, count: int) -> Iterator[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
        if total <= 0:
            raise InputError(f"cannot read frames from {path}", hint="is it a video OpenCV can decode?")
        for idx in np.linspace(0, total - 1, num=min(count, total)).round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
            ok, frame = cap.read()
            if ok:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    finally:
        cap.release()


def build_calibration_dir(
    src: Path,
    out: Path,
    *,
    n: int = 128,
    seed: int = 0,
    max_side: int = 1920,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Make a calibration folder of ``n`` JPEGs from the images and videos in ``src`` (not recursive).

    Images are chosen with a seeded shuffle; videos give frames evenly spaced in time, shared fairly between the
    videos. Frames are stored at most ``max_side`` px on the long side (they are resized to the deployment resolution
    when an export loads them). Returns the written paths.

    Raises:
        InputError: ``src`` is missing or holds no images or videos.
    """
    import cv2

    from lle.io.image import find_images, read_image, write_image

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise InputError(f"source folder not found: {src}")
    images = find_images(src)
    videos = sorted(p for p in src.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not images and not videos:
        raise InputError(f"no images or videos in {src}", hint="supported: .jpg .png .tif .mp4 .mov .avi .mkv ...")
    rng = np.random.default_rng(seed)
    n_img = min(len(images), n if not videos else n // 2)
    picked = [images[i] for i in sorted(rng.permutation(len(images))[:n_img])]
    per_video = -(-(n - n_img) // len(videos)) if videos else 0
    written: list[Path] = []  # the folder is made by the first write: a failure before it leaves nothing
    skipped: list[str] = []

    def _save(img: np.ndarray, name: str) -> None:
        h, w = img.shape[:2]
        if max_side and max(h, w) > max_side:
            s = max_side / max(h, w)
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        path = out / f"{len(written):04d}_{name}.jpg"
        write_image(path, img)
        written.append(path)
        if progress:
            progress(len(written), n)

    for p in picked:
        try:
            img = read_image(p)[0]
        except InputError as err:  # one unreadable file does not sink the set
            skipped.append(f"{p.name}: {err}")
            continue
        _save(img, p.stem)
    for v in videos:
        for i, frame in enumerate(_video_frames(v, per_video)):
            if len(written) >= n:
                break
            _save(frame, f"{v.stem}_f{i:03d}")
    if skipped:
        log.warning("skipped %d unreadable file(s): %s", len(skipped), "; ".join(skipped[:3]))
    if not written:
        raise InputError(f"no readable images or video frames in {src}", hint="; ".join(skipped[:3]) or None)
    return written
