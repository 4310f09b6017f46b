"""The backend contract: load an artifact, run (N, 3, H, W) float32 batches in [0, 1], close, describe."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from lle.errors import BackendError

__all__ = ["Backend", "BackendInfo", "Precision", "TensorSpec"]

Precision = Literal["fp32", "fp16", "bf16", "int8"]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Input constraints of a loaded artifact. ``None`` in ``shape`` = dynamic; H and W must be multiples of
    ``size_multiple`` (the :class:`lle.pipeline.Enhancer` pads for that)."""

    shape: tuple[int | None, ...] = (None, 3, None, None)
    dtype: str = "float32"
    size_multiple: int = 1
    min_hw: tuple[int, int] | None = None
    max_hw: tuple[int, int] | None = None


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

    def __init__(self, model_path: Path, *, device: str = "auto", precision: Precision = "fp32", **options: Any) -> None:
        self.model_path, self.device, self.precision = Path(model_path), device, precision
        self.options = options

    @abc.abstractmethod
    def load(self) -> None:
        """Import the runtime and load the artifact. Raises BackendError / MissingDependencyError."""

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch (N, 3, H, W) float32 in [0, 1] -> same shape float32 (not yet clipped)."""

    @property
    @abc.abstractmethod
    def input_spec(self) -> TensorSpec:
        """Constraints on ``infer``'s input."""

    def describe(self) -> BackendInfo:
        """Name, precision, device, artifact and runtime version."""
        return BackendInfo(self.name, self.precision, self.device, str(self.model_path), "")

    def close(self) -> None:  # noqa: B027  (optional hook, idempotent)
        """Release the runtime's resources. Safe to call twice."""

    def check_input(self, batch: np.ndarray) -> None:
        """Raise BackendError naming expected vs actual shape/dtype when ``batch`` violates ``input_spec``."""
        spec = self.input_spec
        ok = batch.ndim == len(spec.shape) and all(s is None or s == b for s, b in zip(spec.shape, batch.shape))
        if not ok or batch.dtype != np.dtype(spec.dtype):
            raise BackendError(
                f"{self.name}: input {tuple(batch.shape)} {batch.dtype}, expected {spec.shape} {spec.dtype}"
            )
        m = spec.size_multiple
        if m > 1 and (batch.shape[-2] % m or batch.shape[-1] % m):
            h, w = batch.shape[-2:]
            raise BackendError(
                f"{self.name}: H x W = {h} x {w} is not a multiple of {m}",
                hint=f"pad to {-(-h // m) * m} x {-(-w // m) * m} (lle.pipeline.Enhancer does this)",
            )

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
