"""PyTorch backend: runs ``.safetensors`` weights (with their model card) on CPU or CUDA in fp32/bf16/fp16."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._lazy import require
from lle.backends.base import ALPHA, INPUT, STATE, STATE_OUT, Backend, BackendInfo, TensorSpec
from lle.backends.registry import backend_suffixes
from lle.errors import BackendError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    """``device``: auto | cpu | cuda[:i]; ``precision``: fp32 | bf16 | fp16 (fp16 only on CUDA); channels_last always.

    Options: ``threads`` (CPU threads, process-wide ``torch.set_num_threads``; 0 = torch's default); ``frames``
    (True: take and return (N, H, W, 3) uint8 BGR frames through :func:`lle.models.frames.frame_graph`, the same
    graph ``lle export --io uint8`` writes; ``"i420"``: (N, H*3/2, W) uint8 I420 frames, as ``--io i420``; fp32
    only).

    The realtime preset is wrapped in :class:`lle.models.realtime.TemporalRealtime`, so :meth:`infer_stateful`
    behaves exactly like the exported video graphs.
    """

    name = "torch"
    extra = "torch"

    def __init__(self, model_path: Any, **kw: Any) -> None:
        super().__init__(model_path, **kw)
        self._model: nn.Module | None = None
        self._temporal: nn.Module | None = None
        self._state_shape: tuple[int, ...] | None = None
        self._mult = 16
        self._frames = self._i420 = False

    def load(self) -> None:
        torch = require("torch", extra=self.extra)
        from lle.models.checkpoint import load_model

        if self.model_path.suffix not in backend_suffixes(self.name):
            raise BackendError(
                f"torch backend runs .safetensors weights, got {self.model_path.name}",
                hint="use --backend onnxruntime/openvino/tensorrt for exported artifacts",
            )
        dev = "cuda" if self.device == "auto" and torch.cuda.is_available() else self.device
        dev = "cpu" if dev == "auto" else dev
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("torch backend: CUDA requested but torch sees no GPU", hint="use --device cpu")
        if self.precision == "fp16" and not dev.startswith("cuda"):
            raise BackendError("torch backend: fp16 needs CUDA", hint="use --precision fp32 or bf16 on CPU")
        if self.precision not in {"fp32", "bf16", "fp16"}:
            raise BackendError(f"torch backend: precision {self.precision!r} not supported", hint="fp32, bf16 or fp16")
        threads = int(self.options.get("threads", 0) or 0)
        if threads:
            torch.set_num_threads(threads)
        model, card = load_model(self.model_path)
        self.card = card
        self._mult = card.size_multiple
        self._dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        self.device = dev
        self._model = model.to(dev, dtype=self._dtype, memory_format=torch.channels_last).eval()  # type: ignore[call-overload]
        from lle.models.realtime import RealtimeUNet, TemporalRealtime

        frames = self.options.get("frames", False)
        self._i420 = frames == "i420"
        self._frames = bool(frames)
        if self._frames and self.precision != "fp32":
            raise BackendError("torch backend: uint8 frame I/O runs in fp32", hint="use --precision fp32")
        if self._i420 and not isinstance(model, RealtimeUNet):
            raise BackendError(f"torch backend: I420 frames are for the realtime preset, not {card.preset}",
                               hint="leave out frames='i420'")
        if self._frames:
            from lle.models.frames import frame_graph

            self._model = frame_graph(self._model, "i420" if self._i420 else "uint8").eval()
            self._mult = 1
        if isinstance(model, RealtimeUNet):
            self._temporal = self._model if self._frames else TemporalRealtime(model).eval()
            self._state_shape = (model.coeff_channels, model.lowres, model.lowres)

    @property
    def input_spec(self) -> TensorSpec:
        if self._i420:
            return TensorSpec.for_i420(state_shape=self._state_shape)
        if self._frames:
            return TensorSpec.for_frames(state_shape=self._state_shape)
        return TensorSpec(size_multiple=self._mult, state_shape=self._state_shape,
                          exposure_cap=getattr(self._model, "exposure_cap", None))

    def _tensor(self, batch: np.ndarray) -> Any:
        import torch

        t = torch.from_numpy(batch).to(self.device)
        if self._frames:
            return t
        return t.to(dtype=self._dtype, memory_format=torch.channels_last)

    def _loaded(self) -> bool:
        return self._model is not None

    def _numpy(self, y: Any) -> np.ndarray:
        return np.ascontiguousarray(y.cpu().numpy() if self._frames else y.float().cpu().numpy())

    def _run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        import torch

        assert self._model is not None  # checked by infer()
        x = self._tensor(feeds[INPUT])
        with torch.inference_mode():
            if STATE_OUT not in outputs or self._temporal is None:
                y = self._model(x)
                # The realtime frame graph also returns its coefficient state.
                return [self._numpy(y[0] if isinstance(y, tuple) else y)]
            sdt = torch.float32 if self._frames else self._dtype
            s = torch.from_numpy(feeds[STATE]).to(self.device, dtype=sdt)
            a = torch.from_numpy(feeds[ALPHA]).to(self.device, dtype=sdt)
            y, s_out = self._temporal(x, s, a)
        return [self._numpy(y), np.ascontiguousarray(s_out.float().cpu().numpy())]

    def describe(self) -> BackendInfo:
        import torch

        return BackendInfo(self.name, self.precision, self.device, str(self.model_path), torch.__version__)

    def close(self) -> None:
        self._model = self._temporal = None
