"""The Q/DQ pieces of INT8 export: activation ranges, the Q/DQ writer and its TensorRT-convention check.

Shared by the ONNX Q/DQ step (:mod:`lle.export.ort_quant`) and the mixed-precision search
(:mod:`lle.export.mixed_precision`), which both sit above this module.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._atomic import atomic_path
from lle._lazy import require
from lle.errors import ExportError
from lle.export.progress import report

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet

__all__ = ["QUANT_OPS", "RangeStats", "calibrate_ranges", "calibration_tensors", "check_qdq", "conv_names", "write_qdq"]

log = logging.getLogger(__name__)

QUANT_OPS = ("Conv", "ConvTranspose")
_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


_BINS_PER_OCTAVE = 64
_LOG2_LO, _LOG2_HI = -40, 24
"""Percentile histograms of |x| on a log2 grid from 2**-40 to 2**24: 64 bins per octave, so a threshold is resolved
to 1.1 % of its value whatever the tensor's scale, and no histogram is ever re-binned when a later image is brighter."""
_SAMPLES = 1 << 18
"""About this many values per tensor and image go into a histogram (a strided sample; min/max see all of them)."""


def calibration_tensors(model: Any) -> list[str]:
    """The float tensors the Q/DQ quantizer needs ranges for: every non-constant input and output of a convolution.

    The same choice as onnxruntime's calibrators make for ``op_types_to_calibrate`` = :data:`QUANT_OPS`.
    """
    const = {i.name for i in model.graph.initializer} | {o for n in model.graph.node if n.op_type == "Constant"
                                                         for o in n.output}
    names: list[str] = []
    for n in model.graph.node:
        if n.op_type in QUANT_OPS:
            for t in (n.input[0], *n.output):
                if t and t not in const and t not in names:
                    names.append(t)
    return names


class RangeStats:
    """Streaming activation statistics: min/max over everything seen, and a log2 histogram of |x| per tensor.

    Memory is a few kilobytes per tensor whatever the number or size of the images, so calibration streams.

    Example:
        >>> st = RangeStats(["t"], "percentile", percentile=50.0)
        >>> st.add_reduced("t", -4.0, 3.0, np.array([-4.0, 1.0, 2.0, 3.0], np.float32))
        >>> st.range("t")[1] >= 2.0, st.range("t")[1] <= 2.0 * 2 ** (1 / 64), st.range("t")[0] == -st.range("t")[1]
        (True, True, True)
    """

    def __init__(self, names: Sequence[str], method: str, *, percentile: float = 99.999) -> None:
        if method not in ("minmax", "percentile"):
            raise ValueError(f"streaming calibration supports minmax and percentile, not {method!r}")
        self.method, self.percentile = method, percentile
        self.lo = dict.fromkeys(names, np.inf)
        self.hi = dict.fromkeys(names, -np.inf)
        nbins = (_LOG2_HI - _LOG2_LO) * _BINS_PER_OCTAVE
        self.hist = {n: np.zeros(nbins, np.int64) for n in names} if method == "percentile" else {}

    def add_reduced(self, name: str, lo: float, hi: float, sample: np.ndarray) -> None:
        """Fold in a tensor seen as its exact ``lo``/``hi`` and a ``sample`` of its values (for the histogram)."""
        self.lo[name] = min(self.lo[name], lo)
        self.hi[name] = max(self.hi[name], hi)
        if self.method == "percentile":
            self._count(name, sample.reshape(-1))

    def _count(self, name: str, flat: np.ndarray) -> None:
        v = np.maximum(np.abs(flat, dtype=np.float32), np.float32(2.0**_LOG2_LO))  # 0 counts in the lowest bin
        idx = np.log2(v)
        idx -= _LOG2_LO
        idx *= _BINS_PER_OCTAVE
        h = self.hist[name]
        h += np.bincount(np.minimum(idx.astype(np.intp), h.size - 1), minlength=h.size)

    def range(self, name: str) -> tuple[float, float]:
        """Symmetric (-t, t): t = max |x| (minmax), or the ``percentile`` of |x| capped at max |x| (percentile)."""
        top = max(abs(self.lo[name]), abs(self.hi[name]))
        if self.method == "percentile":
            h = self.hist[name]
            k = int(np.searchsorted(np.cumsum(h) / max(1, int(h.sum())), self.percentile / 100.0))
            top = min(top, 2.0 ** (_LOG2_LO + (k + 1) / _BINS_PER_OCTAVE))
        return -top, top


def calibrate_ranges(src: Path, calib: CalibrationSet, *, method: str = "minmax") -> Any:
    """Activation ranges of every convolution input and output of ``src`` over ``calib``.

    Returned as an onnxruntime ``TensorsData``, as its calibrators return it, so the Q/DQ quantizer takes it as it is.

    ``minmax`` and ``percentile`` (99.999 % of |x|) stream, one image at a time: the graph itself reduces each
    calibrated tensor to its min and max and a strided sample of about 250 000 values (one run per image, no
    full-size copy of any activation leaves it), and the samples go into :class:`RangeStats`. Peak memory is that
    of one plain inference, whatever the number of images. ``entropy`` needs onnxruntime's own calibrator, fed one
    image at a time (slower, and it holds every activation of an image). Each image is reported to
    :func:`lle.export.progress.report` as ``calibration``.

    Raises:
        ExportError: the graph could not be run.
    """
    onnx = require("onnx", extra="onnx")
    ort = require("onnxruntime", extra="onnx")
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

    from lle.export.onnx_export import graph_feed

    if method == "entropy":
        return _ort_calibrate(src, calib, method)
    src = Path(src)
    paths = calib.paths
    h, w = calib.shape[-2:]
    try:
        feed = graph_feed(src)
        model = onnx.load(str(src))
        names = calibration_tensors(model)
        stats = RangeStats(names, method)
        with tempfile.TemporaryDirectory(prefix="lle-calib-") as tmp:
            steps = _sample_steps(ort, model, names, feed(calib.load(paths[0])), Path(tmp) / "sizes.onnx")
            so = ort.SessionOptions()
            so.enable_cpu_mem_arena = False  # hand each image's activations back instead of keeping the peak
            so.execution_order = ort.ExecutionOrder.PRIORITY_BASED  # the default runs the reductions last, holding
            # every calibrated activation of the image at once (2.6 GB instead of 0.7 GB: quality preset, 720p)
            sess = ort.InferenceSession(str(_reducing_graph(model, names, steps, Path(tmp) / "calib.onnx")), so,
                                        providers=["CPUExecutionProvider"])
            del model
            outs = [f"{n}{sfx}" for n in names for sfx in ("__min", "__max", "__sample")]
            for i, p in enumerate(paths, 1):
                got = iter(sess.run(outs, feed(calib.load(p))))
                for n in names:
                    stats.add_reduced(n, float(next(got)), float(next(got)), next(got))
                report(i, len(paths), "calibration")
    except Exception as err:
        raise ExportError(f"INT8 calibration of {src.name} at {h}x{w} failed: {str(err).splitlines()[0]}") from err
    kind = CalibrationMethod.MinMax if method == "minmax" else CalibrationMethod.Percentile
    return TensorsData(kind, {n: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
                              for n in names for lo, hi in [stats.range(n)]})


def _sample_steps(ort: Any, model: Any, names: Sequence[str], x: dict[str, np.ndarray], path: Path) -> list[int]:
    """Per calibrated tensor, the H/W stride that leaves about :data:`_SAMPLES` values of it per image.

    Sizes come from one run of a small corner of ``x`` (1/8 of each side) scaled up by area.
    """
    inp = next(iter(x.values()))
    h, w = inp.shape[-2], inp.shape[-1]
    ch, cw = min(h, -(-max(1, h // 8) // 16) * 16), min(w, -(-max(1, w // 8) // 16) * 16)
    small = {k: (v[..., :ch, :cw] if v.ndim == 4 and v.shape[-2:] == (h, w) else v) for k, v in x.items()}
    sess = ort.InferenceSession(str(_with_outputs(model, names, path)), providers=["CPUExecutionProvider"])
    scale = (h * w) / (ch * cw)
    steps = [max(1, int((a.size * scale / _SAMPLES) ** 0.5)) if a.ndim == 4 else 1
             for a in sess.run(list(names), small)]
    del sess
    return steps


def _with_outputs(model: Any, names: Sequence[str], path: Path) -> Path:
    """Save a copy of ``model`` whose graph outputs are ``names`` (the calibrated tensors)."""
    onnx = require("onnx", extra="onnx")
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    m.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    onnx.save(m, str(path))
    return path


def _reducing_graph(model: Any, names: Sequence[str], steps: Sequence[int], path: Path) -> Path:
    """Save a copy of ``model`` that outputs per tensor ``t`` in ``names`` its reductions.

    ``t__min``, ``t__max`` (scalars) and ``t__sample`` (``t[:, :, ::step, ::step]``).
    """
    onnx = require("onnx", extra="onnx")
    from onnx import helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    g = m.graph
    step_of = dict(zip(names, steps, strict=True))
    nodes: list[Any] = []
    for node in [None, *g.node]:  # each tensor's reductions right after its producer (None: the graph inputs),
        if node is not None:       # so it is freed as early as before
            nodes.append(node)
        for n in (node.output if node is not None else [i.name for i in g.input]):
            if n not in step_of:
                continue
            i, step = len(g.output) // 3, step_of.pop(n)
            nodes.append(helper.make_node("ReduceMin", [n], [f"{n}__min"], keepdims=0, name=f"lle_calib_min_{i}"))
            nodes.append(helper.make_node("ReduceMax", [n], [f"{n}__max"], keepdims=0, name=f"lle_calib_max_{i}"))
            if step > 1:
                args = []
                for key, val in {"starts": [0, 0], "ends": [2**62, 2**62], "axes": [2, 3], "steps": [step] * 2}.items():
                    g.initializer.append(onnx.numpy_helper.from_array(np.array(val, np.int64), f"lle_calib_{key}_{i}"))
                    args.append(f"lle_calib_{key}_{i}")
                nodes.append(helper.make_node("Slice", [n, *args], [f"{n}__sample"], name=f"lle_calib_sample_{i}"))
            else:
                nodes.append(helper.make_node("Identity", [n], [f"{n}__sample"], name=f"lle_calib_sample_{i}"))
            for sfx in ("__min", "__max", "__sample"):
                g.output.append(helper.make_tensor_value_info(f"{n}{sfx}", onnx.TensorProto.FLOAT, None))
    if step_of:
        raise ExportError(f"no node of {path.name} produces {next(iter(step_of))!r}")
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(m, str(path))
    return path


def _ort_calibrate(src: Path, calib: CalibrationSet, method: str) -> Any:
    """onnxruntime's own calibrator (for ``entropy``), one image per batch, histograms merged across images."""
    quant = require("onnxruntime.quantization", extra="onnx")
    from lle.export.calibration import ort_reader
    from lle.export.onnx_export import graph_feed

    feed = graph_feed(Path(src))
    paths = calib.paths
    try:
        with tempfile.TemporaryDirectory(prefix="lle-calib-") as tmp:
            calibrator = quant.create_calibrator(
                Path(src), list(QUANT_OPS), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                calibrate_method=getattr(quant.CalibrationMethod, _METHODS[method]),
                extra_options={"symmetric": True, "moving_average": False},
            )  # fmt: skip
            for i in range(len(paths)):
                calibrator.collect_data(ort_reader(dataclasses.replace(calib, paths=paths[i : i + 1]), feed))
                report(i + 1, len(paths), "calibration")
            ranges = calibrator.compute_data()
            del calibrator
    except Exception as err:
        raise ExportError(f"INT8 calibration of {Path(src).name} failed: {str(err).splitlines()[0]}") from err
    return ranges


def write_qdq(src: Path, dst: Path, ranges: Any, *, keep_float: Sequence[str] = (),
              only: Sequence[str] | None = None) -> Path:
    """Write the Q/DQ graph of ``src`` with activation ``ranges`` to ``dst`` (atomically).

    ``keep_float`` names convolutions left in float (mixed precision); ``only``, when given, quantizes just those.

    Raises:
        ExportError: the quantizer failed.
    """
    quant = require("onnxruntime.quantization", extra="onnx")
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    src, dst = Path(src), Path(dst)
    try:
        with tempfile.TemporaryDirectory(prefix="lle-qdq-") as work:
            staged = Path(work) / src.name  # shape inference writes a sibling file: keep it out of the export dir
            shutil.copyfile(src, staged)
            model = load_model_with_shape_infer(staged)
        quantizer = QDQQuantizer(
            model, True, False, quant.QuantType.QInt8, quant.QuantType.QInt8, ranges,
            list(only) if only is not None else None, list(keep_float), list(QUANT_OPS),
            {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False, "DedicatedQDQPair": False},
        )  # fmt: skip
        quantizer.quantize_model()
        with atomic_path(dst) as tmp:
            quantizer.model.save_model_to_file(str(tmp), False)
    except Exception as err:
        raise ExportError(f"Q/DQ quantization of {src.name} failed: {str(err).splitlines()[0]}") from err
    return dst


def conv_names(model: Any) -> list[str]:
    """Names of the quantizable convolutions of an ``onnx.ModelProto``, in graph order."""
    return [n.name for n in model.graph.node if n.op_type in QUANT_OPS]


def check_qdq(model: Any, keep_float: Sequence[str] = ()) -> dict[str, int]:
    """Check the TensorRT Q/DQ conventions on an ``onnx.ModelProto``; returns counts of what was checked.

    Every Conv/ConvTranspose except those named in ``keep_float`` (mixed precision) reads its data and weight
    through DequantizeLinear, weights are INT8 initialisers (per-channel scales), and every zero point is 0.

    Raises:
        ExportError: naming the first node that breaks a convention.
    """
    from onnx import numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    const = {n.output[0]: n.attribute[0].t for n in g.node if n.op_type == "Constant"}
    producer = {o: n for n in g.node for o in n.output}
    counts = {"convs": 0, "float_convs": 0, "qdq_pairs": 0, "per_channel_weights": 0}
    floats = set(keep_float)
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
            zp = init.get(n.input[2]) or const.get(n.input[2])
            if zp is not None and numpy_helper.to_array(zp).any():
                raise ExportError(f"{n.op_type} {n.name!r} has a non-zero zero point; TensorRT needs symmetric INT8")
        if n.op_type == "QuantizeLinear":
            counts["qdq_pairs"] += 1
        if n.op_type not in QUANT_OPS:
            continue
        if n.name in floats:
            counts["float_convs"] += 1
            continue
        counts["convs"] += 1
        for slot, what in ((0, "data"), (1, "weight")):
            dq = producer.get(n.input[slot])
            if dq is None or dq.op_type != "DequantizeLinear":
                raise ExportError(f"{n.op_type} {n.name!r}: {what} input is not dequantized (no Q/DQ in front)")
            if slot == 1:
                w = init.get(dq.input[0])
                scale = init.get(dq.input[1])
                if w is None or w.data_type != 3:  # TensorProto.INT8
                    raise ExportError(f"{n.op_type} {n.name!r}: weight is not an INT8 initialiser")
                if scale is not None and len(scale.dims) == 1 and scale.dims[0] > 1:
                    counts["per_channel_weights"] += 1
    if counts["convs"] == 0:
        raise ExportError("the Q/DQ graph has no quantized convolutions")
    return counts
