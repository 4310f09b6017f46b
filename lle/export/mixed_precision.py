"""Mixed-precision INT8: which convolutions stay in float so that the INT8 graph still matches FP32.

Two places in these models do not survive an 8-bit grid. A low-light frame lives in the bottom few percent of
[0, 1], so the first convolution, quantized on a range calibrated over whole images, sees a dark frame through a
handful of levels; and the head's output feeds an exponential gain (or a tone curve), which multiplies its rounding
error. Where exactly the loss comes from differs per weight set, so it is measured, not assumed:

1. Quantize every convolution. If the probe images reach the target against FP32 (pooled PSNR at least
   ``min_psnr + margin_db`` and no single image below ``min_psnr``), keep that.
2. Otherwise measure each convolution alone (only it quantized) and rank them by the PSNR lost.
3. Keep the most sensitive ones in float, one more at a time, until the target is met or ``max_float`` of the
   convolutions are float; the best set seen wins.

Probe images are ``calibration.probe`` calibration images spread from the darkest to the brightest (the error of an
exposure-correcting model depends most on how dark the frame is), never the held-out images the export's parity
check runs on. The search runs on their centres (half of each side, a quarter of the pixels: every trial is a graph
run per probe, about 30 of them for the quality preset). What INT8 adds is rounding noise spread over the image, so a
crop's PSNR tracks the whole image's; the export's own parity check, on whole held-out images, is what gates it.

The plan is cached beside the ONNX (``model.int8.plan.json``, keyed by the ONNX graph's digest and every setting it
depends on) so the ONNX Q/DQ and OpenVINO INT8 exports of one model share it.

The plan is made in onnxruntime's Q/DQ arithmetic; another runtime (NNCF's quantizers on OpenVINO's CPU kernels, which
differ by instruction set) can land a few dB away from it. A runtime that misses the target with the plan's float set
grows it in the plan's sensitivity order (:func:`float_order`, :func:`float_sizes`), measuring the sensitivity first
(:func:`with_sensitivity`) when the search never needed to.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._atomic import atomic_write_bytes
from lle._lazy import require
from lle.export.progress import report
from lle.export.qdq import calibrate_ranges, conv_names, write_qdq

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig

__all__ = [
    "MixedPlan",
    "PLAN_NAME",
    "centre_crop",
    "float_order",
    "float_sizes",
    "graph_digest",
    "max_float_convs",
    "mixed_plan",
    "probe_images",
    "search_plan",
    "with_sensitivity",
]

log = logging.getLogger(__name__)

PLAN_NAME = "model.int8.plan.json"


@dataclass(frozen=True, slots=True)
class MixedPlan:
    """The outcome of the search: which convolutions stay float and the probe PSNRs behind that choice."""

    float_layers: tuple[str, ...]
    """ONNX node names of the convolutions kept in float, most sensitive first."""
    n_convs: int
    int8_psnr: float
    """Probe PSNR (dB) vs FP32 with every convolution in INT8."""
    mixed_psnr: float
    """Probe PSNR (dB) vs FP32 with ``float_layers`` kept in float."""
    mixed_worst_psnr: float
    """The lowest single-image probe PSNR (dB) with ``float_layers`` kept in float."""
    target_db: float
    sensitivity: dict[str, float] = field(default_factory=dict)
    """Probe PSNR (dB) with only that convolution in INT8 (empty when the all-INT8 graph met the target)."""

    def summary(self) -> dict[str, Any]:
        """The manifest record: float layers and probe PSNRs (the full sensitivity table is in the plan file)."""
        return {"float_layers": list(self.float_layers), "n_convs": self.n_convs, "int8_probe_psnr": self.int8_psnr,
                "mixed_probe_psnr": self.mixed_psnr, "mixed_worst_probe_psnr": self.mixed_worst_psnr,
                "target_db": self.target_db, "plan": PLAN_NAME}


def graph_digest(src: Path) -> str:
    """sha256 of what the ONNX graph computes: nodes, weights, inputs and outputs, not its shape annotations.

    Two exports of the same weights are the same graph, but the simplifier names symbolic dimensions in no fixed
    order, so the file's own sha256 differs between them; the plan must not.
    """
    import hashlib

    onnx = require("onnx", extra="onnx")
    m = onnx.load(str(src), load_external_data=False)
    del m.graph.value_info[:]
    return hashlib.sha256(m.SerializeToString(deterministic=True)).hexdigest()


def _key(src: Path, cfg: ExportConfig, calib: CalibrationSet) -> dict[str, Any]:
    c = cfg.calibration
    return {"onnx_graph_sha256": graph_digest(src), "calibration": [p.name for p in calib.paths],
            "hw": list(calib.hw), "method": c.method, "probe": c.probe, "probe_crop": "centre half",
            "mixed": c.mixed, "max_float": c.max_float,
            "target_db": cfg.min_psnr + c.margin_db}


def mixed_plan(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet, *, ranges: Any = None
               ) -> MixedPlan:
    """The plan for ``src`` from ``out_dir/model.int8.plan.json`` when it matches, else searched and saved there.

    ``ranges`` are the activation ranges from :func:`lle.export.qdq.calibrate_ranges` when the caller has
    them; otherwise a miss calibrates first.
    """
    src = Path(src)
    cache = Path(out_dir) / PLAN_NAME
    key = _key(src, cfg, calib)
    plan = _cached(cache, key)
    if plan is not None:
        return plan
    if ranges is None:
        ranges = calibrate_ranges(src, calib, method=cfg.calibration.method)
    plan = search_plan(src, cfg, calib, ranges)
    _store(cache, key, plan)
    return plan


def with_sensitivity(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet, plan: MixedPlan
                     ) -> MixedPlan:
    """``plan`` with :attr:`MixedPlan.sensitivity` filled in (measured now when the search never needed it).

    The measured table goes into the cached plan in ``out_dir`` so that the next export reads it.
    """
    if plan.sensitivity or not plan.n_convs:
        return plan
    src = Path(src)
    ranges = calibrate_ranges(src, calib, method=cfg.calibration.method)
    with _Trials(src, cfg, calib, ranges) as trials:
        plan = dataclasses.replace(plan, sensitivity=trials.sensitivity())
    cache, key = Path(out_dir) / PLAN_NAME, _key(src, cfg, calib)
    if _cached(cache, key) is not None:  # only a plan made for these settings is updated
        _store(cache, key, plan)
    return plan


def max_float_convs(cfg: ExportConfig, n_convs: int) -> int:
    """The most convolutions a plan may keep float: ``calibration.max_float`` of them, rounded down.

    Example:
        >>> from lle.export.config import ExportConfig
        >>> max_float_convs(ExportConfig(), 28)
        14
    """
    return math.floor(cfg.calibration.max_float * n_convs)


def float_order(plan: MixedPlan) -> tuple[str, ...]:
    """Every convolution in the order to keep them float: the plan's own first, then the rest, most sensitive first.

    Needs :attr:`MixedPlan.sensitivity` for more than the plan's float layers (see :func:`with_sensitivity`).

    Example:
        >>> plan = MixedPlan(("b",), 3, 30.0, 40.0, 38.0, 40.0, {"a": 45.0, "b": 31.0, "c": 42.0})
        >>> float_order(plan)
        ('b', 'c', 'a')
    """
    rest = sorted((n for n in plan.sensitivity if n not in plan.float_layers), key=lambda n: plan.sensitivity[n])
    return (*plan.float_layers, *rest)


def float_sizes(first: int, most: int, attempts: int) -> list[int]:
    """How many convolutions each of up to ``attempts`` tries keeps float: ``first``, then geometrically more.

    The added count grows geometrically and the last try keeps ``most`` float (0 of 14 at first: 0, 2, 6, 14).

    Example:
        >>> float_sizes(0, 14, 4), float_sizes(13, 14, 4), float_sizes(6, 14, 4), float_sizes(3, 3, 4)
        ([0, 2, 6, 14], [13, 14], [6, 8, 10, 14], [3])
    """
    sizes = [first]
    span = most - first
    for i in range(1, attempts):
        k = min(most, first + max(1, round(span ** (i / (attempts - 1))))) if span > 0 else first
        if k > sizes[-1]:
            sizes.append(k)
    return sizes


def _cached(cache: Path, key: dict[str, Any]) -> MixedPlan | None:
    if not cache.is_file():
        return None
    try:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            plan = saved["plan"]
            return MixedPlan(**{**plan, "float_layers": tuple(plan["float_layers"])})
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable mixed-precision plan %s", cache)
    return None


def _store(cache: Path, key: dict[str, Any], plan: MixedPlan) -> None:
    body = {"key": key, "plan": asdict(plan)}
    atomic_write_bytes(cache, (json.dumps(body, indent=2, default=float) + "\n").encode())


class _Trials:
    """Q/DQ trial graphs of ``src`` scored on the probe images (centre crops) against the FP32 graph.

    A context manager: the trial graph lives in a temporary folder that goes away on exit.
    """

    def __init__(self, src: Path, cfg: ExportConfig, calib: CalibrationSet, ranges: Any) -> None:
        onnx = require("onnx", extra="onnx")
        from lle.export.runners import run_onnx

        self.src, self.ranges = Path(src), ranges
        self.convs = conv_names(onnx.load(str(src), load_external_data=False))
        self.probe = [centre_crop(x, calib.multiple) for x in probe_images(calib, cfg.calibration.probe)]
        self.want = run_onnx(src, self.probe)
        self._tmp = tempfile.TemporaryDirectory(prefix="lle-mixed-")

    def __enter__(self) -> _Trials:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def score(self, **which: Any) -> tuple[float, float]:
        """(pooled, worst single-image) probe PSNR in dB of the Q/DQ graph :func:`write_qdq` makes with ``which``."""
        from lle.export.manifest import psnr
        from lle.export.runners import run_onnx

        trial = Path(self._tmp.name) / "trial.onnx"
        write_qdq(self.src, trial, self.ranges, **which)
        got = run_onnx(trial, self.probe)
        pooled = psnr(np.concatenate([y.ravel() for y in got]), np.concatenate([y.ravel() for y in self.want]))
        return pooled, min(psnr(g, w) for g, w in zip(got, self.want, strict=True))

    def sensitivity(self) -> dict[str, float]:
        """Probe PSNR (dB) with only that convolution quantized, for every convolution."""
        alone = {}
        for i, name in enumerate(self.convs, 1):
            report(i, len(self.convs), "mixed-precision sensitivity")
            alone[name] = self.score(only=[name])[0]
            log.info("mixed precision: sensitivity %d/%d %s: %.2f dB", i, len(self.convs), name, alone[name])
        return alone


def search_plan(src: Path, cfg: ExportConfig, calib: CalibrationSet, ranges: Any) -> MixedPlan:
    """Run the search in the module docstring on the probe images; ``ranges`` come from the calibration."""
    c = cfg.calibration
    target = cfg.min_psnr + c.margin_db

    def slack(pooled: float, worst: float) -> float:
        """dB by which a trial clears the target (negative: misses it)."""
        return min(pooled - target, worst - cfg.min_psnr)

    with _Trials(src, cfg, calib, ranges) as trials:
        convs = trials.convs
        int8 = trials.score()
        log.info("mixed precision: all %d convolutions INT8: %.2f dB (worst image %.2f) on %d probe images, "
                 "target %.1f dB", len(convs), *int8, len(trials.probe), target)
        if not c.mixed or slack(*int8) >= 0:
            return MixedPlan((), len(convs), int8[0], int8[0], int8[1], target)
        alone = trials.sensitivity()
        order = sorted(convs, key=lambda n: alone[n])
        best, best_k = int8, 0
        most = max_float_convs(cfg, len(convs))
        for k in range(1, most + 1):
            report(k, most, "mixed-precision float convolutions (at most)")
            got = trials.score(keep_float=order[:k])
            log.info("mixed precision: %d float (%s): %.2f dB (worst image %.2f)", k, order[k - 1], *got)
            if slack(*got) > slack(*best):
                best, best_k = got, k
            if slack(*got) >= 0:
                break
    if slack(*best) < 0:
        log.warning("mixed precision: best probe PSNR %.2f dB (worst image %.2f) with %d of %d convolutions float, "
                    "target %.1f dB", *best, best_k, len(convs), target)
    return MixedPlan(tuple(order[:best_k]), len(convs), int8[0], best[0], best[1], target, alone)


def centre_crop(x: np.ndarray, multiple: int) -> np.ndarray:
    """The centre of (N, C, H, W) ``x``: half of each side, rounded down to ``multiple`` (at least one multiple).

    Example:
        >>> centre_crop(np.zeros((1, 3, 720, 1280), np.float32), 16).shape
        (1, 3, 352, 640)
    """
    h, w = x.shape[-2:]
    ch, cw = (min(s, max(multiple, s // 2 // multiple * multiple)) for s in (h, w))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(x[..., y0 : y0 + ch, x0 : x0 + cw])


def probe_images(calib: CalibrationSet, n: int) -> list[np.ndarray]:
    """``n`` calibration images evenly spaced in mean brightness, darkest to brightest (all of them if fewer)."""
    means = [float(calib.load(p).mean()) for p in calib.paths]
    order = np.argsort(means, kind="stable")
    picks = np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))
    return [calib.load(calib.paths[int(order[i])]) for i in picks]
