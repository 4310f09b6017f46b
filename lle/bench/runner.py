"""Run a benchmark: every (backend, precision) at every size, plus the reference rows, into a :class:`BenchReport`.

One failed combination becomes an ``error`` row with its reason; the run always finishes. Speed is never reported
without accuracy: each row carries its PSNR against torch FP32 eager on the same test frames.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np

from lle.bench.artifacts import ArtifactSpec, resolve_artifact
from lle.bench.config import DEFAULT_MIN_PSNR, BenchConfig, backend_opts, reason, size_label
from lle.bench.frames import is_black, make_frames
from lle.bench.memory import PeakMemory
from lle.bench.report import BenchReport, BenchRow, collect_host
from lle.bench.timing import StageTimer, measure, summarize
from lle.errors import MissingDependencyError
from lle.io.frames import bgr_to_i420, to_bgr
from lle.pipeline import Enhancer
from lle.psnr import psnr
from lle.streaming.runner import from_blob, to_blob

if TYPE_CHECKING:
    from lle.backends.base import Backend, Precision

__all__ = ["DEFAULT_MIN_PSNR", "BenchConfig", "RunPath", "run_bench", "summarize_rows"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class RunPath:
    """The per-frame work of ``lle run`` (:class:`lle.streaming.StreamRunner`) for a loaded backend, stage by stage.

    ``pre``: decoded (H, W, 3) uint8 BGR frames -> the backend's input (``to_blob``, or the frames as they are for
    uint8 frame artifacts, or converted to I420 for I420 video graphs); ``infer``: :class:`lle.pipeline.Enhancer`
    over ``backend.infer`` (pad, infer, crop, clip), or ``backend.infer`` alone for frame artifacts; ``post``: back
    to uint8 BGR frames (``from_blob``, or from I420, cropped).
    ``lle bench`` times these three, so its rows and ``lle run --stats`` measure the same code.
    """

    def __init__(self, backend: Backend) -> None:
        spec = backend.input_spec
        self.frames = spec.frames
        self.i420 = spec.i420
        self.raw_frames = spec.raw_frames
        self.raw = backend.infer
        self.enhancer = Enhancer(backend.infer, spec.size_multiple)
        self._hw: tuple[int, int] | None = None

    def pre(self, bgr: list[np.ndarray]) -> np.ndarray:
        if self.i420:  # I420 video graphs: the BGR test frames converted as a camera frame would be
            planes = [bgr_to_i420(f) for f in bgr]
            self._hw = planes[0][1]
            return np.stack([p for p, _ in planes])
        if self.frames:
            return np.ascontiguousarray(bgr[0])[None] if len(bgr) == 1 else np.stack(bgr)
        return to_blob(bgr[0]) if len(bgr) == 1 else np.concatenate([to_blob(f) for f in bgr])

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.raw(x) if self.raw_frames else self.enhancer(x)

    def post(self, y: np.ndarray) -> list[np.ndarray]:
        if self.i420:
            return [to_bgr(f, self._hw) for f in y]
        return list(y) if self.frames else [from_blob(y[i : i + 1]) for i in range(len(y))]

    def rgb_float(self, bgr: np.ndarray) -> np.ndarray:
        """One frame through ``pre`` and ``infer``: (1, 3, H, W) RGB float32 in [0, 1], for the accuracy check."""
        y = self.infer(self.pre([bgr]))
        if self.i420:
            y = self.post(y)[0][None]
        if self.raw_frames:
            return np.ascontiguousarray(y[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
        return y


def _bgr(frames: list[np.ndarray]) -> list[np.ndarray]:
    """RGB test frames in decoder order (BGR), as ``lle run`` receives them."""
    return [np.ascontiguousarray(f[..., ::-1]) for f in frames]


def _preset_of(cfg: BenchConfig) -> str:
    if cfg.weights is not None:
        from lle.models.checkpoint import load_card

        return load_card(cfg.weights).preset
    return cfg.artifacts.name if cfg.artifacts is not None else "?"


def _set_torch_threads(cfg: BenchConfig) -> None:
    if cfg.threads:
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            import torch

            torch.set_num_threads(cfg.threads)


class _Bench:
    def __init__(self, cfg: BenchConfig, progress: Progress | None) -> None:
        self.cfg, self.progress = cfg, progress
        self.preset = _preset_of(cfg)
        n = max(cfg.quality_frames, cfg.batch)
        self.frames = {wh: make_frames(*wh, n, photos=cfg.photos, source=cfg.frames, darken=cfg.darken)
                       for wh in cfg.sizes}  # fmt: skip
        self.refs: dict[tuple[int, int], list[np.ndarray]] = {}
        self.ref_error = ""
        self.done, self.total = 0, 0

    def _tick(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)

    def reference_outputs(self) -> None:
        """Torch FP32 eager outputs on the quality frames, on the CPU, for every size."""
        if self.cfg.weights is None:
            self.ref_error = "no weights for a torch FP32 reference"
            return
        try:
            from lle.backends.registry import load_backend

            ref = load_backend("torch", self.cfg.weights, device="cpu", precision="fp32")
        except Exception as err:  # noqa: BLE001  (no reference: rows keep their timing, PSNR stays empty)
            self.ref_error = f"no torch FP32 reference: {reason(err)}"
            log.warning(self.ref_error)
            return
        try:
            path = RunPath(ref)
            for wh, frames in self.frames.items():
                self.refs[wh] = [path.rgb_float(f) for f in _bgr(frames[: self.cfg.quality_frames])]
        finally:
            ref.close()

    def floor_rows(self) -> list[BenchRow]:
        """The resize + copy floor: a x4 INTER_AREA downscale plus one full-frame uint8 copy."""
        rows = []
        for wh, frames in self.frames.items():
            frame = frames[0]
            out = np.empty_like(frame)

            def step(frame: np.ndarray = frame, out: np.ndarray = out, wh: tuple[int, int] = wh) -> None:
                cv2.resize(frame, (max(1, wh[0] // 4), max(1, wh[1] // 4)), interpolation=cv2.INTER_AREA)
                np.copyto(out, frame)

            s = summarize(self._measure(step))
            rows.append(BenchRow(
                self.preset, "resize+copy", "", size_label(wh), "ok", kind="reference", device="cpu", iters=s.n,
                p50_ms=s.p50_ms, p90_ms=s.p90_ms, p99_ms=s.p99_ms, mean_ms=s.mean_ms, fps=1000.0 / s.p50_ms,
                reason="floor: cv2 INTER_AREA /4 + full-frame copy", runtime_version=cv2.__version__,
            ))  # fmt: skip
            self._tick()
        return rows

    def _measure(self, step: Callable[[], object], sync: Callable[[], None] | None = None) -> list[float]:
        c = self.cfg
        return measure(step, warmup=c.warmup, sync=sync, **c.budget)

    def combo_rows(self, backend: str, precision: str, kind: str, cache: Path) -> list[BenchRow]:
        """Rows for one combination at every size; one ``error`` row (size ``-``) if it cannot be exported/loaded."""
        from lle.backends.registry import available_backends, backend_class

        base: dict[str, Any] = {"preset": self.preset, "backend": backend, "precision": precision, "kind": kind,
                "batch": self.cfg.batch, "min_psnr_db": self.cfg.min_psnr.get(precision)}  # fmt: skip
        try:
            cls = backend_class(backend)  # unknown names and unimportable modules fail here, before any export
            if backend not in available_backends():
                extra = getattr(cls, "extra", "") or backend
                raise MissingDependencyError(f"{backend} is not installed", hint=f"pip install 'lle[{extra}]'")
            spec = resolve_artifact(self.cfg.weights, backend, precision, artifacts=self.cfg.artifacts, cache=cache,
                                    export=self.cfg.export)  # fmt: skip
            base.update(artifact=str(spec.path), artifact_mb=round(spec.size_mb, 3))
            runner = cls(spec.path, precision=cast("Precision", precision), **backend_opts(self.cfg, backend))
            runner.load()
        except Exception as err:  # noqa: BLE001  (a combination that cannot be exported/loaded is an error row)
            log.debug("%s %s: %s", backend, precision, reason(err))
            self.done += len(self.cfg.sizes) - 1
            self._tick()
            return [BenchRow(size="-", status="error", reason=reason(err), **base)]
        try:
            info = runner.describe()
            base.update(device=info.device, runtime_version=info.runtime_version)
            rows = []
            for wh in self.cfg.sizes:
                try:
                    rows.append(self._run_size(runner, wh, spec, base))
                except Exception as err:  # noqa: BLE001  (e.g. a size outside an engine's profile)
                    rows.append(BenchRow(size=size_label(wh), status="error", reason=reason(err), **base))
                self._tick()
            return rows
        finally:
            runner.close()

    def _run_size(self, runner: Any, wh: tuple[int, int], spec: ArtifactSpec, base: dict[str, Any]) -> BenchRow:
        cfg, frames = self.cfg, self.frames[wh]
        sync = getattr(runner, "synchronize", None)
        path = RunPath(runner)
        with PeakMemory(device=str(base.get("device", ""))) as mem:
            outs = [path.rgb_float(f) for f in _bgr(frames[: cfg.quality_frames])]
            status, why, score = self._accuracy(outs, self.refs.get(wh), base["precision"])
            # The batch as a decoder delivers it (BGR uint8; the order flip done once here, not timed).
            batch = _bgr([frames[i % len(frames)] for i in range(cfg.batch)])
            st = StageTimer(("pre", "infer", "post"), sync=sync)

            def step() -> None:
                with st("pre"):
                    x = path.pre(batch)
                with st("infer"):
                    y = path.infer(x)
                with st("post"):
                    path.post(y)

            for _ in range(cfg.warmup):
                step()
            st.reset()
            s = summarize(measure(step, warmup=0, **cfg.budget))
        med = st.medians()
        return BenchRow(
            size=size_label(wh), status=status, reason=why, iters=s.n, p50_ms=s.p50_ms, p90_ms=s.p90_ms,
            p99_ms=s.p99_ms, mean_ms=s.mean_ms, fps=cfg.batch * 1000.0 / s.p50_ms, pre_ms=med["pre"],
            infer_ms=med["infer"], post_ms=med["post"], peak_rss_mb=mem.rss_mb, gpu_mem_mb=mem.gpu_mb,
            psnr_db=score, **base,
        )  # fmt: skip

    def _accuracy(self, outs: list[np.ndarray], refs: list[np.ndarray] | None, precision: str) -> tuple[str, str, Any]:
        if not all(np.isfinite(o).all() for o in outs):
            return "accuracy", "NaN/Inf in the output", math.nan
        if refs is None:
            return "ok", self.ref_error or "no reference output", None
        score = min(psnr(o, r) for o, r in zip(outs, refs, strict=True))
        if any(is_black(o, r) for o, r in zip(outs, refs, strict=True)):
            return "accuracy", "black output", score
        need = self.cfg.min_psnr.get(precision)
        if need is not None and score < need:
            return "accuracy", f"PSNR {score:.1f} dB < {need:g} dB vs torch fp32", score
        return "ok", "", score


def _combos(cfg: BenchConfig) -> list[tuple[str, str, str]]:
    from lle.backends.registry import ALIASES

    out: list[tuple[str, str, str]] = []
    wanted = [(ALIASES.get(b, b), p) for b in cfg.backends for p in cfg.precisions]
    if cfg.references and cfg.weights is not None:
        out.append(("torch", "fp32", "reference"))
    for b, p in wanted:
        if (b, p) == ("torch", "fp32") and cfg.references and cfg.weights is not None:
            continue
        if b == "torch" and p == "int8":
            continue  # torch eager has no int8 path; the int8 rows come from the exported runtimes
        if (b, p, "model") not in out:
            out.append((b, p, "model"))
    return out


def summarize_rows(rows: list[BenchRow]) -> tuple[list[BenchRow], dict[str, Any]]:
    """Fill ``speedup_vs_eager`` and pick the fastest accurate artifact per (preset, size)."""
    eager = {(r.preset, r.size): r for r in rows if r.backend == "torch" and r.precision == "fp32" and r.fps}
    best: list[dict[str, Any]] = []
    out = []
    for r in rows:
        e = eager.get((r.preset, r.size))
        if e and e.fps and r.fps and r.status != "error" and r.kind != "video" and r.backend != "resize+copy":
            r = dataclasses.replace(r, speedup_vs_eager=round(r.fps / e.fps, 3))
        out.append(r)
    for key in dict.fromkeys((r.preset, r.size) for r in out):
        cands = [r for r in out if (r.preset, r.size) == key and r.status == "ok" and r.kind == "model" and r.fps]
        if not cands:
            continue
        b = max(cands, key=lambda r: r.fps or 0.0)
        e = eager.get(key)
        best.append({"preset": key[0], "size": key[1], "label": b.label, "fps": b.fps, "p50_ms": b.p50_ms,
                     "psnr_db": b.psnr_db, "eager_fps": e.fps if e else None,
                     "speedup": b.speedup_vs_eager})  # fmt: skip
    return out, {"best": best}


def _frames_label(cfg: BenchConfig) -> str:
    src = str(cfg.frames) if cfg.frames else "scikit-image sample photos" if cfg.photos else "synthetic scenes"
    return f"{src}{', darkened' if cfg.darken else ''} (x{cfg.quality_frames} for PSNR)"


def run_bench(cfg: BenchConfig, *, progress: Progress | None = None, command: str = "") -> BenchReport:
    """Benchmark every combination in ``cfg``; never raises for a combination that fails (it becomes a row).

    Raises:
        ConfigError / InputError: the configuration itself is unusable (e.g. unreadable weights).
    """
    _set_torch_threads(cfg)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    cores = os.cpu_count() or 1
    if load > 0.5 * cores:
        log.warning("load average %.1f on %d cores: other processes are using the CPU; timings will be unreliable",
                    load, cores)  # fmt: skip
    bench = _Bench(cfg, progress)
    combos = _combos(cfg)
    cache = Path(tempfile.mkdtemp(prefix="lle-bench-")) if cfg.cache_dir is None else cfg.cache_dir
    rows: list[BenchRow] = []
    try:
        if cfg.video is not None:
            from lle.bench.video import video_rows

            bench.total = len(combos)
            rows += video_rows(cfg, bench.preset, combos, cache, tick=bench._tick)
        else:
            bench.total = len(cfg.sizes) * (len(combos) + int(cfg.references))
            bench.reference_outputs()
            if cfg.references:
                rows += bench.floor_rows()
            for backend, precision, kind in combos:
                rows += bench.combo_rows(backend, precision, kind, cache)
    finally:
        if cfg.cache_dir is None:
            shutil.rmtree(cache, ignore_errors=True)
    rows, summary = summarize_rows(rows)
    settings = {
        "preset": bench.preset, "weights": str(cfg.weights or ""), "artifacts": str(cfg.artifacts or ""),
        "backends": ",".join(cfg.backends), "precisions": ",".join(cfg.precisions),
        "sizes": ",".join(size_label(s) for s in cfg.sizes), "batch": cfg.batch, "warmup": cfg.warmup,
        "iters": cfg.iters, "seconds": cfg.seconds, "threads": cfg.threads, "device": cfg.device,
        "quality_frames": cfg.quality_frames, "min_psnr": cfg.min_psnr, "video": str(cfg.video or ""),
        "load_avg_at_start": round(load, 2), "frames": _frames_label(cfg), "calib": str(cfg.export.calib or ""),
        "calib_n": cfg.export.calib_n,
        "calib_hw": "x".join(map(str, cfg.export.calib_hw)),
    }  # fmt: skip
    return BenchReport(collect_host(command), settings, rows, summary)
