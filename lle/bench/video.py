"""End-to-end mode: the FPS of decode -> enhance -> encode over a whole video file, per backend/precision."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np

from lle.bench.artifacts import resolve_artifact
from lle.bench.frames import postprocess, preprocess
from lle.bench.memory import PeakMemory
from lle.bench.report import BenchRow
from lle.bench.timing import summarize
from lle.errors import InputError

if TYPE_CHECKING:
    from lle.backends.base import Precision
    from lle.bench.runner import BenchConfig

__all__ = ["enhance_video", "video_rows"]

log = logging.getLogger(__name__)


def _probe(path: Path) -> tuple[int, int, float, int]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"cannot open video {path}", hint="any file OpenCV/FFmpeg can decode (mp4, mkv, avi)")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return w, h, cap.get(cv2.CAP_PROP_FPS) or 30.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def enhance_video(src: Path, dst: Path, infer: Callable[[np.ndarray], np.ndarray], mult: int) -> list[float]:
    """Decode ``src``, enhance every frame, encode to ``dst`` (mp4v); returns per-frame wall latencies in ms.

    The fallback used until the streaming runner of ``lle run`` is importable: one thread, frame by frame.
    """
    w, h, fps, _ = _probe(src)
    cap = cv2.VideoCapture(str(src))
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    lat: list[float] = []
    try:
        while True:
            t0 = time.perf_counter()
            ok, bgr = cap.read()
            if not ok:
                break
            x, hw = preprocess([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)], mult)
            y = postprocess(infer(x), hw)[0]
            out.write(cv2.cvtColor(y, cv2.COLOR_RGB2BGR))
            lat.append((time.perf_counter() - t0) * 1e3)
    finally:
        cap.release()
        out.release()
    return lat


def _has_stream_runner() -> bool:
    return importlib.util.find_spec("lle.streaming") is not None


def _measure_video(
    cfg: BenchConfig, backend: str, precision: str, model: Path, dst: Path, runner: Any, base: dict[str, Any],
    *, artifact_mb: float,
) -> BenchRow:  # fmt: skip
    """One end-to-end run: ``lle run``'s threaded pipeline when present, else the single-thread fallback."""
    from lle.bench.runner import _backend_opts

    assert cfg.video is not None
    if _has_stream_runner():
        from lle.streaming import run_stream

        opts = _backend_opts(cfg, backend)
        device = opts.pop("device")
        prec = cast("Precision", precision)
        res = run_stream(model, str(cfg.video), dst, backend=backend, device=device, precision=prec,
                         backend_options=opts)  # fmt: skip
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
    t0 = time.perf_counter()
    lat = enhance_video(cfg.video, dst, runner.infer, runner.input_spec.size_multiple)
    wall = time.perf_counter() - t0
    if not lat:
        raise InputError(f"no frames decoded from {cfg.video}")
    s = summarize(lat)
    info = runner.describe()
    return BenchRow(
        status="ok", iters=s.n, p50_ms=s.p50_ms, p90_ms=s.p90_ms, p99_ms=s.p99_ms, mean_ms=s.mean_ms,
        fps=len(lat) / wall, artifact=str(model), artifact_mb=artifact_mb, device=info.device,
        runtime_version=info.runtime_version, reason="decode+enhance+encode, 1 thread (fallback)", **base,
    )  # fmt: skip


def video_rows(
    cfg: BenchConfig, preset: str, combos: list[tuple[str, str, str]], cache: Path, *, tick: Callable[[], None]
) -> list[BenchRow]:
    """One ``video`` row per combination: end-to-end FPS = frames / wall time over the whole file."""
    from lle.backends.registry import backend_class
    from lle.bench.runner import _backend_opts, _reason

    assert cfg.video is not None  # the caller only takes this path with a video
    w, h, _, _ = _probe(cfg.video)
    rows = []
    for backend, precision, _kind in combos:
        base: dict[str, Any] = {"preset": preset, "backend": backend, "precision": precision, "kind": "video",
                                "size": f"{w}x{h}"}  # fmt: skip
        try:
            spec = resolve_artifact(cfg.weights, backend, precision, artifacts=cfg.artifacts, cache=cache,
                                    export=cfg.export)  # fmt: skip
            prec = cast("Precision", precision)
            runner = backend_class(backend)(spec.path, precision=prec, **_backend_opts(cfg, backend))
            if not _has_stream_runner():
                runner.load()
        except Exception as err:  # noqa: BLE001  (becomes an error row)
            rows.append(BenchRow(status="error", **{**base, "reason": _reason(err)}))
            tick()
            continue
        try:
            with tempfile.TemporaryDirectory(prefix="lle-bench-video-") as tmp, PeakMemory() as mem:
                rows.append(_measure_video(cfg, backend, precision, spec.path, Path(tmp) / "out.mp4", runner, base,
                                           artifact_mb=round(spec.size_mb, 3)))  # fmt: skip
            rows[-1] = dataclasses.replace(rows[-1], peak_rss_mb=mem.rss_mb)
        except Exception as err:  # noqa: BLE001
            rows.append(BenchRow(status="error", **{**base, "reason": _reason(err)}))
        finally:
            runner.close()
        tick()
    return rows
