"""FP32 ONNX -> OpenVINO IR (FP32, FP16-compressed weights, INT8 via NNCF post-training quantization).

The parity run compiles with ``INFERENCE_PRECISION_HINT=f32``: OpenVINO on CPUs with AMX/AVX512-BF16 otherwise runs
bf16 and the FP32 check would measure bf16 rounding, not the conversion. INT8 quantizes convolution inputs only
(the same rule as the ONNX Q/DQ path), so the realtime graph's ``state``/``alpha`` blend stays in float; activation
ranges are the global min/max over the calibration set, and the convolutions the mixed-precision plan
(:mod:`lle.export.mixed_precision`) names stay in float.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._lazy import require
from lle.errors import ExportError
from lle.export.runners import run_ov

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig

__all__ = ["OV_QUANT_OPS", "TILE_PIXELS", "ov_conv_names", "run_ov", "to_ov", "to_ov_fp16", "to_ov_int8"]

log = logging.getLogger(__name__)

OV_QUANT_OPS = frozenset({"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"})
_NNCF_PRESETS = {"performance": "PERFORMANCE", "mixed": "MIXED"}


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
    ov = require("openvino", extra="openvino")
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=fp16)
    return path


def _finish(path: Path, src: Path, cfg: ExportConfig, precision: str, xs: list[np.ndarray], ys: list[np.ndarray],
            kind: str, threshold: float, **extra: Any) -> Path:
    from lle.export.manifest import check_parity, compare, read_manifest, write_manifest

    outs = run_ov(path, xs, device=cfg.openvino.device, cache_dir=cfg.openvino.cache_dir)
    parity = compare(outs, ys, kind=kind, threshold=threshold)
    src_m = read_manifest(src)
    write_manifest(path, format="openvino", precision=precision, preset=src_m.get("preset"), io=src_m.get("io"),
                   graph_io=src_m.get("graph_io", "float32"), size_multiple=src_m.get("size_multiple"),
                   parity=parity, device=cfg.openvino.device, inference_precision_hint="f32",
                   exposure_cap=src_m.get("exposure_cap"),
                   source={"onnx": src.name, "sha256": src_m.get("sha256", {}).get(src.name)}, **extra)
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


def to_ov_int8(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: FP32 ONNX -> ``model.int8.xml`` by NNCF PTQ on ``calib``; PSNR-checked on held-out images.

    Raises:
        ExportError: no calibration set or NNCF failed.
        ParityError: PSNR vs the torch FP32 output below ``cfg.min_psnr``.
    """
    from lle.export.onnx_export import require_float_graph

    require_float_graph(src, "OpenVINO INT8 quantization")
    nncf = require("nncf", extra="openvino")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from lle.export.calibration import to_nncf_dataset
    from lle.export.onnx_export import graph_feed, load_reference
    from lle.host import release_memory

    if calib is None:
        raise ExportError("INT8 export needs calibration images", hint="pass --calib DIR (e.g. calibration_data/)")
    from lle.export.mixed_precision import mixed_plan

    src = Path(src)
    plan = mixed_plan(src, Path(out_dir), cfg, calib)
    model = _convert(src)
    ignored_types = sorted({op.get_type_name() for op in model.get_ops()} - OV_QUANT_OPS)
    ignored_names = ov_conv_names(model, src, plan.float_layers)
    release_memory()  # the plan search and the conversion leave freed heap behind; NNCF's statistics peak on top
    tiles = calib.shape[-2] * calib.shape[-1] >= TILE_PIXELS
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)  # NNCF logs one INFO line per skipped op
    try:
        quantized = nncf.quantize(
            model, to_nncf_dataset(calib, graph_feed(src), tiles=tiles),
            preset=getattr(nncf.QuantizationPreset, _NNCF_PRESETS[cfg.openvino.preset]),
            subset_size=(4 if tiles else 1) * len(calib),
            ignored_scope=nncf.IgnoredScope(names=ignored_names, types=ignored_types, validate=False),
            # Global min/max over the set, as the ONNX path: NNCF's default (the mean of per-image extremes) clips
            # the bright images of a set and cost the realtime preset 1.2 dB against ground truth.
            advanced_parameters=AdvancedQuantizationParameters(
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX),
        )  # fmt: skip
    except Exception as err:
        raise ExportError(f"NNCF quantization of {src.name} failed: {str(err).splitlines()[0]}") from err
    finally:
        nncf_log.setLevel(level)
    path = _save(quantized, Path(out_dir) / "model.int8.xml", fp16=False)
    ref = load_reference(src)
    xs, ys = (ref["hold_x"], ref["hold_y"]) if ref["hold_x"] else (ref["rand_x"], ref["rand_y"])
    return _finish(path, src, cfg, "int8", xs, ys, "psnr", cfg.min_psnr,
                   calibration={"n": len(calib), "hw": list(calib.hw), "tool": "nncf.quantize",
                                "preset": cfg.openvino.preset, "quantized_ops": sorted(OV_QUANT_OPS),
                                "activation_ranges": "minmax", "items": "4 tiles per image" if tiles else "images"},
                   mixed_precision={**plan.summary(), "openvino_names": ignored_names},
                   parity_on="held-out calibration images" if ref["hold_x"] else "random")
