"""``lle bench``: latency, FPS, memory and accuracy of every backend/precision at several sizes, with reports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lle.cli._common import cli_errors, default_weights, err_console, out_console, progress_bar
from lle.errors import InputError

__all__ = ["parse_min_psnr", "parse_sizes", "register"]

DEFAULT_SIZES = "640x360,1280x720,1920x1080"
DEFAULT_BACKENDS = "torch,onnxruntime,openvino,tensorrt"


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """``"640x360,1280x720"`` -> ((640, 360), (1280, 720)).

    Raises:
        InputError: an entry is not WIDTHxHEIGHT with positive integers, or the list is empty.
    """
    from lle.bench.frames import parse_size

    items = _split(text)
    if not items:
        raise InputError(f"--sizes {text!r} names no size", hint="e.g. --sizes 640x360,1280x720")
    try:
        return tuple(parse_size(s) for s in items)
    except ValueError as err:
        raise InputError(f"--sizes: {err}", hint="e.g. --sizes 640x360,1280x720,1920x1080") from err


def parse_min_psnr(text: str | None) -> dict[str, float]:
    """``"int8=28,fp16=38"`` merged over the default thresholds (fp32 50, bf16 35, fp16 40, int8 30 dB).

    Raises:
        InputError: an entry is not PRECISION=DB.
    """
    from lle.bench.runner import DEFAULT_MIN_PSNR

    out = dict(DEFAULT_MIN_PSNR)
    for item in _split(text or ""):
        key, sep, val = item.partition("=")
        try:
            out[key.strip()] = float(val)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise InputError(f"--min-psnr entry {item!r} is not PRECISION=DB", hint="e.g. --min-psnr int8=28,fp16=38")
    return out


@cli_errors
def bench(
    preset: Annotated[
        str | None, typer.Option(help="Model preset (quality | realtime) with its bundled weights.", show_default=False)
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="Weights .safetensors (with its .json card).")] = None,
    artifacts: Annotated[
        Path | None, typer.Option(help="Folder written by `lle export`; its artifacts are used before exporting.")
    ] = None,
    backends: Annotated[
        str, typer.Option(help="Comma-separated backends (torch, onnxruntime, openvino, tensorrt).")
    ] = DEFAULT_BACKENDS,
    precisions: Annotated[str, typer.Option(help="Comma-separated precisions: fp32, fp16, bf16, int8.")] = "fp32,int8",
    sizes: Annotated[str, typer.Option(help="Comma-separated WIDTHxHEIGHT frame sizes.")] = DEFAULT_SIZES,
    batch: Annotated[int, typer.Option(min=1, help="Frames per inference call.")] = 1,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls before measuring.")] = 3,
    iters: Annotated[int | None, typer.Option(min=1, help="Timed calls per row (instead of --seconds).")] = None,
    seconds: Annotated[
        float | None, typer.Option(min=0.001, help="Time budget per row in seconds (default: 3).", show_default=False)
    ] = None,
    threads: Annotated[int, typer.Option(min=0, help="CPU threads per runtime (0 = runtime default).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda[:i], or an OpenVINO device (GPU, NPU).")] = "auto",
    video: Annotated[
        Path | None, typer.Option(help="End-to-end mode: FPS of decode -> enhance -> encode over this video.")
    ] = None,
    min_psnr: Annotated[
        str | None,
        typer.Option(help="PSNR thresholds vs torch fp32, e.g. int8=28,fp16=38 (default: fp32=50,fp16=40,int8=30)."),
    ] = None,
    quality_frames: Annotated[int, typer.Option(min=1, help="Test frames for the accuracy check.")] = 3,
    frames: Annotated[
        Path | None,
        typer.Option(help="Folder of your own test images (low-light; resized to each size) instead of the samples."),
    ] = None,
    darken: Annotated[
        bool | None,
        typer.Option("--darken/--no-darken", help="Darken the test frames (default: only the built-in samples).",
                     show_default=False),
    ] = None,
    references: Annotated[
        bool, typer.Option(help="Add the resize+copy floor and torch eager FP32 reference rows.")
    ] = True,
    calib: Annotated[
        Path | None,
        typer.Option(help="Calibration images for INT8 exports made on the fly, e.g. calibration_data/images."),
    ] = None,
    calib_n: Annotated[int, typer.Option(min=1, help="Calibration images used per INT8 export.")] = 32,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Keep on-the-fly exports here (default: a temp folder, removed after).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Report folder (default: benchmarks/results/<machine>/).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Report file stem (default: bench-<preset>).")] = None,
    plots: Annotated[bool, typer.Option(help="Write PNG plots (needs matplotlib).")] = True,
    backend: Annotated[
        str | None, typer.Option(help="triton: benchmark a model served by Triton Inference Server (--url, --model) "
                                 "at several client concurrencies instead of local backends.", show_default=False)
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="--backend triton: HOST:PORT (HTTP), http://HOST:PORT or grpc://HOST:PORT.",
                                 show_default=False)
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="--backend triton: the model's name on the server.", show_default=False)
    ] = None,
    concurrency: Annotated[
        str, typer.Option(help="--backend triton: comma-separated numbers of clients, each with one request in "
                          "flight.")
    ] = "1,2,4,8",
    local: Annotated[
        Path | None, typer.Option(help="--backend triton: the served artifact on this machine "
                                  "(REPO/<model>/1/model.onnx); adds an in-process reference row per level.",
                                  show_default=False)
    ] = None,
    shm: Annotated[
        str, typer.Option(help="--backend triton: system shared memory: auto (on for a loopback --url), on, off, "
                          "or both (measure each).")
    ] = "auto",
    rounds: Annotated[int, typer.Option(min=1, help="--backend triton: repeat the sweep, pooling the rounds.")] = 1,
) -> None:
    """Benchmark backends x precisions x sizes, with the accuracy cost of each.

    Per row: p50/p90/p99 latency, FPS, pre/infer/post split, memory, artifact size and PSNR against torch FP32
    eager. Writes JSON, CSV, markdown and PNG plots.

    Status per row: ✅ ran and matched FP32 within tolerance, ❎ ran but failed the accuracy check, ❌ could not
    export/load/run (with the reason).
    """
    if backend is not None or url is not None or model is not None:
        _bench_triton(backend, url, model, concurrency, sizes, seconds, warmup, out, name, local, shm, rounds)
        return
    from lle.bench.artifacts import ExportSettings
    from lle.bench.output import write_reports
    from lle.bench.report import render_table
    from lle.bench.runner import BenchConfig, run_bench

    if iters is not None and seconds is not None:
        raise InputError("give --iters or --seconds, not both")
    from lle.presets import PRESETS

    if preset is not None and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}", hint=" or ".join(PRESETS))
    size_list = parse_sizes(sizes)
    thresholds = parse_min_psnr(min_psnr)
    if calib is not None and not calib.is_dir():
        raise InputError(f"--calib folder not found: {calib}", hint="e.g. --calib calibration_data/images")
    if frames is not None and not frames.is_dir():
        raise InputError(f"--frames folder not found: {frames}")
    if video is not None and not video.is_file():
        raise InputError(f"video not found: {video}")
    if artifacts is not None and not artifacts.is_dir():
        raise InputError(f"--artifacts folder not found: {artifacts}", hint="a folder written by `lle export`")
    w = None
    if weights is not None or preset is not None or artifacts is None:
        w = default_weights(preset or "realtime", weights)
    cfg = BenchConfig(
        weights=w, artifacts=artifacts, backends=tuple(_split(backends)), precisions=tuple(_split(precisions)),
        sizes=size_list, batch=batch, warmup=warmup, iters=iters, seconds=seconds, threads=threads, device=device,
        quality_frames=quality_frames, min_psnr=thresholds, references=references, cache_dir=cache_dir, video=video,
        frames=frames, darken=frames is None if darken is None else darken,
        export=ExportSettings(calib=calib, calib_n=calib_n),
    )  # fmt: skip
    command = " ".join(["lle", *sys.argv[1:]]) if sys.argv and "lle" in Path(sys.argv[0]).name else ""
    with progress_bar("benchmarking", total=1) as bar:
        task = bar.task_ids[0]
        report = run_bench(cfg, command=command, progress=lambda i, n: bar.update(task, completed=i, total=n))
    out_console.print(render_table(report, width=out_console.width))
    for b in report.summary.get("best", []):
        speed = f", {b['speedup']:.2f}x torch eager" if b.get("speedup") else ""
        out_console.print(f"best at {b['size']}: {b['label']} {b['fps']:.1f} FPS{speed}", highlight=False)
    folder = out or Path("benchmarks") / "results" / report.host.slug
    stem = name or f"bench-{report.settings['preset']}" + ("-video" if video else "")
    written = write_reports(report, folder, stem=stem, plots=plots)
    err_console.print(f"wrote {', '.join(p.name for p in written)} to {folder}", highlight=False)


def _command() -> str:
    return " ".join(["lle", *sys.argv[1:]]) if sys.argv and "lle" in Path(sys.argv[0]).name else ""


_SHM_MODES: dict[str, tuple[bool | None, ...]] = {"auto": (None,), "on": (True,), "off": (False,),
                                                  "both": (False, True)}


def _bench_triton(backend: str | None, url: str | None, model: str | None, concurrency: str, sizes: str,
                  seconds: float | None, warmup: int, out: Path | None, name: str | None, local: Path | None = None,
                  shm: str = "auto", rounds: int = 1) -> None:  # fmt: skip
    from rich.table import Table

    from lle.bench.triton import bench_triton, write_triton_reports

    if backend != "triton":
        raise InputError(f"--backend {backend!r}: lle bench serves only --backend triton (local backends: --backends)",
                         hint="lle bench --backend triton --url HOST:PORT --model NAME")
    if url is None or model is None:
        raise InputError("--backend triton needs --url and --model", hint="e.g. --url 127.0.0.1:8000 --model "
                         "realtime_python")
    try:
        levels = [int(c) for c in _split(concurrency)]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise InputError(f"--concurrency {concurrency!r} is not a list of positive integers", hint="e.g. 1,2,4,8")
    size = parse_sizes("1280x720" if sizes == DEFAULT_SIZES else sizes)
    if len(size) != 1:
        raise InputError("--backend triton measures one frame size", hint="e.g. --sizes 1280x720")
    if shm not in _SHM_MODES:
        raise InputError(f"--shm {shm!r} is not a shared-memory mode", hint=" | ".join(_SHM_MODES))
    if local is not None and not local.is_file():
        raise InputError(f"--local artifact not found: {local}", hint="the served file, REPO/<model>/1/model.onnx")
    with progress_bar("benchmarking", total=len(levels)) as bar:
        task = bar.task_ids[0]
        report = bench_triton(model, _split(url), size=size[0], concurrency=levels, seconds=seconds or 5.0,
                              warmup=warmup, command=_command(), shm=_SHM_MODES[shm], local=local, rounds=rounds,
                              progress=lambda i, n: bar.update(task, completed=i, total=n))
    table = Table(title=f"{model} at {report.settings['url']} ({report.settings['input']})")
    table.add_column("transport")
    for col in ("concurrency", "requests", "frames/s", "x local", "p50 ms", "p90 ms", "p99 ms", "errors"):
        table.add_column(col, justify="right")
    for r in report.rows:
        ratio = report.ratio(r)
        table.add_row(r.transport, str(r.concurrency), str(r.requests), f"{r.throughput_fps:.1f}",
                      "-" if ratio is None else f"{ratio:.2f}",
                      *("-" if v is None else f"{v:.1f}" for v in (r.p50_ms, r.p90_ms, r.p99_ms)), str(r.errors))
    out_console.print(table)
    folder = out or Path("benchmarks") / "results" / report.host.slug
    written = write_triton_reports(report, folder, stem=name or "bench-triton")
    err_console.print(f"wrote {', '.join(p.name for p in written)} to {folder}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
