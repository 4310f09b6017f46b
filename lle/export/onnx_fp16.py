"""FP32 ONNX -> mixed-precision (autocast) FP16 ONNX with FP32 inputs and outputs.

This is the FP16 input for a strongly typed TensorRT network: the precision of every tensor is written in the graph,
so TensorRT 10/11 needs no FP16 builder flag. Compute runs in FP16; graph inputs and outputs stay FP32 (a Cast at each
boundary), inputs that ONNX requires in FP32 (Resize ``scales``) stay FP32, and ops in ``keep_fp32`` run in FP32.
Initialisers used only by FP16 consumers are stored as FP16, which halves the file.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lle._atomic import atomic_path
from lle._lazy import require
from lle.errors import ExportError

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig

__all__ = ["DEFAULT_KEEP_FP32", "convert_to_fp16", "to_onnx_fp16"]

# Reductions over many values lose precision in fp16 accumulation; none is in the presets today, listed for safety.
DEFAULT_KEEP_FP32: frozenset[str] = frozenset({"ReduceSum", "ReduceSumSquare", "ReduceL2", "Softmax", "Range"})


def convert_to_fp16(model: Any, *, keep_fp32: Iterable[str] = DEFAULT_KEEP_FP32) -> Any:
    """Return an FP16 copy of the ``onnx.ModelProto`` ``model`` with FP32 graph inputs/outputs.

    onnxruntime's converter (``onnxruntime.transformers.float16``) does the work: ``keep_io_types`` puts a Cast at
    each graph boundary, ``op_block_list`` keeps ``keep_fp32`` in FP32, inputs ONNX types as FP32 (Resize
    ``scales``) stay FP32. Its Casts are appended out of order, so the nodes are sorted topologically again (the
    checker and TensorRT's parser need that).

    Raises:
        ExportError: the converted graph fails shape inference or the ONNX checker.
    """
    onnx = require("onnx", extra="onnx")
    float16 = require("onnxruntime.transformers.float16", extra="onnx")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "values out of fp16 range were truncated": the parity check judges that
        m = float16.convert_float_to_float16(copy.deepcopy(model), keep_io_types=True,
                                             op_block_list=sorted(keep_fp32))  # fmt: skip
    _sort_nodes(m.graph)
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
    except Exception as err:
        raise ExportError(f"FP16 conversion produced an invalid graph: {str(err).splitlines()[0]}") from err
    return m


def _sort_nodes(graph: Any) -> None:
    """Reorder ``graph.node`` topologically, keeping the given order wherever it already is valid."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[Any] = []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ExportError(f"FP16 conversion left a cycle or a missing input at node {rest[0].name!r}")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def to_onnx_fp16(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: FP32 ``model.onnx`` -> ``model.fp16.onnx`` (FP32 I/O), checked in onnxruntime against torch.

    Raises:
        ParityError: max abs diff to torch above ``cfg.atol_fp16`` or a non-finite output.
    """
    from lle.export.onnx_export import require_float_graph

    require_float_graph(src, "FP16 ONNX conversion")
    onnx = require("onnx", extra="onnx")
    from lle.export.manifest import check_parity, compare, read_manifest, write_manifest
    from lle.export.onnx_export import load_reference, onnx_io
    from lle.export.runners import run_onnx

    src = Path(src)
    path = Path(out_dir) / "model.fp16.onnx"
    m = convert_to_fp16(onnx.load(str(src)))
    with atomic_path(path) as tmp:
        onnx.save(m, str(tmp))
    ref = load_reference(src)
    parity = compare(run_onnx(path, ref["rand_x"]), ref["rand_y"], kind="atol", threshold=cfg.atol_fp16)
    src_m = read_manifest(src)
    write_manifest(path, format="onnx", precision="fp16", preset=src_m.get("preset"), io=onnx_io(path),
                   parity=parity, source={"onnx": src.name, "sha256": src_m.get("sha256", {}).get(src.name)},
                   exposure_cap=src_m.get("exposure_cap"),
                   note="autocast FP16 compute, FP32 graph inputs/outputs; input of a strongly typed TensorRT build")
    check_parity(parity, path)
    return path
