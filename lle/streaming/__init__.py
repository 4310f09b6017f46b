"""Video and stream processing for ``lle run``: the threaded pipeline, temporal smoothing, flicker metric."""

from __future__ import annotations

from lle.streaming.runner import STAGES, StageStats, StreamResult, StreamRunner
from lle.streaming.session import open_sinks, run_stream
from lle.streaming.temporal import TemporalSmoother, flicker, flicker_ratio

__all__ = [
    "STAGES", "StageStats", "StreamResult", "StreamRunner", "TemporalSmoother", "flicker", "flicker_ratio",
    "open_sinks", "run_stream",
]  # fmt: skip
