"""Peak memory while a block runs: process RSS (psutil) and, where a GPU is in use, device memory."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["PeakMemory", "gpu_memory_probe"]


def _rss_probe() -> Callable[[], float] | None:
    try:
        import psutil
    except ImportError:
        return None
    proc = psutil.Process()
    return lambda: proc.memory_info().rss / 1e6


def gpu_memory_probe(device: str) -> Callable[[], float] | None:
    """A callable returning MB in use on the GPU, or None on CPU devices / without a way to ask.

    torch's allocator peak is used when torch already has CUDA initialised; otherwise NVML (``nvidia-ml-py``).
    """
    dev = device.lower()
    if not (dev.startswith("cuda") or dev.startswith("gpu")):
        return None
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()
        return lambda: torch.cuda.max_memory_allocated() / 1e6
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    except pynvml.NVMLError:
        return None
    return lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used / 1e6


class PeakMemory:
    """Samples RSS (and GPU memory) every ``interval`` s on a daemon thread; ``rss_mb``/``gpu_mb`` hold the peaks.

    Values are None when psutil (or a GPU probe) is unavailable. Sampling every 20 ms costs well under 1% of a core.
    """

    def __init__(self, *, device: str = "cpu", interval: float = 0.02) -> None:
        self._rss, self._gpu = _rss_probe(), gpu_memory_probe(device)
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rss_mb: float | None = None
        self.gpu_mb: float | None = None

    def _sample(self) -> None:
        if self._rss is not None:
            v = self._rss()
            self.rss_mb = v if self.rss_mb is None else max(self.rss_mb, v)
        if self._gpu is not None:
            g = self._gpu()
            self.gpu_mb = g if self.gpu_mb is None else max(self.gpu_mb, g)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="lle-bench-mem", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
