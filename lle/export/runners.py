"""The artifact runs behind every parity check of :mod:`lle.export`: the backends ``lle run`` uses, loaded by name.

What is checked is what users run (Polygraphy's comparator uses its own runners in the same way): an ONNX graph runs
in :class:`~lle.backends.ort_backend.OrtBackend` on the CPU, an OpenVINO IR in
:class:`~lle.backends.openvino_backend.OpenVinoBackend` in FP32 inference precision, an engine in
:class:`~lle.backends.trt_backend.TrtBackend`. Realtime video graphs get a zero ``state`` and ``alpha``: the
single-image result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_artifact", "run_engine", "run_onnx", "run_ov"]


def run_artifact(backend: str, path: Path, xs: Sequence[np.ndarray], **opts: Any) -> list[np.ndarray]:
    """``output`` of ``path`` for each batch of ``xs``, run by ``load_backend(backend, path, **opts)``.

    Each batch is cast to the artifact's input dtype ((N, 3, H, W) float32 in [0, 1], or (N, H, W, 3) uint8 frames).

    Raises:
        MissingDependencyError / BackendError: the runtime is missing, or the artifact does not load or run.
    """
    from lle.backends.registry import load_backend

    be = load_backend(backend, Path(path), **opts)
    try:
        dtype = np.dtype(be.input_spec.dtype)
        return [be.infer(np.ascontiguousarray(x, dtype=dtype)) for x in xs]
    finally:
        be.close()


def run_onnx(path: Path, xs: Sequence[np.ndarray], *, threads: int = 0) -> list[np.ndarray]:
    """Run the ONNX graph at ``path`` on CPU with onnxruntime (``threads`` 0: its default); ``output`` per input."""
    return run_artifact("onnxruntime", path, xs, device="cpu", threads=threads)


def run_ov(path: Path, xs: Sequence[np.ndarray], *, device: str = "CPU", cache_dir: str = "") -> list[np.ndarray]:
    """Run IR ``path`` on ``device`` in FP32 inference precision (also for INT8 IRs); ``output`` per input."""
    return run_artifact("openvino", path, xs, device=device, precision="fp32", cache_dir=cache_dir, static=False)


def run_engine(plan: Path, feeds: Sequence[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Run TensorRT engine ``plan`` on CUDA on each input dict (its ``input``); ``output`` (float32) per feed."""
    from lle.backends.base import INPUT

    return run_artifact("tensorrt", plan, [f[INPUT] for f in feeds], device="cuda")
