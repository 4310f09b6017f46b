"""Checks shared by the backends that run exported graphs (onnxruntime, OpenVINO, TensorRT): I/O names and shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lle.backends.base import ALPHA, FLOAT_IO, FRAME_IO, I420_IO, INPUT, OUTPUT, STATE, STATE_OUT, TensorSpec
from lle.errors import BackendError

__all__ = ["check_graph_io", "graph_spec", "parse_size_multiple"]

Shape = Sequence[int | None]


def check_graph_io(
    backend: str, artifact: str, inputs: Mapping[str, Shape], outputs: Sequence[str], *, frames: bool = False,
    i420: bool = False,
) -> tuple[int, int, int] | None:
    """Validate an exported lle graph's I/O. Returns the state shape (C, L, L) of a realtime video graph, else None.

    ``inputs`` maps input names to shapes (``None`` = dynamic); ``frames`` says the graph takes (N, H, W, 3) uint8
    frames (metadata ``lle.io``) rather than (N, 3, H, W) float32; ``i420``: (N, H*3/2, W) uint8 I420 frames.

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
    if i420:
        if len(x) != 3:
            raise BackendError(f"{backend}: {artifact} input 'input' has shape {list(x)}, expected (N, H*3/2, W)")
    else:
        channel_axis, layout = (3, "(N, H, W, 3)") if frames else (1, "(N, 3, H, W)")
        if len(x) != 4 or x[channel_axis] not in (3, None):
            raise BackendError(f"{backend}: {artifact} input 'input' has shape {list(x)}, expected {layout}")
    if STATE not in inputs:
        return None
    s = inputs[STATE]
    if ALPHA not in inputs or STATE_OUT not in outputs or len(s) != 4 or None in (s[1], s[2], s[3]):
        raise BackendError(
            f"{backend}: {artifact} has a 'state' input {list(s)} but not the realtime video I/O ({got})",
            hint="re-export it with `lle export`",
        )
    return (int(s[1]), int(s[2]), int(s[3]))  # type: ignore[arg-type]


def graph_spec(
    backend: str, artifact: str, inputs: Mapping[str, Shape], outputs: Sequence[str], meta: Mapping[str, str | None]
) -> TensorSpec:
    """The :class:`TensorSpec` of an exported graph.

    Read from its I/O and its ``lle.*`` metadata (``lle.io``, ``lle.size_multiple``).

    Raises:
        BackendError: unknown ``lle.io`` value, or I/O and metadata that do not fit.
    """
    io = meta.get("lle.io") or FLOAT_IO
    if io not in (FLOAT_IO, FRAME_IO, I420_IO):
        raise BackendError(f"{backend}: {artifact} has lle.io={io!r}, which this lle does not know",
                           hint="re-export it with this version's `lle export`")
    frames, i420 = io == FRAME_IO, io == I420_IO
    state = check_graph_io(backend, artifact, inputs, outputs, frames=frames, i420=i420)
    mult = parse_size_multiple(backend, artifact, meta.get("lle.size_multiple"))
    if i420:
        return TensorSpec.for_i420(state_shape=state)
    if frames:
        return TensorSpec.for_frames(size_multiple=mult, state_shape=state)
    cap = parse_exposure_cap(meta.get("lle.exposure_cap"))
    return TensorSpec(size_multiple=mult, state_shape=state, exposure_cap=cap)


def parse_exposure_cap(value: str | None) -> tuple[float, ...] | None:
    """``lle.exposure_cap`` metadata (the cap curve's knots, ``"m_a,cap_a,m_b,cap_b,..."``) -> floats or None."""
    try:
        v = tuple(float(t) for t in (value or "").split(","))
    except ValueError:
        return None
    return v if len(v) % 2 == 0 else None


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

