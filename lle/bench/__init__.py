"""Benchmarks: latency/FPS/memory/accuracy of every backend and precision, with reports and plots.

Importing this package imports no runtime; :func:`run_bench` loads them per combination.
"""

from __future__ import annotations

from lle.bench.output import write_reports
from lle.bench.report import BenchReport, BenchRow
from lle.bench.runner import DEFAULT_MIN_PSNR, BenchConfig, run_bench

__all__ = ["DEFAULT_MIN_PSNR", "BenchConfig", "BenchReport", "BenchRow", "run_bench", "write_reports"]
