"""``lle bench --backend triton``: latency and throughput of a served model at several client concurrencies.

Like perf_analyzer's concurrency mode: ``c`` client threads each keep one request in flight (each its own
connection, and for a sequence model its own sequence, i.e. one camera), for a fixed time after a warm-up. Per
concurrency: requests, throughput (frames/s), p50/p90/p99/mean latency (ms per request) and errors.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from lle.bench.output import write_atomic
from lle.bench.report import HostInfo, collect_host
from lle.errors import ConfigError, LLEError

__all__ = ["DEFAULT_CONCURRENCY", "TritonBenchReport", "TritonBenchRow", "bench_triton", "render_triton_markdown",
           "write_triton_reports"]  # fmt: skip

DEFAULT_CONCURRENCY = (1, 2, 4, 8)


@dataclass(frozen=True, slots=True)
class TritonBenchRow:
    """One concurrency level: latencies in ms per request, throughput in frames per second."""

    concurrency: int
    requests: int
    seconds: float
    throughput_fps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    errors: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class TritonBenchReport:
    host: HostInfo
    settings: dict[str, Any]
    rows: list[TritonBenchRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"host": dataclasses.asdict(self.host), "settings": self.settings,
                "rows": [dataclasses.asdict(r) for r in self.rows]}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def _frame(width: int, height: int, frames: bool, multiple: int) -> np.ndarray:
    from lle.bench.frames import make_frames

    rgb = make_frames(width, height, 1)[0]
    if frames:
        return np.ascontiguousarray(rgb[None, :, :, ::-1])
    from lle.pipeline import pad_to_multiple

    x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    return pad_to_multiple(x, multiple)[0]


def _worker(make: Callable[[], Any], frame: np.ndarray, warmup: int, start: threading.Barrier, stop: threading.Event,
            out: list[float], errors: list[str]) -> None:  # fmt: skip
    try:
        backend = make()
    except LLEError as err:
        errors.append(str(err))
        start.abort()
        return
    try:
        stateful = backend.stateful
        state = backend.zero_state(1) if stateful else None

        def once(alpha: float) -> None:
            if state is not None:
                backend.infer_stateful(frame, state, alpha)
            else:
                backend.infer(frame)

        for i in range(warmup):
            once(0.0 if i == 0 else 0.85)
        try:
            start.wait(timeout=120)
        except threading.BrokenBarrierError:
            return
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                once(0.85)
            except LLEError as err:
                errors.append(str(err))
                continue
            out.append(time.perf_counter() - t0)
    except LLEError as err:
        errors.append(str(err))
        start.abort()
    finally:
        backend.close()


def _level(make: Callable[[], Any], frame: np.ndarray, c: int, seconds: float, warmup: int) -> TritonBenchRow:
    lat: list[list[float]] = [[] for _ in range(c)]
    errors: list[str] = []
    start, stop = threading.Barrier(c + 1), threading.Event()
    threads = [threading.Thread(target=_worker, args=(make, frame, warmup, start, stop, lat[i], errors),
                                name=f"lle-triton-bench-{i}", daemon=True) for i in range(c)]
    for t in threads:
        t.start()
    try:
        start.wait(timeout=180)
    except threading.BrokenBarrierError:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        return TritonBenchRow(c, 0, 0.0, 0.0, None, None, None, None, len(errors), errors[0] if errors else "timeout")
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    wall = time.perf_counter() - t0
    a = np.asarray([x for xs in lat for x in xs]) * 1000.0
    if not a.size:
        return TritonBenchRow(c, 0, wall, 0.0, None, None, None, None, len(errors), errors[0] if errors else "")
    p50, p90, p99 = (float(v) for v in np.percentile(a, [50, 90, 99]))
    return TritonBenchRow(c, int(a.size), wall, a.size * frame.shape[0] / wall, p50, p90, p99, float(a.mean()),
                          len(errors), errors[0] if errors else "")


def bench_triton(
    model: str, url: str, *, size: tuple[int, int] = (1280, 720), concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    seconds: float = 5.0, warmup: int = 3, command: str = "", progress: Callable[[int, int], None] | None = None,
) -> TritonBenchReport:  # fmt: skip
    """Measure ``model`` on the server at ``url`` at each concurrency with one ``size`` (width, height) frame.

    Raises:
        ConfigError: empty or non-positive concurrency list, or seconds <= 0.
        MissingDependencyError / BackendError: tritonclient missing, or the server/model cannot be used.
    """
    from lle.backends.triton_backend import TritonBackend

    levels = tuple(int(c) for c in concurrency)
    if not levels or min(levels) < 1 or seconds <= 0 or warmup < 0:
        raise ConfigError(f"need concurrency levels >= 1, seconds > 0 and warmup >= 0; got {list(levels)}, "
                          f"{seconds}, {warmup}", hint="e.g. --concurrency 1,2,4,8 --seconds 5")

    def make() -> TritonBackend:
        b = TritonBackend(model, url=url)
        b.load()
        return b

    probe = make()
    try:
        info, spec = probe.describe(), probe.input_spec
    finally:
        probe.close()
    frame = _frame(size[0], size[1], spec.frames, spec.size_multiple)
    rows = []
    for i, c in enumerate(levels):
        if progress:
            progress(i, len(levels))
        rows.append(_level(make, frame, c, seconds, warmup))
    if progress:
        progress(len(levels), len(levels))
    settings = {
        "model": model, "url": info.device, "platform": info.extra.get("platform", ""),
        "sequence": info.extra.get("sequence", False), "server_version": info.extra.get("server_version", ""),
        "input": f"{list(frame.shape)} {frame.dtype}", "size": f"{size[0]}x{size[1]}", "seconds": seconds,
        "warmup": warmup, "concurrency": list(levels), "tritonclient": _version("tritonclient"),
        "nvidia-pytriton": _version("nvidia-pytriton"),
    }  # fmt: skip
    return TritonBenchReport(collect_host(command), settings, rows)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_triton_markdown(report: TritonBenchReport, *, notes: str = "") -> str:
    """The report as markdown: host, settings, the concurrency table."""
    h, s = report.host, report.settings
    lines = [
        f"# lle bench --backend triton: {h.slug}", "",
        f"- **Machine:** {h.cpu}, {h.cores} cores" + (f"; GPU: {', '.join(h.gpus)}" if h.gpus else "; no GPU"),
        f"- **OS / Python:** {h.os} / {h.python}",
        f"- **Libraries:** {', '.join(f'{k} {v}' for k, v in h.libraries.items())}, tritonclient {s['tritonclient']},"
        f" nvidia-pytriton {s['nvidia-pytriton']} (Triton server {s['server_version']})",
        f"- **Git:** {h.git_sha}  **Date:** {h.date}",
        f"- **Command:** `{h.command}`" if h.command else "- **Command:** (library call)",
        f"- **Model:** {s['model']} ({s['platform']}{', sequence model' if s['sequence'] else ''}) at {s['url']}, "
        f"input {s['input']}, {s['seconds']:g} s per level after {s['warmup']} warm-up requests per client",
        "", "| concurrency | requests | throughput (frames/s) | p50 ms | p90 ms | p99 ms | mean ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in report.rows:
        lines.append(f"| {r.concurrency} | {r.requests} | {r.throughput_fps:.1f} | {_ms(r.p50_ms)} | {_ms(r.p90_ms)} "
                     f"| {_ms(r.p99_ms)} | {_ms(r.mean_ms)} | {r.errors}{' (' + r.error + ')' if r.error else ''} |")
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def write_triton_reports(report: TritonBenchReport, folder: Path, *, stem: str = "bench-triton",
                         notes: str = "") -> list[Path]:  # fmt: skip
    """Write ``<stem>.md`` and ``<stem>.json`` into ``folder`` (atomically)."""
    folder = Path(folder)
    md = write_atomic(folder / f"{stem}.md", render_triton_markdown(report, notes=notes))
    js = write_atomic(folder / f"{stem}.json", json.dumps(report.to_dict(), indent=2) + "\n")
    return [md, js]
