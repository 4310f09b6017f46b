"""Soak test of `lle run`: 10 000+ frames from a synthetic live source and a video file, memory sampled every second.

    python benchmarks/soak.py [--frames 12000] [--size 160x120] [--fps 60] [--model realtime]

Two runs, each long enough to show a leak as a slope:

- **live**: an in-process synthetic camera (``live = True``: frames at --fps whether or not the pipeline keeps up,
  stale ones dropped) through the same :class:`~lle.streaming.StreamRunner` and backend `lle run` builds, into a
  Matroska file. Recorded: resident memory every second, frames written and dropped, capture-to-written latency
  (p50/p90/p99 per 10 s window).
- **file**: `lle run MODEL --source soak.mkv -o out.mkv` as a subprocess on a synthetic video of --frames frames;
  its resident memory is read from /proc every second and the output's frames are counted (none may be lost).

Memory growth is the median RSS of the last 10 % of samples against the median of the 10 % right after warm-up
(the first 20 % of the run). Writes benchmarks/results/soak.json, soak.md and soak.png (machine from `lle info`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_of(pid: int | str = "self") -> int:
    """Resident bytes of a process (Linux /proc)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


class Sampler:
    """RSS of ``pid`` every ``every`` seconds on a thread, as (seconds since start, bytes)."""

    def __init__(self, pid: int | str = "self", every: float = 1.0) -> None:
        self.pid, self.every, self.samples = pid, every, []  # type: list[tuple[float, int]]
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter() - self._t0, rss_of(self.pid)))
            except (OSError, ValueError):
                return
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def frame_image(i: int, w: int, h: int) -> np.ndarray:
    """A dark moving gradient with noise: frame ``i`` (H, W, 3) BGR uint8."""
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    base = 25 + 15 * np.sin((x + 2 * i) / 17.0) * np.cos((y - i) / 13.0)
    noise = np.random.default_rng(i).normal(0, 3, (h, w)).astype(np.float32)
    g = np.clip(base + noise, 0, 255).astype(np.uint8)
    return np.dstack([g, (g * 0.9).astype(np.uint8), (g * 0.7).astype(np.uint8)])


def growth(samples: list[tuple[float, int]]) -> dict[str, float]:
    """RSS growth after warm-up: median of the last 10 % vs the 10 % after the first 20 % of the run."""
    rss = np.array([s[1] for s in samples], np.float64)
    n = len(rss)
    if n < 10:
        return {"start_mb": float("nan"), "end_mb": float("nan"), "growth_pct": float("nan")}
    a = rss[int(0.2 * n) : max(int(0.3 * n), int(0.2 * n) + 1)]
    b = rss[int(0.9 * n) :]
    start, end = float(np.median(a)), float(np.median(b))
    return {"start_mb": start / 2**20, "end_mb": end / 2**20, "peak_mb": float(rss.max()) / 2**20,
            "growth_pct": 100.0 * (end - start) / start}  # fmt: skip


def run_live(model: str, frames: int, size: tuple[int, int], fps: float, out: Path) -> dict[str, Any]:
    from lle.backends.registry import auto_backend, backend_class
    from lle.io.av_video import AvVideoSink
    from lle.io.sinks import Sink
    from lle.io.sources import Frame, Source
    from lle.presets import resolve_model
    from lle.streaming.runner import StreamRunner

    w, h = size
    pool = [frame_image(i, w, h) for i in range(64)]

    class LiveSource(Source):
        live, description = True, f"synthetic camera {w}x{h} @ {fps:g} fps"

        def __init__(self) -> None:
            self.fps, self.size = fps, size

        def __iter__(self) -> Iterator[Frame]:
            t0 = time.perf_counter()
            for i in range(frames):
                wait = t0 + i / fps - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                yield Frame(i, pool[i % len(pool)].copy(), f"f{i:06d}.png", time.perf_counter())

    lat: list[tuple[float, float]] = []
    t_start = time.perf_counter()

    class Latency(Sink):
        def write(self, frame: Frame, image: np.ndarray) -> None:
            now = time.perf_counter()
            lat.append((now - t_start, now - frame.t_capture))

    path, backend, opts = resolve_model(Path(model), "auto")
    be = backend_class(auto_backend(Path(path)) if backend == "auto" else backend)(Path(path), **opts)
    with be, Sampler() as sampler:
        runner = StreamRunner(be, LiveSource(), [AvVideoSink(out, fps), Latency()])
        res = runner.run()
    windows = []
    arr = np.array(lat)
    for t0 in np.arange(0, arr[-1, 0] + 1e-9, 10.0):
        sel = arr[(arr[:, 0] >= t0) & (arr[:, 0] < t0 + 10.0), 1] * 1000.0
        if len(sel):
            pct = {f"p{q}_ms": float(np.percentile(sel, q)) for q in (50, 90, 99)}
            windows.append({"t": float(t0), "frames": int(len(sel)), **pct})
    allms = arr[:, 1] * 1000.0
    return {
        "source_frames": frames, "written": res.frames, "dropped": res.dropped, "seconds": res.seconds,
        "fps": res.fps, "latency_ms": {q: float(np.percentile(allms, int(q[1:]))) for q in ("p50", "p90", "p99")},
        "windows": windows, "rss": sampler.samples, "memory": growth(sampler.samples), "backend": be.describe().name,
        "output_frames": count_frames(out),
    }  # fmt: skip


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def make_video(path: Path, frames: int, size: tuple[int, int], fps: float) -> Path:
    import av

    w, h = size
    pool = [frame_image(i, w, h) for i in range(64)]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=int(fps))
        s.width, s.height, s.pix_fmt, s.options = w, h, "yuv420p", {"preset": "ultrafast"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(pool[i % len(pool)], format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def run_file(model: str, video: Path, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "lle.cli.app", "run", model, "--source", str(video), "-o", str(out)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Sampler(p.pid) as sampler:
        stdout, stderr = p.communicate(timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{stderr[-3000:]}")
    return {"command": " ".join(["lle", *cmd[3:]]), "seconds": time.perf_counter() - t0, "summary": stdout.strip(),
            "rss": sampler.samples, "memory": growth(sampler.samples), "output_frames": count_frames(out)}  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    for name in ("live", "file"):
        r = result[name]
        t = [s[0] for s in r["rss"]]
        ax[0].plot(t, [s[1] / 2**20 for s in r["rss"]], label=f"{name} (growth {r['memory']['growth_pct']:+.1f} %)")
    ax[0].set(xlabel="seconds", ylabel="resident memory (MiB)", title="RSS every second")
    ax[0].legend()
    win = result["live"]["windows"]
    for q in ("p50", "p90", "p99"):
        ax[1].plot([x["t"] for x in win], [x[f"{q}_ms"] for x in win], label=q)
    ax[1].set(xlabel="seconds", ylabel="capture -> written (ms)", title="live latency per 10 s window")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_markdown(result: dict[str, Any], path: Path) -> None:
    live, file = result["live"], result["file"]
    lines = [
        "# Soak test of `lle run`", "",
        f"Date: {result['date']}. Command: `{result['command']}`. The machine was shared with a training run "
        "(the script ran under `nice -n 15`), so speeds are lower bounds; memory is what this measures.", "",
        "```", result["machine"], "```", "",
        "| run | frames in | written | dropped | seconds | FPS | RSS after warm-up | RSS at end | growth |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, r, n_in in (("live (synthetic camera)", live, live["source_frames"]), ("file (`lle run` on a video)",
                                                                                    file, result["frames"])):
        m = r["memory"]
        dropped = r.get("dropped", n_in - r["output_frames"])
        fps = r.get("fps", r["output_frames"] / r["seconds"])
        lines.append(f"| {name} | {n_in} | {r['output_frames']} | {dropped} | {r['seconds']:.0f} | {fps:.0f} | "
                     f"{m['start_mb']:.0f} MiB | {m['end_mb']:.0f} MiB | {m['growth_pct']:+.1f} % |")  # fmt: skip
    lat = live["latency_ms"]
    lines += ["", f"Live latency (capture to written): p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, "
              f"p99 {lat['p99']:.1f} ms over {live['written']} frames.", "",
              "| window (s) | frames | p50 ms | p90 ms | p99 ms |", "|---|---|---|---|---|"]  # fmt: skip
    for x in live["windows"]:
        lines.append(f"| {x['t']:.0f} | {x['frames']} | {x['p50_ms']:.1f} | {x['p90_ms']:.1f} | {x['p99_ms']:.1f} |")
    lines += ["", "![soak](soak.png)", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=12000)
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--fps", type=float, default=60.0, help="rate of the synthetic camera (and of the video)")
    ap.add_argument("--model", default="realtime", help="what `lle run` gets as MODEL (a preset name or a file)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    info = subprocess.run([sys.executable, "-m", "lle.cli.app", "info"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "120"}).stdout.strip()  # fmt: skip
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "frames": a.frames,
                              "size": [w, h], "fps": a.fps, "machine": info,
                              "command": " ".join(["python benchmarks/soak.py", *sys.argv[1:]])}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lle-soak-") as tmp:
        print(f"live: {a.frames} frames {w}x{h} at {a.fps:g} fps ...", flush=True)
        result["live"] = run_live(a.model, a.frames, (w, h), a.fps, Path(tmp) / "live.mkv")
        print(f"file: making a {a.frames}-frame video ...", flush=True)
        video = make_video(Path(tmp) / "soak.mkv", a.frames, (w, h), a.fps)
        result["file"] = run_file(a.model, video, Path(tmp) / "out.mkv")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "soak.json").write_text(json.dumps(result, indent=1))
    plot(result, a.out / "soak.png")
    write_markdown(result, a.out / "soak.md")
    for name in ("live", "file"):
        r = result[name]
        print(f"{name}: written {r['output_frames']}, memory {r['memory']['growth_pct']:+.2f} % after warm-up")


if __name__ == "__main__":
    main()
