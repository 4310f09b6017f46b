"""The backend contract: load an artifact, run (N, 3, H, W) float32 batches in [0, 1], close, describe."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from lle.errors import BackendError

__all__ = [
    "ALPHA", "FLOAT_IO", "FRAME_IO", "I420_IO", "INPUT", "OUTPUT", "STATE", "STATE_OUT", "Backend", "BackendInfo",
    "Precision", "TensorSpec",
]

INPUT, OUTPUT, STATE, ALPHA, STATE_OUT = "input", "output", "state", "alpha", "state_out"
"""Tensor names of every graph ``lle export`` writes (``state``/``alpha``/``state_out``: realtime video graphs)."""

FLOAT_IO = "float32-nchw-rgb"
"""``lle.io`` metadata of graphs that take (N, 3, H, W) float32 RGB in [0, 1] (also assumed when absent)."""
FRAME_IO = "uint8-nhwc-bgr"
"""``lle.io`` metadata of graphs that take and return (N, H, W, 3) uint8 BGR frames as a decoder gives them."""
I420_IO = "uint8-i420"
"""``lle.io`` metadata of graphs that take and return (N, H*3/2, W) uint8 I420 frames (Y plane, then U and V at half
resolution; BT.601 limited range), as PyAV decodes ``yuv420p`` video: no colour conversion outside the graph."""

Precision = Literal["fp32", "fp16", "bf16", "int8"]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Input constraints of a loaded artifact.

    ``None`` in ``shape`` = dynamic; H and W must be multiples of ``size_multiple`` (the
    :class:`lle.pipeline.Enhancer` pads for that).
    """

    shape: tuple[int | None, ...] = (None, 3, None, None)
    dtype: str = "float32"
    layout: str = "NCHW"
    """``NCHW`` (float32 RGB in [0, 1]), ``NHWC`` (uint8 frames as a decoder gives them) or ``I420`` (uint8 planar
    4:2:0 frames, (N, H*3/2, W), H and W even)."""
    channels: str = "RGB"
    """Channel order of the input and output: ``RGB``, ``BGR`` (OpenCV/PyAV ``bgr24`` frames) or ``YUV`` (I420)."""
    size_multiple: int = 1
    min_hw: tuple[int, int] | None = None
    max_hw: tuple[int, int] | None = None
    state_shape: tuple[int, ...] | None = None
    """(C, L, L) for video graphs of the realtime preset (extra input ``state`` and ``alpha``), else ``None``."""
    exposure_cap: tuple[float, ...] | None = None
    """The quality model's scene-adaptive exposure, its knots ``[m_a, cap_a, ...]`` (inside the graph); the
    Enhancer needs it to keep the whole image's exposure when it tiles. ``None``: none, or not recorded."""

    @classmethod
    def for_frames(cls, *, size_multiple: int = 1, state_shape: tuple[int, ...] | None = None) -> TensorSpec:
        """The spec of an artifact that takes and returns (N, H, W, 3) uint8 BGR frames (:data:`FRAME_IO`)."""
        return cls(shape=(None, None, None, 3), dtype="uint8", layout="NHWC", channels="BGR",
                   size_multiple=size_multiple, state_shape=state_shape)

    @classmethod
    def for_i420(cls, *, state_shape: tuple[int, ...] | None = None) -> TensorSpec:
        """The spec of an artifact that takes and returns (N, H*3/2, W) uint8 I420 frames (:data:`I420_IO`)."""
        return cls(shape=(None, None, None), dtype="uint8", layout="I420", channels="YUV", size_multiple=2,
                   state_shape=state_shape)

    @property
    def frames(self) -> bool:
        """True when the artifact takes and returns (N, H, W, 3) uint8 BGR frames (no pre/post-processing)."""
        return self.layout == "NHWC" and self.dtype == "uint8"

    @property
    def i420(self) -> bool:
        """True when the artifact takes and returns (N, H*3/2, W) uint8 I420 frames (see :data:`I420_IO`)."""
        return self.layout == "I420"

    @property
    def raw_frames(self) -> bool:
        """True when the artifact takes decoded uint8 frames as they are (BGR or I420): no float pre/post-processing."""
        return self.frames or self.i420

    @property
    def hw_axes(self) -> tuple[int, int]:
        """Axes of H and W in the input (for I420, axis 1 holds H*3/2 rows)."""
        return (1, 2) if self.layout in ("NHWC", "I420") else (2, 3)


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What ``describe()`` returns: shown by ``lle run``/``lle bench`` and written into reports."""

    name: str
    precision: str
    device: str
    artifact: str
    runtime_version: str
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(abc.ABC):
    """Runs an exported model. In and out: (N, 3, H, W) float32 in [0, 1].

    Construction is cheap and imports nothing; :meth:`load` imports the runtime and reads the artifact.
    Use as a context manager: ``with load_backend("ort", path) as b: y = b.infer(x)``.
    """

    name: ClassVar[str]
    extra: ClassVar[str]
    remote: ClassVar[bool] = False
    """MODEL names a model on a server, not a local file: a preset name is passed through as it is."""

    def __init__(
        self, model_path: Path, *, device: str = "auto", precision: Precision = "fp32", **options: Any
    ) -> None:
        self.model_path, self.device, self.precision = Path(model_path), device, precision
        self.options = options

    @abc.abstractmethod
    def load(self) -> None:
        """Import the runtime and load the artifact. Raises BackendError / MissingDependencyError."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch (N, 3, H, W) float32 in [0, 1] -> same shape float32 (not yet clipped).

        Raises:
            BackendError: not loaded, or ``batch`` does not fit :attr:`input_spec`.
        """
        self.check_loaded()
        self.check_input(batch)
        return self._run(self.feeds(batch), (OUTPUT,))[0]

    def _run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        """Run the loaded artifact on ``feeds`` (see :meth:`feeds`); the arrays named ``outputs``, in that order.

        The one method a backend implements to run: :meth:`infer` and :meth:`infer_stateful` check the load state
        and the inputs, then call it. (A backend may override :meth:`infer` instead, as out-of-tree ones did.)
        """
        raise NotImplementedError(f"{type(self).__name__} implements neither _run() nor infer()")

    def feeds(self, batch: np.ndarray, state: np.ndarray | None = None, alpha: float = 0.0) -> dict[str, np.ndarray]:
        """Input dict for :meth:`_run`: ``input``, plus ``state`` (zeros when None) and ``alpha`` for video graphs."""
        feeds = {INPUT: batch}
        if self.input_spec.state_shape is not None:
            feeds[STATE] = self.zero_state(batch.shape[0]) if state is None else state
            feeds[ALPHA] = np.array([alpha], np.float32)
        return feeds

    def _loaded(self) -> bool:
        """Whether :meth:`load` has run (and :meth:`close` has not). Backends with a session override it."""
        return True

    def check_loaded(self) -> None:
        """Raise BackendError when the backend is used before :meth:`load` (or after :meth:`close`)."""
        if not self._loaded():
            raise BackendError(f"{self.name} backend: call load() first")

    @property
    @abc.abstractmethod
    def input_spec(self) -> TensorSpec:
        """Constraints on ``infer``'s input."""

    def infer_iter(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """``infer`` over many batches, results in order. Backends with asynchronous queues keep several in flight."""
        for b in batches:
            yield self.infer(b)

    @property
    def stateful(self) -> bool:
        """True when the artifact carries temporal state (see :meth:`infer_stateful`)."""
        return self.input_spec.state_shape is not None

    def zero_state(self, n: int = 1) -> np.ndarray:
        """An all-zero state for ``n`` frames: (n, C, L, L) float32.

        Raises:
            BackendError: the artifact has no temporal state.
        """
        shape = self.input_spec.state_shape
        if shape is None:
            raise self._stateless_error()
        return np.zeros((n, *shape), np.float32)

    def _stateless_error(self) -> BackendError:
        return BackendError(f"{self.name}: {self.model_path.name} has no temporal state (only realtime models do)",
                            hint="use infer() for single images")

    def infer_stateful(self, batch: np.ndarray, state: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """One video step: ``(output, state_out)`` with ``state_out = alpha * state + (1 - alpha) * coefficients``.

        ``batch`` is (N, 3, H, W) float32 in [0, 1], ``state`` (N, C, L, L) float32 (zeros at a scene cut), ``alpha``
        in [0, 1]; ``alpha = 0`` gives the single-image result. Only artifacts with :attr:`stateful` support it.

        Raises:
            BackendError: not loaded, the artifact has no temporal state, or the inputs do not fit.
        """
        self.check_loaded()
        if self.input_spec.state_shape is None:
            raise self._stateless_error()
        self.check_input(batch)
        self.check_state(batch, state, alpha)
        y, s = self._run(self.feeds(batch, state, alpha), (OUTPUT, STATE_OUT))
        return y, s

    def check_state(self, batch: np.ndarray, state: np.ndarray, alpha: float) -> None:
        """Raise BackendError when ``state``/``alpha`` do not fit :meth:`infer_stateful`."""
        shape = self.input_spec.state_shape
        if shape is None:
            self.zero_state()
        expected = (batch.shape[0], *(shape or ()))
        if state.shape != expected or state.dtype != np.float32:
            raise BackendError(f"{self.name}: state {state.shape} {state.dtype}, expected {expected} float32")
        if not 0.0 <= alpha <= 1.0:
            raise BackendError(f"{self.name}: alpha={alpha} is outside [0, 1]")

    def describe(self) -> BackendInfo:
        """Name, precision, device, artifact and runtime version."""
        return BackendInfo(self.name, self.precision, self.device, str(self.model_path), "")

    def close(self) -> None:  # noqa: B027  (optional hook, idempotent)
        """Release the runtime's resources. Safe to call twice."""

    def check_input(self, batch: np.ndarray) -> None:
        """Raise BackendError naming expected vs actual shape/dtype when ``batch`` violates ``input_spec``."""
        spec = self.input_spec
        ok = batch.ndim == len(spec.shape)
        ok = ok and all(s is None or s == b for s, b in zip(spec.shape, batch.shape, strict=True))
        if not ok or batch.dtype != np.dtype(spec.dtype):
            raise BackendError(
                f"{self.name}: input {tuple(batch.shape)} {batch.dtype}, expected {spec.shape} {spec.dtype}"
            )
        m = spec.size_multiple
        h, w = (batch.shape[a] for a in spec.hw_axes)
        if spec.i420:
            if h % 3 or w % 2 or not h:
                raise BackendError(
                    f"{self.name}: input {tuple(batch.shape)} is not an I420 frame of even H x W "
                    f"(expected (N, H*3/2, W))", hint="pad the frame to an even size before converting it to I420")
            return
        if m > 1 and (h % m or w % m):
            raise BackendError(
                f"{self.name}: H x W = {h} x {w} is not a multiple of {m}",
                hint=f"pad to {-(-h // m) * m} x {-(-w // m) * m} (lle.pipeline.Enhancer does this)",
            )

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
