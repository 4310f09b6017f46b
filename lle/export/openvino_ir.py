"""FP32 ONNX -> OpenVINO IR (FP32, FP16-compressed weights, INT8 via NNCF post-training quantization).

The parity run compiles with ``INFERENCE_PRECISION_HINT=f32``: OpenVINO on CPUs with AMX/AVX512-BF16 otherwise runs
bf16 and the FP32 check would measure bf16 rounding, not the conversion. INT8 quantizes convolution inputs only
(the same rule as the ONNX Q/DQ path), so the realtime graph's ``state``/``alpha`` blend stays in float; activation
ranges are the global min/max over the calibration set, and the convolutions the mixed-precision plan
(:mod:`lle.export.mixed_precision`) names stay in float.

The plan is searched in onnxruntime's Q/DQ arithmetic (symmetric activation ranges), and NNCF on OpenVINO's CPU
kernels (which differ by instruction set: AVX2, AVX-512, VNNI, AMX) can land a few dB away from it, so the INT8 IR is
gated on itself: each NNCF result is measured on the held-out images, and while it misses ``min_psnr`` NNCF runs again,
at most :data:`INT8_ATTEMPTS` times in all:

1. the configured preset with the plan's float set;
2. for the ``mixed`` preset (asymmetric activations, clipped to the calibrated [min, max]), the ``performance`` preset
   (symmetric, the arithmetic the plan was measured in) with the same float set: an image whose activations go below
   the calibrated minimum cost the quality preset 5 dB in ``mixed`` on a small calibration set;
3. the better preset with geometrically more convolutions float, in the plan's sensitivity order, up to
   ``calibration.max_float`` of them.

A retry reuses the statistics NNCF collected for the first run of its preset (:func:`_nncf_quantizer`). Only a passing
IR is written as ``model.int8.xml``; its manifest records every try and the CPU it ran on. A plan whose best probe PSNR
is more than ``calibration.give_up_db`` under ``min_psnr`` fails before NNCF runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._atomic import temp_path_for
from lle._lazy import require
from lle.errors import ExportError, ParityError
from lle.export.runners import run_ov

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig
    from lle.export.manifest import ParityResult
    from lle.export.mixed_precision import MixedPlan

__all__ = [
    "INT8_ATTEMPTS",
    "Int8Attempt",
    "OV_QUANT_OPS",
    "TILE_PIXELS",
    "host_isa",
    "ov_conv_names",
    "run_ov",
    "to_ov",
    "to_ov_fp16",
    "to_ov_int8",
]

log = logging.getLogger(__name__)

OV_QUANT_OPS = frozenset({"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"})
_NNCF_PRESETS = {"performance": "PERFORMANCE", "mixed": "MIXED"}
INT8_ATTEMPTS = 4
"""NNCF runs at most this many times per INT8 export, each with more convolutions float (see
:func:`lle.export.mixed_precision.float_sizes`)."""
_INT8_ISA = ("amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "asimd", "neon")
"""CPU instruction sets that decide OpenVINO's INT8 convolution kernels, best first."""


def _graph_io(src: Path) -> str:
    from lle.export.manifest import read_manifest

    return str(read_manifest(src).get("graph_io", "float32"))


def _convert(src: Path) -> Any:
    ov = require("openvino", extra="openvino")
    try:
        return ov.convert_model(str(src))
    except Exception as err:
        raise ExportError(f"OpenVINO could not convert {Path(src).name}: {str(err).splitlines()[0]}") from err


def _save(model: Any, path: Path, *, fp16: bool) -> Path:
    """Write IR ``path`` (``.xml`` + ``.bin``) without a reader ever seeing half of it."""
    return _commit(_save_temp(model, path, fp16=fp16), path)


def _save_temp(model: Any, path: Path, *, fp16: bool = False) -> Path:
    """Write ``model`` as a hidden temporary IR beside ``path`` (``.<stem>.<hex>.part.xml`` + ``.bin``)."""
    ov = require("openvino", extra="openvino")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=fp16)
    except BaseException:
        _discard(tmp)
        raise
    return tmp


def _commit(tmp: Path, path: Path) -> Path:
    """Rename temporary IR ``tmp`` to ``path``: the weights first, the ``.xml`` the artifact is known by last."""
    if tmp.with_suffix(".bin").is_file():
        os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
    os.replace(tmp, path)
    return path


def _discard(tmp: Path) -> None:
    tmp.unlink(missing_ok=True)
    tmp.with_suffix(".bin").unlink(missing_ok=True)


def _record(path: Path, src: Path, cfg: ExportConfig, precision: str, parity: ParityResult, **extra: Any) -> None:
    """Write the manifest of IR ``path`` (made from ONNX ``src``) with its parity result."""
    from lle.export.manifest import read_manifest, write_manifest

    src_m = read_manifest(src)
    write_manifest(path, format="openvino", precision=precision, preset=src_m.get("preset"), io=src_m.get("io"),
                   graph_io=src_m.get("graph_io", "float32"), size_multiple=src_m.get("size_multiple"),
                   parity=parity, device=cfg.openvino.device, inference_precision_hint="f32",
                   exposure_cap=src_m.get("exposure_cap"),
                   source={"onnx": src.name, "sha256": src_m.get("sha256", {}).get(src.name)}, **extra)


def _measure(path: Path, cfg: ExportConfig, xs: list[np.ndarray], ys: list[np.ndarray], kind: str,
             threshold: float) -> ParityResult:
    """Run IR ``path`` on ``xs`` and compare with the reference outputs ``ys``."""
    from lle.export.manifest import compare

    outs = run_ov(path, xs, device=cfg.openvino.device, cache_dir=cfg.openvino.cache_dir)
    return compare(outs, ys, kind=kind, threshold=threshold)


def _finish(path: Path, src: Path, cfg: ExportConfig, precision: str, xs: list[np.ndarray], ys: list[np.ndarray],
            kind: str, threshold: float, **extra: Any) -> Path:
    from lle.export.manifest import check_parity

    parity = _measure(path, cfg, xs, ys, kind, threshold)
    _record(path, src, cfg, precision, parity, **extra)
    check_parity(parity, path)
    return path


def to_ov(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: FP32 ONNX -> ``model.xml``/``.bin`` (FP32 weights), within ``cfg.atol_fp32`` of torch.

    Raises:
        ExportError: conversion failed.
        ParityError: max abs diff to torch above ``cfg.atol_fp32``.
    """
    from lle.export.onnx_export import load_reference, parity_atol

    src = Path(src)
    path = _save(_convert(src), Path(out_dir) / "model.xml", fp16=False)
    ref = load_reference(src)
    atol = parity_atol(_graph_io(src), cfg.atol_fp32)
    return _finish(path, src, cfg, "fp32", ref["rand_x"], ref["rand_y"], "atol", atol)


def to_ov_fp16(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: FP32 ONNX -> ``model.fp16.xml`` (FP16-compressed weights), within ``cfg.atol_fp16`` of torch."""
    from lle.export.onnx_export import load_reference, parity_atol

    src = Path(src)
    path = _save(_convert(src), Path(out_dir) / "model.fp16.xml", fp16=True)
    ref = load_reference(src)
    atol = parity_atol(_graph_io(src), cfg.atol_fp16, fp16=True)
    return _finish(path, src, cfg, "fp16", ref["rand_x"], ref["rand_y"], "atol", atol)


def ov_conv_names(model: Any, src: Path, onnx_names: tuple[str, ...] | list[str]) -> list[str]:
    """The OpenVINO op names of the ONNX convolutions ``onnx_names`` in ``model`` (converted from ``src``).

    OpenVINO names a convolution after its ONNX node (``<name>/WithoutBiases`` once the bias is split off) but gives
    a ConvTranspose a generated name, so those are matched by their order among the transposed convolutions of each
    graph, checked against the weight shapes.

    Raises:
        ExportError: a name cannot be matched (the ONNX and the OpenVINO model disagree).
    """
    onnx = require("onnx", extra="onnx")

    if not onnx_names:
        return []
    g = onnx.load(str(src), load_external_data=False).graph
    init = {t.name: list(t.dims) for t in g.initializer}
    onnx_convs = [n for n in g.node if n.op_type in ("Conv", "ConvTranspose")]
    kinds = {"Conv": ("Convolution", "GroupConvolution"), "ConvTranspose": ("ConvolutionBackpropData",)}
    ov_ops = [op for op in model.get_ordered_ops() if op.get_type_name() in OV_QUANT_OPS - {"MatMul"}]
    out = []
    for name in onnx_names:
        node = next((n for n in onnx_convs if n.name == name), None)
        if node is None:
            raise ExportError(f"mixed precision names {name!r}, which is not a convolution of {src.name}")
        by_name = [op for op in ov_ops if op.get_friendly_name() in (name, f"{name}/WithoutBiases")]
        if by_name:
            out.append(by_name[0].get_friendly_name())
            continue
        same_kind = [n for n in onnx_convs if n.op_type == node.op_type]
        candidates = [op for op in ov_ops if op.get_type_name() in kinds[node.op_type]]
        op = candidates[same_kind.index(node)] if len(candidates) == len(same_kind) else None
        shape = [int(d) for d in op.input_value(1).get_partial_shape().to_shape()] if op is not None else None
        if op is None or shape != init.get(node.input[1]):
            raise ExportError(f"cannot find ONNX convolution {name!r} in the OpenVINO model of {src.name}")
        out.append(op.get_friendly_name())
    return out


TILE_PIXELS = 512 * 512
"""NNCF calibrates on the four quadrants of images at least this large (see :func:`to_nncf_dataset`): a quarter of
the activation memory (quality preset at 720p: 1.2 GB peak instead of 2.0 GB); smaller images go in whole."""


@dataclass(frozen=True, slots=True)
class Int8Attempt:
    """One NNCF run of an INT8 export: its preset, how many convolutions stayed float, the held-out PSNR it reached."""

    preset: str
    float_convs: int
    psnr_db: float
    passed: bool
    seconds: float

    def summary(self) -> str:
        return f"{self.preset} {self.float_convs} float {self.psnr_db:.2f} dB"


def host_isa(device: str = "CPU") -> dict[str, Any]:
    """The CPU an export ran on: model name, its inference instruction sets and OpenVINO's capabilities of ``device``.

    OpenVINO picks its INT8 kernels by instruction set, so an INT8 IR's PSNR can differ between CPUs.
    """
    from lle.host import cpu_features

    model, flags = cpu_features()
    caps: list[str] = []
    try:
        ov = require("openvino", extra="openvino")
        caps = [str(c) for c in ov.Core().get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception as err:  # a device OpenVINO cannot open still gets the CPU record
        log.debug("OpenVINO capabilities of %s unavailable: %s", device, err)
    best = next((f for f in _INT8_ISA if f in flags), "")
    return {"cpu": model, "isa": flags, "int8_isa": best, "openvino_device": device, "openvino_capabilities": caps}


Quantize = Callable[[Sequence[str]], Any]
"""OpenVINO names of the convolutions to keep float -> the NNCF-quantized ``ov.Model``."""


def _nncf_quantizer(model: Any, dataset: Any, *, ignored_types: Sequence[str], **kwargs: Any) -> Quantize:
    """NNCF post-training quantization of ``model`` at any float set, the calibration statistics collected once.

    ``kwargs`` go to ``nncf.quantize`` (preset, subset_size, advanced_parameters). The first call runs NNCF's PTQ
    pipeline as ``nncf.quantize`` does and keeps its statistics; a later call with more convolutions float points the
    same MinMax algorithm at the larger ignored scope and reruns only the last pipeline step (MinMax and bias
    correction) on them, which gives what ``nncf.quantize`` with that scope gives, without a pass over the data.
    Where NNCF's pipeline API differs from the one this was written against, every call is a plain ``nncf.quantize``.
    """
    nncf = require("nncf", extra="openvino")

    def scope(names: Sequence[str]) -> Any:
        return nncf.IgnoredScope(names=list(names), types=list(ignored_types), validate=False)

    def fresh(names: Sequence[str]) -> Any:
        return nncf.quantize(model, dataset, ignored_scope=scope(names), **kwargs)

    try:
        return _ReusedStatistics(model, dataset, scope, kwargs)
    except (ImportError, AttributeError) as err:
        log.debug("NNCF statistics are collected for every attempt (%s)", err)
        return fresh


class _ReusedStatistics:
    """The callable :func:`_nncf_quantizer` returns where NNCF's pipeline API allows reusing statistics."""

    def __init__(self, model: Any, dataset: Any, scope: Callable[[Sequence[str]], Any], kwargs: dict[str, Any]
                 ) -> None:
        from nncf.common.factory import build_graph
        from nncf.common.utils.backend import BackendType
        from nncf.openvino.graph.model_utils import remove_friendly_name_duplicates
        from nncf.openvino.quantization.backend_parameters import is_weight_compression_needed
        from nncf.openvino.rt_info import dump_parameters
        from nncf.quantization.advanced_parameters import convert_to_dict_recursively
        from nncf.quantization.algorithms.min_max.algorithm import MinMaxQuantization
        from nncf.quantization.algorithms.pipeline import collect_statistics
        from nncf.quantization.algorithms.post_training.pipeline import create_ptq_pipeline
        from openvino._offline_transformations import compress_quantize_weights_transformation

        self._build_graph, self._collect = build_graph, collect_statistics
        self._compress = compress_quantize_weights_transformation if is_weight_compression_needed(
            kwargs.get("advanced_parameters")) else None
        self._dump, self._to_dict = dump_parameters, convert_to_dict_recursively
        self._model, self._dataset, self._scope, self._kwargs = model, dataset, scope, kwargs
        self._pipeline = create_ptq_pipeline(**kwargs)
        steps = [[a for a in step if BackendType.OPENVINO in a.available_backends]
                 for step in self._pipeline.pipeline_steps]
        steps = [step for step in steps if step]
        self._last = len(steps) - 1
        minmax = [a for a in steps[-1] if isinstance(a, MinMaxQuantization)] if steps else []
        if len(minmax) != 1 or any(isinstance(a, MinMaxQuantization) for step in steps[:-1] for a in step):
            raise AttributeError("NNCF's PTQ pipeline does not end in one MinMax step")
        if not hasattr(minmax[0], "set_ignored_scope"):
            raise AttributeError("NNCF's MinMaxQuantization has no set_ignored_scope")
        self._minmax = minmax[0]
        self._remove_duplicates = remove_friendly_name_duplicates
        self._base: Any = None  # the model after the steps before the last (channel alignment), and its graph
        self._graph: Any = None
        self._stats: Any = None  # the last step's statistics, collected on the first call

    def __call__(self, names: Sequence[str]) -> Any:
        scope = self._scope(names)
        self._minmax.set_ignored_scope(scope)
        if self._base is None:
            model = self._remove_duplicates(self._model)
            graph = self._build_graph(model)
            for i in range(self._last):  # no step before the last depends on the ignored scope
                stats = self._collect(self._pipeline.get_statistic_points_for_step(i, model, graph), model, graph,
                                      self._dataset)
                model = self._pipeline.run_step(i, stats, model, graph)
                graph = self._build_graph(model)
            self._base, self._graph = model, graph
        need = self._pipeline.get_statistic_points_for_step(self._last, self._base, self._graph)
        if self._stats is None or not _covered(need, self._stats):
            if self._stats is not None:
                log.info("NNCF: the larger float set needs statistics the first run did not collect; collecting")
            self._stats = self._collect(need, self._base, self._graph, self._dataset)
        quantized = self._pipeline.run_step(self._last, self._stats, self._base, self._graph)
        if self._compress is not None:
            self._compress(quantized)
        preset = self._kwargs.get("preset")
        self._dump(quantized, {"preset": preset, "target_device": "ANY",
                               "subset_size": self._kwargs.get("subset_size"), "fast_bias_correction": True,
                               "model_type": None, "ignored_scope": scope,
                               "advanced_parameters": self._to_dict(self._kwargs.get("advanced_parameters"))})
        return quantized


def _covered(need: Any, have: Any) -> bool:
    """Whether statistic-point container ``have`` holds every point of ``need`` for the same algorithms."""
    for node, points in need.items():
        for p in points:
            if not any(q.target_point == p.target_point
                       and set(p.algorithm_to_tensor_collectors) <= set(q.algorithm_to_tensor_collectors)
                       for q in have.get(node, [])):
                return False
    return True


def _give_up_early(plan: MixedPlan, cfg: ExportConfig, path: Path, src: Path) -> None:
    """Fail before NNCF when the search's best float set is hopelessly short of ``min_psnr`` on the probe images.

    Raises:
        ParityError: the best probe PSNR is more than ``calibration.give_up_db`` under ``min_psnr``.
    """
    from lle.export.mixed_precision import max_float_convs

    c = cfg.calibration
    if plan.mixed_psnr >= cfg.min_psnr - c.give_up_db:
        return
    how = (f"with {len(plan.float_layers)} of {plan.n_convs} convolutions float (at most "
           f"{max_float_convs(cfg, plan.n_convs)})" if c.mixed else "with every convolution INT8 (--no-mixed)")
    raise ParityError(
        f"{path.name} not written: INT8 of {src.name} reached at best {plan.mixed_psnr:.2f} dB on probe images "
        f"{how}, more than {c.give_up_db:g} dB under the required PSNR >= {cfg.min_psnr:g} dB; NNCF was not run",
        hint="use --mixed" if not c.mixed else
        "export FP16, lower --min-psnr, or raise calibration.max_float in a profile (calibration.give_up_db = inf "
        "always tries NNCF)",
    )


def _int8_failure(path: Path, cfg: ExportConfig, plan: MixedPlan, attempts: list[Int8Attempt], isa: str
                  ) -> ParityError:
    from lle.export.mixed_precision import max_float_convs

    best = max(attempts, key=lambda a: a.psnr_db)
    tried = ", ".join(a.summary() for a in attempts)
    hint = ("use --mixed (keeps the convolutions INT8 hurts most in float), more calibration images, or a lower "
            "--min-psnr" if not cfg.calibration.mixed else
            "raise calibration.max_float in a profile, use more calibration images (--calib), lower --min-psnr, or "
            "export --format onnx-int8")
    ks = sorted({a.float_convs for a in attempts})
    span = f"{ks[0]}-{ks[-1]}" if len(ks) > 1 else str(ks[0])
    return ParityError(
        f"{path.name} not written: NNCF INT8 reached at best {best.psnr_db:.2f} dB on held-out images, expected PSNR "
        f">= {cfg.min_psnr:g} dB; tried {len(attempts)} time(s) with {span} of {plan.n_convs} convolutions float "
        f"(at most {max_float_convs(cfg, plan.n_convs)}): {tried}; OpenVINO {cfg.openvino.device}"
        + (f" ({isa})" if isa else ""),
        hint=hint,
    )


def to_ov_int8(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: FP32 ONNX -> ``model.int8.xml`` by NNCF PTQ on ``calib``; PSNR-checked on held-out images.

    NNCF starts from the mixed-precision plan's float set; while the IR misses ``cfg.min_psnr`` on the held-out images
    the float set grows (:data:`INT8_ATTEMPTS` tries at most, see the module docstring). Only a passing IR is written.

    Raises:
        ExportError: no calibration set or NNCF failed.
        ParityError: every try stayed below ``cfg.min_psnr`` (nothing written), or the search's best probe PSNR was
            hopelessly short of it (``calibration.give_up_db``; NNCF not run).
    """
    from lle.export.onnx_export import require_float_graph

    require_float_graph(src, "OpenVINO INT8 quantization")
    nncf = require("nncf", extra="openvino")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    import lle.export.mixed_precision as mp
    from lle.export.calibration import to_nncf_dataset
    from lle.export.onnx_export import graph_feed, load_reference
    from lle.host import release_memory

    if calib is None:
        raise ExportError("INT8 export needs calibration images", hint="pass --calib DIR (e.g. calibration_data/)")
    src, out_dir = Path(src), Path(out_dir)
    path = out_dir / "model.int8.xml"
    plan = mp.mixed_plan(src, out_dir, cfg, calib)
    _give_up_early(plan, cfg, path, src)
    model = _convert(src)
    ignored_types = sorted({op.get_type_name() for op in model.get_ops()} - OV_QUANT_OPS)
    release_memory()  # the plan search and the conversion leave freed heap behind; NNCF's statistics peak on top
    tiles = calib.shape[-2] * calib.shape[-1] >= TILE_PIXELS
    dataset = to_nncf_dataset(calib, graph_feed(src), tiles=tiles)

    def quantizer(preset: str) -> Quantize:
        return _nncf_quantizer(
            model, dataset, ignored_types=ignored_types,
            preset=getattr(nncf.QuantizationPreset, _NNCF_PRESETS[preset]),
            subset_size=(4 if tiles else 1) * len(calib),
            # Global min/max over the set, as the ONNX path: NNCF's default (the mean of per-image extremes) clips
            # the bright images of a set and cost the realtime preset 1.2 dB against ground truth.
            advanced_parameters=AdvancedQuantizationParameters(
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX),
        )  # fmt: skip

    ref = load_reference(src)
    xs, ys = (ref["hold_x"], ref["hold_y"]) if ref["hold_x"] else (ref["rand_x"], ref["rand_y"])
    host = host_isa(cfg.openvino.device)
    k0 = len(plan.float_layers)
    most = max(k0, mp.max_float_convs(cfg, plan.n_convs) if cfg.calibration.mixed else k0)
    with _Attempts(path, src, cfg, model, quantizer, xs, ys) as tries:
        tries.run(cfg.openvino.preset, plan, k0)
        if not tries.passed and cfg.openvino.preset == "mixed":
            # The plan was measured with symmetric activation ranges (onnxruntime Q/DQ); "mixed" clips an image whose
            # activations leave the calibrated [min, max] on the low side, which symmetric ranges leave room for.
            tries.run("performance", plan, k0)
        for k in mp.float_sizes(k0, most, INT8_ATTEMPTS - len(tries.attempts) + 1)[1:]:
            if tries.passed:
                break
            if not plan.sensitivity:
                log.info("OpenVINO INT8: measuring each convolution's sensitivity to grow the float set")
                plan = mp.with_sensitivity(src, out_dir, cfg, calib, plan)
            tries.run(tries.best_preset, plan, k)
        if not tries.passed:
            raise _int8_failure(path, cfg, plan, tries.attempts, host["int8_isa"])
        best = tries.commit()
    _record(path, src, cfg, "int8", best.parity,
            calibration={"n": len(calib), "hw": list(calib.hw), "tool": "nncf.quantize",
                         "preset": best.preset, "quantized_ops": sorted(OV_QUANT_OPS),
                         "activation_ranges": "minmax", "items": "4 tiles per image" if tiles else "images",
                         "statistics": "collected once per preset" if tries.reused else "collected per attempt"},
            mixed_precision={**plan.summary(), "float_layers": list(best.float_layers),
                             "openvino_names": list(best.openvino_names),
                             "plan_float_layers": list(plan.float_layers)},
            int8_attempts=[asdict(a) for a in tries.attempts], host=host,
            parity_on="held-out calibration images" if ref["hold_x"] else "random")
    return path


@dataclass(frozen=True, slots=True)
class _Kept:
    """The best IR so far: its temporary path and what made it."""

    tmp: Path
    parity: ParityResult
    preset: str
    float_layers: tuple[str, ...]
    openvino_names: tuple[str, ...]


class _Attempts:
    """The NNCF runs of one INT8 export, each measured on the held-out images; only the best IR is kept.

    The best IR stays a temp file until :meth:`commit` renames it. A context manager: leaving it removes every temp
    file not committed.
    """

    def __init__(self, path: Path, src: Path, cfg: ExportConfig, model: Any, quantizer: Callable[[str], Quantize],
                 xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        self.path, self.src, self.cfg, self.model, self.xs, self.ys = path, src, cfg, model, xs, ys
        self._quantizer = quantizer
        self._quantizers: dict[str, Quantize] = {}
        self.attempts: list[Int8Attempt] = []
        self.best: _Kept | None = None

    def __enter__(self) -> _Attempts:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.best is not None:
            _discard(self.best.tmp)  # a no-op after commit

    @property
    def passed(self) -> bool:
        return self.best is not None and self.best.parity.passed

    @property
    def best_preset(self) -> str:
        return self.best.preset if self.best is not None else self.cfg.openvino.preset

    @property
    def reused(self) -> bool:
        """Whether NNCF's statistics were collected once per preset (else once per attempt)."""
        return all(isinstance(q, _ReusedStatistics) for q in self._quantizers.values())

    def run(self, preset: str, plan: MixedPlan, k: int) -> None:
        """Quantize with NNCF ``preset`` keeping the first ``k`` convolutions of the plan's order float, measure it."""
        from lle.export.mixed_precision import float_order

        float_set = float_order(plan)[:k]
        names = tuple(ov_conv_names(self.model, self.src, float_set))
        if preset not in self._quantizers:
            self._quantizers[preset] = self._quantizer(preset)
        t0 = time.perf_counter()
        tmp = _save_temp(_run_nncf(self._quantizers[preset], names, self.src), self.path)
        try:
            parity = _measure(tmp, self.cfg, self.xs, self.ys, "psnr", self.cfg.min_psnr)
        except BaseException:
            _discard(tmp)
            raise
        self.attempts.append(Int8Attempt(preset, k, parity.psnr_db, parity.passed,
                                         round(time.perf_counter() - t0, 1)))
        log.info("OpenVINO INT8 attempt %d: NNCF %s, %d of %d convolutions float: %.2f dB on held-out images "
                 "(>= %g)", len(self.attempts), preset, k, plan.n_convs, parity.psnr_db, self.cfg.min_psnr)
        if self.best is None or parity.psnr_db > self.best.parity.psnr_db:
            if self.best is not None:
                _discard(self.best.tmp)
            self.best = _Kept(tmp, parity, preset, float_set, names)
        else:
            _discard(tmp)

    def commit(self) -> _Kept:
        """Rename the best IR to ``path``."""
        if self.best is None:
            raise ExportError(f"no INT8 attempt made {self.path.name}")
        _commit(self.best.tmp, self.path)
        return self.best


def _run_nncf(quantize: Quantize, names: Sequence[str], src: Path) -> Any:
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)  # NNCF logs one INFO line per skipped op
    try:
        return quantize(names)
    except Exception as err:
        why = (str(err).splitlines() or [type(err).__name__])[0]
        raise ExportError(f"NNCF quantization of {src.name} failed: {why}") from err
    finally:
        nncf_log.setLevel(level)
