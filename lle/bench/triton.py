"""``lle bench --backend triton``: latency and throughput of a served model at several client concurrencies.

Like perf_analyzer's concurrency mode: ``c`` client threads each keep one request in flight (each its own
connection, and for a sequence model its own sequence, i.e. one camera), for a fixed time after a warm-up. Per
concurrency: requests, throughput (frames/s), p50/p90/p99/mean latency (ms per request) and errors.

Several transports can be measured in one run, interleaved level by level (and ``rounds`` times over), so that
their ratios hold on a machine whose load drifts: each URL (HTTP and gRPC of one server), with and without system
shared memory, and ``local``: the same artifact run in this process by the runtime the server's Python model uses,
with the same threads per instance (one backend per client thread).
"""

from __future__ import annotations

import dataclasses
import json
import os
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
    """One transport at one concurrency level: latencies in ms per request, throughput in frames per second.

    ``transport``: ``grpc``, ``http``, with ``+shm`` when the tensors went through system shared memory, or
    ``local <runtime> (<n> threads)`` for the in-process reference.
    """

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
    transport: str = ""


@dataclass(frozen=True, slots=True)
class TritonBenchReport:
    host: HostInfo
    settings: dict[str, Any]
    rows: list[TritonBenchRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"host": dataclasses.asdict(self.host), "settings": self.settings,
                "rows": [dataclasses.asdict(r) for r in self.rows]}

    def ratio(self, row: TritonBenchRow) -> float | None:
        """``row``'s throughput over the local reference's at the same concurrency (None without one)."""
        ref = next((r for r in self.rows if r.transport.startswith("local") and r.concurrency == row.concurrency),
                   None)  # fmt: skip
        return row.throughput_fps / ref.throughput_fps if ref is not None and ref.throughput_fps > 0 else None


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


@dataclass(slots=True)
class _Tally:
    """Latencies (s), wall time and errors of one transport at one level, pooled over rounds."""

    lat: list[float] = field(default_factory=list)
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)

    def row(self, c: int, transport: str, frames: int) -> TritonBenchRow:
        first = self.errors[0] if self.errors else ""
        a = np.asarray(self.lat) * 1000.0
        if not a.size:
            return TritonBenchRow(c, 0, self.wall, 0.0, None, None, None, None, len(self.errors),
                                  first or ("timeout" if not self.wall else ""), transport)  # fmt: skip
        p50, p90, p99 = (float(v) for v in np.percentile(a, [50, 90, 99]))
        return TritonBenchRow(c, int(a.size), self.wall, a.size * frames / self.wall, p50, p90, p99, float(a.mean()),
                              len(self.errors), first, transport)  # fmt: skip


def _level(make: Callable[[], Any], frame: np.ndarray, c: int, seconds: float, warmup: int, tally: _Tally) -> None:
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
        tally.errors += errors or ["timeout"]
        return
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    tally.wall += time.perf_counter() - t0
    tally.lat += [x for xs in lat for x in xs]
    tally.errors += errors


def _local_maker(artifact: Path, runtime: str, threads: int) -> Callable[[], Any]:
    from lle.backends.registry import load_backend

    def make() -> Any:
        return load_backend(runtime, artifact, threads=threads)

    return make


def bench_triton(
    model: str, url: str | Sequence[str], *, size: tuple[int, int] = (1280, 720),
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY, seconds: float = 5.0, warmup: int = 3, command: str = "",
    progress: Callable[[int, int], None] | None = None, shm: Sequence[bool | None] = (None,),
    local: Path | None = None, local_threads: int | None = None, rounds: int = 1,
) -> TritonBenchReport:  # fmt: skip
    """Measure ``model`` on the server at ``url`` at each concurrency with one ``size`` (width, height) frame.

    ``url``: one URL, or several (e.g. the HTTP and the gRPC endpoint of one server), each measured. ``shm``: the
    triton backend's shared-memory modes to measure for each URL (``None`` = its default: on for a loopback URL;
    ``(False, True)`` compares both). ``local``: the served artifact on this machine (``REPO/<model>/1/model.onnx``
    or ``.xml``): adds an in-process reference row per level, run by the server model's runtime (``lle.runtime``)
    with ``local_threads`` threads per client (0 = the runtime's default; default: what the server's model uses
    per instance on this machine, see :func:`lle.serve.repository.model_threads`). ``rounds``: the whole sweep is
    repeated, each row pooling its rounds, so that slow drifts of the machine's load hit every transport alike.

    Raises:
        ConfigError: empty or non-positive concurrency list, seconds <= 0, no URL, rounds < 1, or a ``local``
            artifact that does not exist.
        MissingDependencyError / BackendError: tritonclient missing, or the server/model cannot be used.
    """
    from lle.backends.triton_backend import TritonBackend
    from lle.serve.repository import model_threads

    urls = [url] if isinstance(url, str) else list(url)
    levels = tuple(int(c) for c in concurrency)
    if not urls or not levels or min(levels) < 1 or seconds <= 0 or warmup < 0 or rounds < 1 or not shm:
        raise ConfigError(f"need a URL, a shm mode, concurrency levels >= 1, seconds > 0, warmup >= 0 and rounds >= "
                          f"1; got {urls}, {list(shm)}, {list(levels)}, {seconds}, {warmup}, {rounds}",
                          hint="e.g. --concurrency 1,2,4,8 --seconds 5")  # fmt: skip
    if local is not None and not Path(local).is_file():
        raise ConfigError(f"local artifact not found: {local}", hint="pass the served file, REPO/<model>/1/model.onnx")

    def maker(u: str, mode: bool | None) -> Callable[[], TritonBackend]:
        def make() -> TritonBackend:
            b = TritonBackend(model, url=u, shm=mode)
            b.load()
            return b

        return make

    def probe(u: str, mode: bool | None) -> tuple[Any, Any, bool]:
        """Info, input spec and whether shared memory was used, after one request (auto mode may fall back)."""
        b = maker(u, mode)()
        try:
            spec = b.input_spec
            x = _frame(32, 32, spec.frames, spec.size_multiple)
            if spec.state_shape is not None:
                b.infer_stateful(x, b.zero_state(1), 0.0)
            else:
                b.infer(x)
            return b.describe(), spec, bool(b.describe().extra.get("shm"))
        finally:
            b.close()

    probes = {(u, mode): probe(u, mode) for u in urls for mode in dict.fromkeys(shm)}
    info, spec, _ = probes[urls[0], shm[0]]
    frame = _frame(size[0], size[1], spec.frames, spec.size_multiple)
    params = info.extra.get("parameters", {})
    instances = int(info.extra.get("instances") or 1)
    runtime = params.get("lle.runtime", "onnxruntime")
    server_threads = model_threads(int(params.get("lle.threads", "0") or 0), instances)
    transports: list[tuple[str, Callable[[], Any]]] = []
    if local is not None:
        n = server_threads if local_threads is None else local_threads
        label = f"local {runtime} ({n} thread{'s' if n > 1 else ''})" if n else f"local {runtime} (default threads)"
        transports.append((label, _local_maker(Path(local), runtime, n)))
    for u in urls:
        proto = "grpc" if u.startswith("grpc://") else "http"
        for mode in dict.fromkeys(shm):
            transports.append((proto + ("+shm" if probes[u, mode][2] else ""), maker(u, mode)))
    tallies = {(t, c): _Tally() for t, _ in transports for c in levels}
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    total, done = rounds * len(levels) * len(transports), 0
    for _ in range(rounds):
        for c in levels:
            for label, make in transports:
                if progress:
                    progress(done, total)
                _level(make, frame, c, seconds, warmup, tallies[label, c])
                done += 1
    if progress:
        progress(total, total)
    rows = [tallies[t, c].row(c, t, frame.shape[0]) for c in levels for t, _ in transports]
    settings = {
        "model": model, "url": ", ".join(probes[u, shm[0]][0].device for u in urls),
        "platform": info.extra.get("platform", ""), "sequence": info.extra.get("sequence", False),
        "server_version": info.extra.get("server_version", ""), "input": f"{list(frame.shape)} {frame.dtype}",
        "size": f"{size[0]}x{size[1]}", "seconds": seconds, "warmup": warmup, "concurrency": list(levels),
        "rounds": rounds, "transports": [t for t, _ in transports], "runtime": runtime, "instances": instances,
        "server_threads": server_threads, "threads_param": params.get("lle.threads", ""),
        "local": str(local) if local is not None else "",
        "load_avg": [load0, os.getloadavg()[0] if load0 is not None else None],
        "tritonclient": _version("tritonclient"), "nvidia-pytriton": _version("nvidia-pytriton"),
    }  # fmt: skip
    return TritonBenchReport(collect_host(command), settings, rows)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_triton_markdown(report: TritonBenchReport, *, notes: str = "") -> str:
    """The report as markdown: host, settings, the concurrency table (with ``x local`` when there is a reference)."""
    h, s = report.host, report.settings
    threads = s.get("server_threads")
    load = s.get("load_avg") or [None, None]
    has_local = any(r.transport.startswith("local") for r in report.rows)
    lines = [
        f"# lle bench --backend triton: {h.slug}", "",
        f"- **Machine:** {h.cpu}, {h.cores} cores" + (f"; GPU: {', '.join(h.gpus)}" if h.gpus else "; no GPU"),
        f"- **OS / Python:** {h.os} / {h.python}",
        f"- **Libraries:** {', '.join(f'{k} {v}' for k, v in h.libraries.items())}, tritonclient {s['tritonclient']},"
        f" nvidia-pytriton {s['nvidia-pytriton']} (Triton server {s['server_version']})",
        f"- **Git:** {h.git_sha}  **Date:** {h.date}",
        f"- **Command:** `{h.command}`" if h.command else "- **Command:** (library call)",
        f"- **Model:** {s['model']} ({s['platform']}{', sequence model' if s['sequence'] else ''}) at {s['url']}, "
        f"input {s['input']}, {s['seconds']:g} s per level after {s['warmup']} warm-up requests per client"
        + (f", {s['rounds']} rounds (pooled)" if s.get("rounds", 1) > 1 else ""),
    ]  # fmt: skip
    if threads is not None:
        lines.append(f"- **Server model:** {s.get('runtime', '')}, {s.get('instances', 1)} instance(s) x {threads} "
                     f"thread(s) (lle.threads = {s.get('threads_param', '')!s}; 0 = automatic)")
    if load[0] is not None:
        lines.append(f"- **Load average (1 min):** {load[0]:.1f} at the start, {load[1]:.1f} at the end")
    head = "| transport | concurrency | requests | throughput (frames/s) |" + (" x local |" if has_local else "")
    lines += ["", head + " p50 ms | p90 ms | p99 ms | mean ms | errors |",
              "|---|---:|---:|---:|" + ("---:|" if has_local else "") + "---:|---:|---:|---:|---:|"]
    for r in report.rows:
        ratio = report.ratio(r)
        x = (f" {ratio:.2f} |" if ratio is not None else " - |") if has_local else ""
        lines.append(f"| {r.transport or '-'} | {r.concurrency} | {r.requests} | {r.throughput_fps:.1f} |{x} "
                     f"{_ms(r.p50_ms)} | {_ms(r.p90_ms)} | {_ms(r.p99_ms)} | {_ms(r.mean_ms)} "
                     f"| {r.errors}{' (' + r.error + ')' if r.error else ''} |")
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
