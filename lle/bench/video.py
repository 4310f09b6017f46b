"""End-to-end mode: the FPS of decode -> enhance -> encode over a whole video file, per backend/precision.

Each row is one run of ``lle run``'s threaded pipeline (:func:`lle.streaming.run_stream`) into a temporary file.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2

from lle.bench.artifacts import resolve_artifact
from lle.bench.config import BenchConfig, backend_opts, reason
from lle.bench.memory import PeakMemory
from lle.bench.report import BenchRow
from lle.errors import InputError

if TYPE_CHECKING:
    from lle.backends.base import Precision

__all__ = ["video_rows"]

log = logging.getLogger(__name__)


def _probe(path: Path) -> tuple[int, int]:
    """Width and height of the video at ``path``."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"cannot open video {path}", hint="any file OpenCV/FFmpeg can decode (mp4, mkv, avi)")
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()


def _measure_video(cfg: BenchConfig, backend: str, precision: str, model: Path, dst: Path, base: dict[str, Any],
                   *, artifact_mb: float) -> BenchRow:  # fmt: skip
    """One end-to-end run through ``lle run``'s threaded pipeline."""
    from lle.streaming import run_stream

    assert cfg.video is not None
    opts = backend_opts(cfg, backend)
    device = opts.pop("device")
    res = run_stream(model, str(cfg.video), dst, backend=backend, device=device,
                     precision=cast("Precision", precision), backend_options=opts)  # fmt: skip
    if not res.frames:
        raise InputError(f"no frames decoded from {cfg.video}")
    st = res.stages
    split = " ".join(f"{k} {v.p50_ms:.1f}" for k, v in st.items())
    return BenchRow(
        status="ok", iters=res.frames, fps=res.fps, mean_ms=1000.0 * res.seconds / res.frames,
        pre_ms=st["pre"].p50_ms if "pre" in st else None, infer_ms=st["infer"].p50_ms if "infer" in st else None,
        post_ms=st["post"].p50_ms if "post" in st else None, artifact=str(model), artifact_mb=artifact_mb,
        reason=f"lle run pipeline (threaded); stage p50 ms: {split}", **base,
    )  # fmt: skip


def video_rows(
    cfg: BenchConfig, preset: str, combos: list[tuple[str, str, str]], cache: Path, *, tick: Callable[[], None]
) -> list[BenchRow]:
    """One ``video`` row per combination: end-to-end FPS = frames / wall time over the whole file."""
    assert cfg.video is not None  # the caller only takes this path with a video
    w, h = _probe(cfg.video)
    rows = []
    for backend, precision, _kind in combos:
        base: dict[str, Any] = {"preset": preset, "backend": backend, "precision": precision, "kind": "video",
                                "size": f"{w}x{h}"}  # fmt: skip
        try:
            spec = resolve_artifact(cfg.weights, backend, precision, artifacts=cfg.artifacts, cache=cache,
                                    export=cfg.export)  # fmt: skip
            with tempfile.TemporaryDirectory(prefix="lle-bench-video-") as tmp, PeakMemory() as mem:
                row = _measure_video(cfg, backend, precision, spec.path, Path(tmp) / "out.mp4", base,
                                     artifact_mb=round(spec.size_mb, 3))  # fmt: skip
            rows.append(dataclasses.replace(row, peak_rss_mb=mem.rss_mb))
        except Exception as err:  # noqa: BLE001  (a combination that fails becomes an error row)
            rows.append(BenchRow(status="error", **{**base, "reason": reason(err)}))
        tick()
    return rows
