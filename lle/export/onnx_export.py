"""PyTorch preset -> ONNX with dynamic batch/H/W, checked, shape-inferred, simplified, with lle metadata."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from lle._lazy import require
from lle.errors import ExportError

if TYPE_CHECKING:
    from torch import nn

    from lle.models.checkpoint import ModelCard

__all__ = [
    "ALPHA_NAME", "DEFAULT_OPSET", "INPUT_NAME", "OUTPUT_NAME", "STATE_NAME", "STATE_OUT_NAME", "export_onnx",
    "read_onnx_metadata",
]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
STATE_NAME, ALPHA_NAME, STATE_OUT_NAME = "state", "alpha", "state_out"


def export_onnx(
    model: nn.Module,
    path: Path,
    *,
    card: ModelCard | None = None,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    sample_hw: tuple[int, int] = (64, 96),
) -> Path:
    """Export ``model`` to ``path`` with input ``input`` / output ``output``, (N, 3, H, W) float32, N/H/W dynamic.

    The realtime preset is exported in its video form (:class:`TemporalRealtime`): extra input ``state``
    (N, 6, L, L) and ``alpha`` (1,), extra output ``state_out``. Feeding zeros gives the single-image result.

    The graph is validated with ``onnx.checker`` and shape inference, simplified with onnxslim when ``simplify``,
    and carries metadata props: ``lle.preset``, ``lle.size_multiple``, ``lle.normalisation``, ``lle.version`` and
    ``lle.model_card`` (JSON). The file is written atomically.

    Raises:
        MissingDependencyError: torch/onnx not installed.
        ExportError: tracing or validation failed.
    """
    torch = require("torch", extra="onnx")
    onnx = require("onnx", extra="onnx")
    from lle import __version__

    from lle.models.realtime import RealtimeUNet, TemporalRealtime

    model = model.eval().float().to("cpu", memory_format=torch.contiguous_format)
    mult = int(getattr(model, "size_multiple", 16))
    h, w = (-(-sample_hw[0] // mult) * mult, -(-sample_hw[1] // mult) * mult)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    dyn = {0: "batch", 2: "height", 3: "width"}
    args: tuple = (x,)
    names_in, names_out, axes = [INPUT_NAME], [OUTPUT_NAME], {INPUT_NAME: dyn, OUTPUT_NAME: dyn}
    if isinstance(model, RealtimeUNet):
        # Video graphs carry the coefficient state, so every runtime can smooth it over time (see TemporalRealtime).
        model = TemporalRealtime(model).eval()
        args = (x, torch.zeros(1, 6, model.lowres, model.lowres), torch.zeros(1))
        names_in += [STATE_NAME, ALPHA_NAME]
        names_out += [STATE_OUT_NAME]
        axes.update({STATE_NAME: {0: "batch"}, STATE_OUT_NAME: {0: "batch"}})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, args, str(tmp), dynamo=False, opset_version=opset,
                input_names=names_in, output_names=names_out, dynamic_axes=axes,
            )  # fmt: skip
        m = onnx.load(str(tmp))
        if simplify:
            onnxslim = require("onnxslim", extra="onnx")
            m = onnxslim.slim(m)
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
        meta = {
            "lle.version": __version__,
            "lle.size_multiple": str(mult),
            "lle.preset": card.preset if card else type(model).__name__,
            "lle.normalisation": "RGB NCHW float32 in [0, 1]; no mean/std; clip output to [0, 1]",
        }
        if card is not None:
            meta["lle.model_card"] = card.to_json()
        del m.metadata_props[:]
        for k, v in meta.items():
            m.metadata_props.add(key=k, value=v)
        m.producer_name, m.producer_version = "lle", __version__
        onnx.save(m, str(tmp))
        os.replace(tmp, path)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, ExportError):
            raise
        raise ExportError(f"ONNX export of {type(model).__name__} failed: {str(err).splitlines()[0]}") from err
    log.info("wrote %s", path)
    return path


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """The ``lle.*`` metadata props of an ONNX file (reads only the model proto, not a runtime)."""
    onnx = require("onnx", extra="onnx")
    m = onnx.load(str(path), load_external_data=False)
    out = {p.key: p.value for p in m.metadata_props}
    if "lle.model_card" in out:
        json.loads(out["lle.model_card"])
    return out
