"""TensorRT backend: runs serialized engines (``.plan`` / ``.engine``) written by ``lle export`` with their sidecar.

Written against the name-based TensorRT 10 API (``set_input_shape`` / ``set_tensor_address`` /
``execute_async_v3``). CUDA memory and streams come from cuda-python through :mod:`lle._cuda`; pycuda is never
needed. For a fixed input shape the enqueue is captured once into a CUDA graph and replayed.

Not verified on a GPU from this repository's CI machines (TensorRT cannot be installed there); type-checked against
the TensorRT 10 stubs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._cuda import Cuda, DeviceBuffers
from lle._lazy import require
from lle.backends._graph import check_graph_io
from lle.backends.base import INPUT, Backend, BackendInfo, TensorSpec
from lle.backends.registry import backend_suffixes
from lle.errors import BackendError

if TYPE_CHECKING:
    import tensorrt as trt

    from lle.export.trt_meta import EngineSpec

__all__ = ["ENGINE_SUFFIXES", "TrtBackend", "engine_size_multiple"]

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = backend_suffixes("tensorrt")
_PRESET_MULTIPLE = {"quality": 16, "realtime": 4}


def engine_size_multiple(manifest: dict[str, Any]) -> int:
    """H/W multiple of an engine, from its manifest: ``size_multiple``, else the preset's, else 16 (safe for both).

    Example:
        >>> engine_size_multiple({"preset": "realtime"}), engine_size_multiple({})
        (4, 16)
    """
    if "size_multiple" in manifest:
        return int(manifest["size_multiple"])
    return _PRESET_MULTIPLE.get(str(manifest.get("preset")), 16)


class TrtBackend(Backend):
    """``device``: auto | cuda[:i]. ``precision`` is informative (an engine's precision is fixed at build time).

    Options: ``cuda_graph`` (default True): replay a captured CUDA graph while the input shape stays the same.
    """

    name = "tensorrt"
    extra = "tensorrt"

    def __init__(self, model_path: Any, **kw: Any) -> None:
        super().__init__(model_path, **kw)
        self._engine: trt.ICudaEngine | None = None
        self._ctx: trt.IExecutionContext | None = None
        self._cuda: Cuda | None = None
        self._stream: Any = None
        self._bufs: DeviceBuffers | None = None
        self._dtypes: dict[str, np.dtype] = {}
        self._spec = TensorSpec()
        self._graph: Any = None
        self._graph_key: tuple[Any, ...] | None = None
        self._gpu = ""
        self._trt_version = ""
        self._engine_spec: EngineSpec | None = None

    def load(self) -> None:
        trt = require("tensorrt", extra=self.extra)
        path = self.model_path
        if path.suffix.lower() not in ENGINE_SUFFIXES:
            raise BackendError(
                f"tensorrt runs serialized engines (.plan/.engine), got {path.name}",
                hint="build one with `lle export MODEL --target trt-fp16`, or use --backend auto",
            )
        if not path.is_file():
            raise BackendError(f"tensorrt: engine not found: {path}")
        dev, _, idx = self.device.partition(":")
        if dev not in {"auto", "cuda"}:
            raise BackendError(f"tensorrt: device {self.device!r} not supported", hint="auto or cuda[:i]")
        from lle.export.manifest import manifest_path
        from lle.export.trt_meta import EnvironmentSpec, read_sidecar, validate_sidecar

        cuda = Cuda()
        self._gpu, cc = cuda.device(int(idx or 0))
        self._trt_version = trt.__version__
        self._engine_spec = read_sidecar(path)  # the exporter's sidecar: TensorRT version, GPU, profiles
        env = EnvironmentSpec(tensorrt=trt.__version__, cuda=cuda.runtime_version(), gpu=self._gpu,
                              compute_capability=cc)
        for warning in validate_sidecar(self._engine_spec, env, plan_name=path.name):
            log.warning("%s", warning)
        try:
            manifest = json.loads(manifest_path(path).read_text())
        except (OSError, json.JSONDecodeError):
            manifest = {}
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise BackendError(
                f"tensorrt: cannot deserialize {path.name} (corrupt, or built by another TensorRT/GPU)",
                hint="rebuild the engine on this device",
            )
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        ins = {
            n: [d if d >= 0 else None for d in engine.get_tensor_shape(n)]
            for n in names
            if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        }
        outs = [n for n in names if n not in ins]
        state = check_graph_io(self.name, path.name, ins, outs)
        lo, _, hi = engine.get_tensor_profile_shape(INPUT, 0)
        self._spec = TensorSpec(
            size_multiple=engine_size_multiple(manifest), state_shape=state,
            min_hw=(int(lo[2]), int(lo[3])), max_hw=(int(hi[2]), int(hi[3])),
            exposure_cap=tuple(manifest["exposure_cap"]) if manifest.get("exposure_cap") else None,
        )  # fmt: skip
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._engine, self._cuda, self._bufs = engine, cuda, DeviceBuffers(cuda)
        self._ctx = engine.create_execution_context()
        self._stream = cuda.ck(cuda.rt.cudaStreamCreate())

    @property
    def input_spec(self) -> TensorSpec:
        return self._spec

    def _loaded(self) -> bool:
        return self._ctx is not None

    def _buffer(self, name: str, nbytes: int) -> int:
        assert self._bufs is not None
        before = self._bufs.ptr(name)
        ptr = self._bufs.alloc(name, nbytes)
        if ptr != before:
            self._graph = self._graph_key = None  # addresses changed
        return ptr

    def _run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        assert self._ctx is not None and self._cuda is not None and self._bufs is not None  # checked by infer()
        ctx, cuda, stream, bufs = self._ctx, self._cuda, self._stream, self._bufs
        h, w = feeds[INPUT].shape[-2:]
        if self._engine_spec is not None:
            from lle.export.trt_meta import check_input_shape

            check_input_shape(self._engine_spec, INPUT, tuple(feeds[INPUT].shape))
        host = {k: np.ascontiguousarray(v, dtype=self._dtypes[k]) for k, v in feeds.items()}
        key = tuple((k, v.shape) for k, v in host.items())
        for k, v in host.items():
            ctx.set_input_shape(k, tuple(v.shape))
            ctx.set_tensor_address(k, self._buffer(k, v.nbytes))
        out_host = {}
        for n in self._dtypes:
            if n in host:
                continue
            dims = ctx.get_tensor_shape(n)
            arr = np.empty([int(dims[i]) for i in range(len(dims))], self._dtypes[n])
            ctx.set_tensor_address(n, self._buffer(n, arr.nbytes))
            out_host[n] = arr
        for k, v in host.items():
            cuda.h2d(bufs.ptr(k), v, stream)
        if self.options.get("cuda_graph", True) and self._graph is not None and self._graph_key == key:
            cuda.ck(cuda.rt.cudaGraphLaunch(self._graph, stream))
        elif not ctx.execute_async_v3(stream):
            raise BackendError(f"tensorrt: enqueue failed for input {h}x{w}")
        elif self.options.get("cuda_graph", True):
            self._capture(key)
        for n, arr in out_host.items():
            cuda.d2h(arr, bufs.ptr(n), stream)
        cuda.synchronize(stream)
        return [out_host[n].astype(np.float32, copy=False) for n in outputs]

    def _capture(self, key: tuple[Any, ...]) -> None:
        """Capture one enqueue into a CUDA graph for this shape (after a normal run, so TensorRT has set up)."""
        assert self._cuda is not None and self._ctx is not None
        rt = self._cuda.rt
        self._cuda.ck(rt.cudaStreamSynchronize(self._stream))
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._cuda.ck(rt.cudaStreamBeginCapture(self._stream, mode))
        ok = self._ctx.execute_async_v3(self._stream)
        graph = self._cuda.ck(rt.cudaStreamEndCapture(self._stream))
        if not ok:
            log.debug("tensorrt: CUDA graph capture not possible; running without")
            self.options["cuda_graph"] = False
            return
        self._graph = self._cuda.ck(rt.cudaGraphInstantiate(graph, 0))
        self._graph_key = key
        self._cuda.ck(rt.cudaGraphLaunch(self._graph, self._stream))

    def describe(self) -> BackendInfo:
        return BackendInfo(
            self.name, self.precision, self.device, str(self.model_path), self._trt_version, {"gpu": self._gpu}
        )

    def close(self) -> None:
        if self._cuda is not None:
            if self._bufs is not None:
                self._bufs.free()
            if self._graph is not None:
                self._cuda.rt.cudaGraphExecDestroy(self._graph)
            if self._stream is not None:
                self._cuda.rt.cudaStreamDestroy(self._stream)
        self._bufs, self._graph, self._stream, self._ctx, self._engine, self._cuda = None, None, None, None, None, None
