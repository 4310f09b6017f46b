"""Latency measurement: warm-up, fixed iteration count or time budget, percentiles, optional device sync."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LatencyStats", "StageTimer", "measure", "percentile", "summarize"]

Sync = Callable[[], None]


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's default), NaN for no samples.

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
        2.5
    """
    if not len(samples):
        return math.nan
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Summary of per-call latencies, in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    std_ms: float

    @property
    def fps(self) -> float:
        """Calls per second at the median latency (the mean is skewed by rare stalls)."""
        return 1000.0 / self.p50_ms if self.p50_ms > 0 else math.nan


def summarize(samples_ms: Sequence[float]) -> LatencyStats:
    """Percentiles and moments of ``samples_ms``.

    Raises:
        ValueError: no samples.

    Example:
        >>> s = summarize([1.0, 2.0, 3.0])
        >>> (s.n, s.p50_ms, s.mean_ms)
        (3, 2.0, 2.0)
    """
    if not len(samples_ms):
        raise ValueError("no latency samples to summarise")
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = (float(v) for v in np.percentile(a, [50, 90, 99]))
    return LatencyStats(len(a), float(a.mean()), p50, p90, p99, float(a.min()), float(a.max()), float(a.std()))


def measure(
    fn: Callable[[], object],
    *,
    warmup: int = 3,
    iters: int | None = None,
    seconds: float | None = None,
    min_iters: int = 3,
    max_iters: int = 100_000,
    sync: Sync | None = None,
) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then time it; returns per-call latencies in ms.

    Runs ``iters`` calls, or as many as fit in ``seconds`` (at least ``min_iters``). ``sync`` (e.g.
    ``torch.cuda.synchronize``) is called before each clock read so asynchronous device work is counted.

    Raises:
        ValueError: neither or both of ``iters``/``seconds``, or non-positive values.
    """
    if (iters is None) == (seconds is None):
        raise ValueError("give exactly one of iters or seconds")
    if (iters is not None and iters < 1) or (seconds is not None and seconds <= 0) or warmup < 0:
        raise ValueError(f"iters/seconds must be positive and warmup >= 0, got {iters=}, {seconds=}, {warmup=}")
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    out: list[float] = []
    deadline = time.perf_counter() + seconds if seconds is not None else math.inf
    n = iters if iters is not None else max_iters
    while len(out) < n:
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        t1 = time.perf_counter()
        out.append((t1 - t0) * 1e3)
        if t1 >= deadline and len(out) >= min_iters:
            break
    return out


class StageTimer:
    """Accumulates per-stage latencies (ms) of a multi-stage call, e.g. pre / infer / post.

    Example:
        >>> t = StageTimer(("pre", "post"))
        >>> with t("pre"):
        ...     pass
        >>> len(t.samples["pre"]), len(t.samples["post"])
        (1, 0)
    """

    def __init__(self, stages: Sequence[str], sync: Sync | None = None) -> None:
        self.samples: dict[str, list[float]] = {s: [] for s in stages}
        self._sync = sync
        self._active: str | None = None
        self._t0 = 0.0

    def __call__(self, stage: str) -> StageTimer:
        if stage not in self.samples:
            raise KeyError(f"unknown stage {stage!r}; stages: {', '.join(self.samples)}")
        self._active = stage
        return self

    def __enter__(self) -> StageTimer:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sync:
            self._sync()
        assert self._active is not None  # set by __call__; internal invariant, not user input
        self.samples[self._active].append((time.perf_counter() - self._t0) * 1e3)
        self._active = None

    def reset(self) -> None:
        """Drop all samples (e.g. after warm-up)."""
        for v in self.samples.values():
            v.clear()

    def medians(self) -> dict[str, float]:
        """Median ms per stage (NaN for a stage with no samples)."""
        return {k: percentile(v, 50) for k, v in self.samples.items()}
