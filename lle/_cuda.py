"""The few CUDA runtime calls TensorRT needs (device memory, copies, streams, device properties), via cuda-python.

Shared by the TensorRT backend and the engine builder (:mod:`lle.export.trt_engine`); errors become
:class:`~lle.errors.BackendError`. ``cuda.bindings.runtime`` (cuda-python >= 12.6) is preferred, ``cuda.cudart`` is
the older name of the same module; pycuda is never needed. Importing this module imports nothing from CUDA.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lle._lazy import require
from lle.errors import BackendError

__all__ = ["Cuda", "DeviceBuffers", "cudart"]


def cudart() -> Any:
    """cuda-python's runtime module.

    Raises:
        MissingDependencyError: cuda-python is not installed (names the extra).
    """
    try:
        from cuda.bindings import runtime
    except ImportError:
        return require("cuda.cudart", extra="tensorrt")  # cuda-python < 12.6
    return runtime


class Cuda:
    """CUDA runtime calls with their error codes turned into :class:`BackendError`."""

    def __init__(self) -> None:
        self.rt = cudart()

    def ck(self, result: Any) -> Any:
        """The value(s) of a cuda-python call ``(err, *values)``; raises on a non-zero ``err``."""
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            name = self.rt.cudaGetErrorName(err)[1]
            raise BackendError(f"tensorrt: CUDA call failed: {name.decode() if isinstance(name, bytes) else name}")
        return rest[0] if len(rest) == 1 else rest

    def malloc(self, nbytes: int) -> int:
        return int(self.ck(self.rt.cudaMalloc(max(nbytes, 1))))

    def free(self, ptr: int) -> None:
        self.rt.cudaFree(ptr)

    def h2d(self, dst: int, src: np.ndarray, stream: Any = 0) -> None:
        """Copy ``src`` to device pointer ``dst``, asynchronously on ``stream`` (0: the default stream)."""
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.ck(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream))

    def d2h(self, dst: np.ndarray, src: int, stream: Any = 0) -> None:
        """Copy device pointer ``src`` into ``dst``, asynchronously on ``stream`` (0: the default stream)."""
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.ck(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream))

    def synchronize(self, stream: Any = 0) -> None:
        self.ck(self.rt.cudaStreamSynchronize(stream))

    def runtime_version(self) -> str:
        """The CUDA runtime version, e.g. ``"12.6"``."""
        ver = int(self.ck(self.rt.cudaRuntimeGetVersion()))
        return f"{ver // 1000}.{ver % 1000 // 10}"

    def device(self, index: int) -> tuple[str, str]:
        """Make GPU ``index`` current; returns its name and compute capability (``"8.7"``)."""
        self.ck(self.rt.cudaSetDevice(index))
        props = self.ck(self.rt.cudaGetDeviceProperties(index))
        name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
        return name, f"{props.major}.{props.minor}"


class DeviceBuffers:
    """Device memory per tensor name, grown on demand and reused (freed on :meth:`free`)."""

    def __init__(self, cuda: Cuda | None = None) -> None:
        self.cuda = cuda or Cuda()
        self._ptrs: dict[str, tuple[int, int]] = {}  # name -> (device pointer, capacity in bytes)

    def alloc(self, name: str, nbytes: int) -> int:
        """The buffer of ``name`` with room for ``nbytes`` (a new pointer when it had to grow)."""
        ptr, size = self._ptrs.get(name, (0, 0))
        if nbytes > size:
            if ptr:
                self.cuda.free(ptr)
            ptr, size = self.cuda.malloc(nbytes), nbytes
            self._ptrs[name] = (ptr, size)
        return ptr

    def ptr(self, name: str) -> int:
        """The device pointer of ``name`` (0 when none was allocated yet)."""
        return self._ptrs.get(name, (0, 0))[0]

    def upload(self, name: str, arr: np.ndarray) -> int:
        """Copy ``arr`` into the buffer of ``name`` (synchronously); returns its device pointer."""
        arr = np.ascontiguousarray(arr)
        ptr = self.alloc(name, arr.nbytes)
        self.cuda.h2d(ptr, arr)
        self.cuda.synchronize()
        return ptr

    def free(self) -> None:
        for ptr, _ in self._ptrs.values():
            self.cuda.free(ptr)
        self._ptrs.clear()
