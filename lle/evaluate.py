"""Paired evaluation: PSNR, GT-mean PSNR, SSIM, brightness error and picture faults of a model and of baselines.

Picture faults (:mod:`lle.eval_metrics`): chroma ratio and a*b* error against the reference, grain in the
reference's flat dark areas, newly clipped and inverted highlights.

Every number comes with references on the same pairs: identity (the dark input itself), an adaptive global gamma
(mean luma mapped to 0.45) and CLAHE on the L channel (OpenCV).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lle._atomic import atomic_write_bytes
from lle.data.datasets import Pair
from lle.io.image import encode_image

__all__ = [
    "BASELINES",
    "EvalReport",
    "FlickerResult",
    "MethodResult",
    "contact_sheet",
    "crop_sheet",
    "evaluate",
    "video_flicker",
    "write_report",
]

Enhance = Callable[[np.ndarray], np.ndarray]
"""(H, W, 3) float32 in [0, 1] -> same."""

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _gamma(x: np.ndarray, target: float = 0.45) -> np.ndarray:
    m = float(np.clip((x @ _LUMA).mean(), 1e-4, 0.99))
    g = np.log(target) / np.log(m)
    return np.power(np.clip(x, 0, 1), g).astype(np.float32)


def _clahe(x: np.ndarray) -> np.ndarray:
    u8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    lab = cv2.cvtColor(u8, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).astype(np.float32) / 255.0


BASELINES: dict[str, Enhance] = {"identity": _identity, "gamma": _gamma, "clahe": _clahe}


@dataclass(slots=True)
class MethodResult:
    """Means over the pairs plus per-image rows."""

    name: str
    psnr: float = 0.0
    psnr_gt_mean: float = 0.0
    ssim: float = 0.0
    brightness_error: float = 0.0
    """Mean luma of the output minus that of the reference (negative = too dark)."""
    chroma_ratio: float = 0.0
    """Mean chroma of the output over the reference's (1 = as colourful; < 1 washed out)."""
    ab_error: float = 0.0
    """Mean a*b* distance to the reference (colour error with brightness ignored)."""
    noise: float = 0.0
    """Grain (8-bit levels) in the reference's flat dark areas; compare with ``ref_noise``."""
    ref_noise: float = 0.0
    clipped: float = 0.0
    """Share of pixels newly clipped (blown) by the method."""
    inverted: float = 0.0
    """Share of the input's bright pixels that come out darker (inverted highlights)."""
    black: float = 0.0
    """Darkest 1 % of the output's luma (8-bit levels); compare with ``ref_black`` (higher = lifted, milky blacks)."""
    ref_black: float = 0.0
    contrast_ratio: float = 0.0
    """Output's local contrast over the reference's (1 = as crisp; < 1 flat)."""
    per_image: list[dict[str, float | str]] = field(default_factory=list)


@dataclass(slots=True)
class EvalReport:
    dataset: str
    n: int
    methods: list[MethodResult]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


_MEANS = ("psnr", "psnr_gt_mean", "ssim", "brightness_error", "chroma_ratio", "ab_error", "noise", "ref_noise",
          "clipped", "inverted", "black", "ref_black", "contrast_ratio")  # fmt: skip


def _metrics(y: np.ndarray, ref: np.ndarray, x: np.ndarray) -> dict[str, float]:
    import torch

    from lle.eval_metrics import picture_metrics
    from lle.training.metrics import psnr, psnr_gt_mean, ssim

    a = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1)))[None]
    b = torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1)))[None]
    return {
        "psnr": float(psnr(a, b)),
        "psnr_gt_mean": float(psnr_gt_mean(a, b)),
        "ssim": float(ssim(a, b)),
        "brightness_error": float((y @ _LUMA).mean() - (ref @ _LUMA).mean()),
        **{k: v for k, v in picture_metrics(y, x, ref).items() if k not in ("mean_luma", "contrast")},
    }


def evaluate(
    pairs: Sequence[Pair],
    methods: dict[str, Enhance],
    *,
    dataset: str = "pairs",
    progress: Callable[[int, int], None] | None = None,
    keep: int = 0,
) -> tuple[EvalReport, list[dict[str, np.ndarray]]]:
    """Run every method on every pair. Returns the report and, for the first ``keep`` pairs, the images."""
    results = {k: MethodResult(k) for k in methods}
    kept: list[dict[str, np.ndarray]] = []
    total = len(pairs) * len(methods)
    done = 0
    for i, p in enumerate(pairs):
        shown = {"input": p.low, "reference": p.ref}
        for name, fn in methods.items():
            y = np.clip(fn(p.low), 0, 1).astype(np.float32)
            m = _metrics(y, p.ref, p.low)
            results[name].per_image.append({"image": p.name, **m})
            if i < keep:
                shown[name] = y
            done += 1
            if progress:
                progress(done, total)
        if i < keep:
            kept.append(shown)
    for r in results.values():
        for k in _MEANS:
            vals = [float(row[k]) for row in r.per_image if np.isfinite(float(row[k]))]
            setattr(r, k, float(np.mean(vals)) if vals else float("nan"))
    return EvalReport(dataset, len(pairs), list(results.values())), kept


def contact_sheet(rows: list[dict[str, np.ndarray]], columns: Sequence[str], height: int = 192) -> np.ndarray:
    """Grid of images (one row per pair, one column per name), each resized to ``height``; (H, W, 3) float32."""
    lines = []
    for r in rows:
        cells = []
        for c in columns:
            img = r[c]
            w = max(1, round(img.shape[1] * height / img.shape[0]))
            cell = cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)
            cell = (np.clip(cell, 0, 1) * 255 + 0.5).astype(np.uint8)
            cell = cv2.copyMakeBorder(cell, 22, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))
            cv2.putText(cell, c, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            cells.append(cell)
        lines.append(np.concatenate(cells, axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    return np.concatenate(lines, axis=0).astype(np.float32) / 255.0


def _crop_centres(x: np.ndarray, ref: np.ndarray | None, size: int) -> list[tuple[int, int]]:
    """Where to look at 100 %: brightest spot, flattest dark area, blackest object.

    The input's brightest spot (highlights), the densest flat dark area (a dark wall) and the densest near-black area
    of the reference (a black object: are its blacks kept or lifted to grey?).
    """
    from lle.eval_metrics import flat_dark_mask

    h, w = x.shape[:2]
    half = size // 2

    def clamp(cy: int, cx: int) -> tuple[int, int]:
        return min(max(cy, half), max(half, h - half)), min(max(cx, half), max(half, w - half))

    lum = cv2.blur(np.ascontiguousarray(x @ _LUMA), (15, 15))
    bright = np.unravel_index(int(np.argmax(lum)), lum.shape)
    dens = cv2.blur(flat_dark_mask(ref if ref is not None else x).astype(np.float32), (size, size))
    dark = np.unravel_index(int(np.argmax(dens)), dens.shape)
    tone = cv2.blur(np.ascontiguousarray((ref if ref is not None else x) @ _LUMA), (5, 5))
    blacks = cv2.blur((tone <= np.percentile(tone, 3)).astype(np.float32), (size // 2, size // 2))
    black = np.unravel_index(int(np.argmax(blacks)), blacks.shape)
    return [clamp(int(c[0]), int(c[1])) for c in (bright, dark, black)]


def crop_sheet(rows: list[dict[str, np.ndarray]], columns: Sequence[str], size: int = 128) -> np.ndarray:
    """100 % crops (no resampling): three rows per pair.

    The input's brightest spot, its flattest dark area and the reference's blackest object; every column side by
    side; (H, W, 3) float32.
    """
    cut: list[dict[str, np.ndarray]] = []
    for r in rows:
        x = r["input"]
        for cy, cx in _crop_centres(x, r.get("reference"), size):
            y0, x0 = max(0, cy - size // 2), max(0, cx - size // 2)
            cut.append({c: r[c][y0:y0 + size, x0:x0 + size] for c in columns})
    return contact_sheet(cut, columns, height=min(size, *(c[columns[0]].shape[0] for c in cut))) if cut else \
        np.ones((size, size, 3), np.float32)


def write_report(report: EvalReport, out_dir: Path, sheet: np.ndarray | None,
                 crops: np.ndarray | None = None) -> list[Path]:  # fmt: skip
    """Write ``<dataset>.json`` (and ``<dataset>_sheet.png``, ``<dataset>_crops.png``) into ``out_dir`` atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{report.dataset}.json"]
    atomic_write_bytes(paths[0], report.to_json().encode())
    for suffix, img in (("sheet", sheet), ("crops", crops)):
        if img is not None:
            paths.append(out_dir / f"{report.dataset}_{suffix}.png")
            atomic_write_bytes(paths[-1], encode_image(img, ".png"))
    return paths


@dataclass(slots=True)
class FlickerResult:
    """Relative flicker (see :func:`lle.streaming.temporal.flicker`) of a clip before and after enhancement."""

    video: str
    frames: int
    smoothing: float
    input_flicker: float
    output_flicker: float
    input_luma: float = float("nan")
    """Mean luma (0-1) of the input frames, averaged over the clip."""
    output_luma: float = float("nan")
    """The same for the output: a clip that is already a lit night (about 0.25) should stay a night (under 0.42)."""
    output_luma_max: float = float("nan")
    """The brightest output frame's mean luma."""

    @property
    def ratio(self) -> float:
        """Output over input flicker: <= 1 means the enhancer adds no flicker."""
        if self.input_flicker == 0:
            return 1.0 if self.output_flicker == 0 else float("inf")
        return self.output_flicker / self.input_flicker


_BGR_LUMA = np.array([0.114, 0.587, 0.299], np.float32) / 255.0


class _FlickerAccumulator:
    """Running relative flicker and mean luma of a stream of (H, W, 3) BGR uint8 frames, without keeping them."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None
        self.diff, self.level, self.n = 0.0, 0.0, 0
        self.luma_sum, self.luma_max = 0.0, float("nan")

    def add(self, img: np.ndarray) -> None:
        x = img.astype(np.float32)
        self.level += float(x.mean())
        if self.prev is not None:
            self.diff += float(np.abs(x - self.prev).mean())
        self.prev, self.n = x, self.n + 1
        luma = float((x @ _BGR_LUMA).mean()) if x.ndim == 3 and x.shape[-1] == 3 else float("nan")
        self.luma_sum += luma
        self.luma_max = luma if self.n == 1 else max(self.luma_max, luma)

    @property
    def luma(self) -> float:
        return self.luma_sum / self.n if self.n else float("nan")

    @property
    def value(self) -> float:
        if self.n < 2 or self.level == 0:
            return 0.0
        return (self.diff / (self.n - 1)) / (self.level / self.n)


def video_flicker(model: Path, video: Path, *, backend: str = "auto", smoothing: float = 0.85) -> FlickerResult:
    """Run ``model`` over every frame of ``video`` (as ``lle run`` does) and measure input vs output flicker.

    Meant for a static scene: there, any frame-to-frame change is noise or flicker.

    Raises:
        InputError: the video cannot be opened.
    """
    from lle.backends.registry import auto_backend, backend_class
    from lle.io.sinks import Sink
    from lle.io.sources import Frame, open_source
    from lle.streaming.runner import StreamRunner

    acc_in, acc_out = _FlickerAccumulator(), _FlickerAccumulator()

    class _Measure(Sink):
        def write(self, frame: Frame, image: np.ndarray) -> None:
            acc_in.add(frame.image)
            acc_out.add(image)

    with open_source(str(video)) as src:
        name = auto_backend(Path(model)) if backend == "auto" else backend
        with backend_class(name)(Path(model)) as be:
            StreamRunner(be, src, [_Measure()], smoothing=smoothing).run()
    return FlickerResult(str(video), acc_out.n, smoothing, acc_in.value, acc_out.value,
                         input_luma=acc_in.luma, output_luma=acc_out.luma, output_luma_max=acc_out.luma_max)
