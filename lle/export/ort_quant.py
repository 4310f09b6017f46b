"""FP32 ONNX -> INT8 Q/DQ ONNX with onnxruntime's static quantizer, in the form TensorRT builds INT8 from.

Conventions follow NVIDIA Model Optimizer's ONNX PTQ (the reference producer of TensorRT Q/DQ graphs):
QuantizeLinear/DequantizeLinear pairs (QDQ format), INT8 weights per output channel and symmetric, INT8 activations
symmetric (zero point 0: TensorRT only accepts zero points of 0), biases left in FP32, and only the inputs of
convolutions quantized. Element-wise ops, the resize and the realtime graph's ``state``/``alpha`` blend stay FP32,
so the temporal state is never squeezed through an 8-bit range calibrated on still images.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from lle._lazy import require
from lle.errors import ExportError
from lle.export.mixed_precision import mixed_plan
from lle.export.qdq import QUANT_OPS, calibrate_ranges, check_qdq, conv_names, write_qdq

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig

__all__ = ["QUANT_OPS", "calibrate_ranges", "check_qdq", "conv_names", "to_qdq", "write_qdq"]

log = logging.getLogger(__name__)


def to_qdq(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: FP32 ``model.onnx`` -> ``model.int8.qdq.onnx``, structure-checked, PSNR-checked on held-out images.

    The convolutions the mixed-precision plan names (:mod:`lle.export.mixed_precision`) stay in float.

    Raises:
        ExportError: no calibration set, or the graph breaks a Q/DQ convention.
        ParityError: PSNR vs the torch FP32 output below ``cfg.min_psnr``.
    """
    from lle.export.onnx_export import require_float_graph

    require_float_graph(src, "Q/DQ INT8 quantization")
    onnx = require("onnx", extra="onnx")
    from lle.export.manifest import check_parity, compare, read_manifest, write_manifest
    from lle.export.onnx_export import load_reference, onnx_io
    from lle.export.runners import run_onnx

    if calib is None:
        raise ExportError("INT8 export needs calibration images", hint="pass --calib DIR (e.g. calibration_data/)")
    src = Path(src)
    ranges = calibrate_ranges(src, calib, method=cfg.calibration.method)
    plan = mixed_plan(src, Path(out_dir), cfg, calib, ranges=ranges)
    path = write_qdq(src, Path(out_dir) / "model.int8.qdq.onnx", ranges, keep_float=plan.float_layers)
    counts = check_qdq(onnx.load(str(path)), plan.float_layers)
    ref = load_reference(src)
    xs, ys = (ref["hold_x"], ref["hold_y"]) if ref["hold_x"] else (ref["rand_x"], ref["rand_y"])
    parity = compare(run_onnx(path, xs), ys, kind="psnr", threshold=cfg.min_psnr)
    src_m = read_manifest(src)
    write_manifest(path, format="onnx", precision="int8", preset=src_m.get("preset"), io=onnx_io(path),
                   parity=parity, qdq=counts, mixed_precision=plan.summary(), exposure_cap=src_m.get("exposure_cap"),
                   parity_on="held-out calibration images" if ref["hold_x"] else "random",
                   calibration={"n": len(calib), "hw": list(calib.hw), "method": cfg.calibration.method,
                                "symmetric_activations": True, "per_channel_weights": True, "ops": list(QUANT_OPS)},
                   source={"onnx": src.name, "sha256": src_m.get("sha256", {}).get(src.name)})
    check_parity(parity, path)
    return path
