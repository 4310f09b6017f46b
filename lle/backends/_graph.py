"""Checks shared by the backends that run exported graphs (onnxruntime, OpenVINO, TensorRT): I/O names and shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from lle.errors import BackendError

if TYPE_CHECKING:
    from lle.backends.base import Backend

__all__ = ["ALPHA", "INPUT", "OUTPUT", "STATE", "STATE_OUT", "check_graph_io", "graph_feeds", "parse_size_multiple"]

# Same names as lle.export.onnx_export (not imported: that module belongs to the torch/onnx side).
INPUT, OUTPUT, STATE, ALPHA, STATE_OUT = "input", "output", "state", "alpha", "state_out"

Shape = Sequence[int | None]


def check_graph_io(
    backend: str, artifact: str, inputs: Mapping[str, Shape], outputs: Sequence[str]
) -> tuple[int, int, int] | None:
    """Validate an exported lle graph's I/O. Returns the state shape (6, L, L) of a realtime video graph, else None.

    ``inputs`` maps input names to shapes (``None`` = dynamic).

    Raises:
        BackendError: names or shapes are not those written by ``lle export``.
    """
    got = f"inputs {sorted(inputs)}, outputs {sorted(outputs)}"
    x = inputs.get(INPUT)
    if x is None or OUTPUT not in outputs:
        raise BackendError(
            f"{backend}: {artifact} is not an lle model ({got}; expected input 'input' and output 'output')",
            hint="export it with `lle export`",
        )
    if len(x) != 4 or x[1] not in (3, None):
        raise BackendError(f"{backend}: {artifact} input 'input' has shape {list(x)}, expected (N, 3, H, W)")
    if STATE not in inputs:
        return None
    s = inputs[STATE]
    if ALPHA not in inputs or STATE_OUT not in outputs or len(s) != 4 or s[1] != 6 or s[2] is None or s[3] is None:
        raise BackendError(
            f"{backend}: {artifact} has a 'state' input {list(s)} but not the realtime video I/O ({got})",
            hint="re-export it with `lle export`",
        )
    return (6, int(s[2]), int(s[3]))


def parse_size_multiple(backend: str, artifact: str, value: str | None) -> int:
    """``lle.size_multiple`` metadata as an int.

    Raises:
        BackendError: missing or not a positive integer.
    """
    if value is None:
        raise BackendError(
            f"{backend}: {artifact} has no 'lle.size_multiple' metadata (not exported by lle?)",
            hint="export it with `lle export`",
        )
    try:
        m = int(value)
    except ValueError:
        m = 0
    if m < 1:
        raise BackendError(f"{backend}: {artifact} has lle.size_multiple={value!r}, expected a positive integer")
    return m


def graph_feeds(
    backend: Backend, batch: np.ndarray, state: np.ndarray | None = None, alpha: float = 0.0
) -> dict[str, np.ndarray]:
    """Input dict for an exported graph: ``input``, plus ``state`` (zeros when None) and ``alpha`` for video graphs."""
    feeds = {INPUT: batch}
    if backend.input_spec.state_shape is not None:
        feeds[STATE] = backend.zero_state(batch.shape[0]) if state is None else state
        feeds[ALPHA] = np.array([alpha], np.float32)
    return feeds
