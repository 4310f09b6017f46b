"""Paired evaluation: PSNR, GT-mean PSNR, SSIM and brightness error of a model and of classical baselines.

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
    per_image: list[dict[str, float | str]] = field(default_factory=list)


@dataclass(slots=True)
class EvalReport:
    dataset: str
    n: int
    methods: list[MethodResult]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _metrics(y: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    import torch

    from lle.training.metrics import psnr, psnr_gt_mean, ssim

    a = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1)))[None]
    b = torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1)))[None]
    return {
        "psnr": float(psnr(a, b)),
        "psnr_gt_mean": float(psnr_gt_mean(a, b)),
        "ssim": float(ssim(a, b)),
        "brightness_error": float((y @ _LUMA).mean() - (ref @ _LUMA).mean()),
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
            m = _metrics(y, p.ref)
            results[name].per_image.append({"image": p.name, **m})
            if i < keep:
                shown[name] = y
            done += 1
            if progress:
                progress(done, total)
        if i < keep:
            kept.append(shown)
    for r in results.values():
        for k in ("psnr", "psnr_gt_mean", "ssim", "brightness_error"):
            setattr(r, k, float(np.mean([float(row[k]) for row in r.per_image])) if r.per_image else float("nan"))
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


def write_report(report: EvalReport, out_dir: Path, sheet: np.ndarray | None) -> list[Path]:
    """Write ``<dataset>.json`` (and ``<dataset>_sheet.png``) into ``out_dir`` atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{report.dataset}.json"]
    atomic_write_bytes(paths[0], report.to_json().encode())
    if sheet is not None:
        paths.append(out_dir / f"{report.dataset}_sheet.png")
        atomic_write_bytes(paths[1], encode_image(sheet, ".png"))
    return paths


@dataclass(slots=True)
class FlickerResult:
    """Relative flicker (see :func:`lle.streaming.temporal.flicker`) of a clip before and after enhancement."""

    video: str
    frames: int
    smoothing: float
    input_flicker: float
    output_flicker: float

    @property
    def ratio(self) -> float:
        """Output over input flicker: <= 1 means the enhancer adds no flicker."""
        if self.input_flicker == 0:
            return 1.0 if self.output_flicker == 0 else float("inf")
        return self.output_flicker / self.input_flicker


class _FlickerAccumulator:
    """Running relative flicker of a frame stream without keeping the frames."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None
        self.diff, self.level, self.n = 0.0, 0.0, 0

    def add(self, img: np.ndarray) -> None:
        x = img.astype(np.float32)
        self.level += float(x.mean())
        if self.prev is not None:
            self.diff += float(np.abs(x - self.prev).mean())
        self.prev, self.n = x, self.n + 1

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
    return FlickerResult(str(video), acc_out.n, smoothing, acc_in.value, acc_out.value)
