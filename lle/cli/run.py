"""``lle run``: enhance images, folders, videos, cameras and streams with any backend."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from lle.cli._common import cli_errors, err_console, out_console, progress_bar

__all__ = ["register"]


class EncoderPreset(str, Enum):
    ultrafast = "ultrafast"
    superfast = "superfast"
    veryfast = "veryfast"
    faster = "faster"
    fast = "fast"
    medium = "medium"


class PrecisionChoice(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    int8 = "int8"


@cli_errors
def run(
    model: Annotated[
        Path, typer.Argument(help="Model: a preset name (realtime, quality: the bundled weights, exported once "
                             "and cached), .safetensors, .onnx, OpenVINO .xml or TensorRT .plan/.engine; with "
                             "--backend triton, the model's name on the server.", show_default=False)
    ],
    source: Annotated[
        str, typer.Option("--source", "-s", help="Image, folder, glob, video file, camera index, RTSP/HTTP URL or "
                          "GStreamer pipeline.", show_default=False)
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Image, folder or video file (.mp4/.avi/.mkv/.mov).")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="Inference backend: auto (from the model's file type; for a preset name the "
                          "installed runtime measured fastest here for its graph at the source's frame size and "
                          "--threads, measured once and cached), torch, onnxruntime (ort), "
                          "openvino (ov), tensorrt (trt), triton (a Triton Inference Server: --url), or a backend "
                          "registered under the lle.backends entry points.")
    ] = "auto",
    url: Annotated[
        str | None, typer.Option(help="--backend triton: the server as HOST:PORT (HTTP), http://HOST:PORT or "
                                 "grpc://HOST:PORT.", show_default=False)
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda[:i], gpu, npu (backend-specific).")] = "auto",
    precision: Annotated[PrecisionChoice, typer.Option(help="Compute precision.")] = PrecisionChoice.fp32,
    show: Annotated[bool, typer.Option("--show", help="Show the output in a window (needs a GUI OpenCV).")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="Output input and result side by side.")] = False,
    stats: Annotated[bool, typer.Option("--stats", help="Print per-stage timings at the end.")] = False,
    smoothing: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Temporal smoothing of the realtime model (0 = off).")
    ] = 0.85,
    threads: Annotated[
        int, typer.Option(help="CPU threads for the local runtime (0 = its default; not with --backend triton); "
                          "--backend auto measures the runtimes with this setting.")
    ] = 0,
    encoder_preset: Annotated[
        EncoderPreset, typer.Option(help="x264 speed preset for video output (PyAV): faster = bigger files, more CPU "
                                    "left for the model.")
    ] = EncoderPreset.ultrafast,
    codec_threads: Annotated[
        int, typer.Option(min=0, help="Threads for the video decoder and for the encoder each (0 = FFmpeg's choice); "
                          "on a small CPU, fewer codec threads leave more to the model.")
    ] = 0,
    stall_timeout: Annotated[
        float, typer.Option(min=0.0, help="Stop with an error when the source delivers no frame for this many "
                            "seconds (0 = wait forever).")
    ] = 30.0,
) -> None:
    """Enhance a stream of frames and write, show or compare the result.

    File sources are processed completely and in order; live sources (cameras, RTSP/HTTP, GStreamer) drop stale
    frames to keep latency low. Ctrl-C and SIGTERM stop cleanly: frames in flight are written and the video is
    finalised (.mkv output even survives a full disk: it plays without its index, an MP4 does not).
    Exit codes: 0 done, 1 error (the frames before it are kept), 130 Ctrl-C, 143 SIGTERM.
    Outputs are written to a temporary file and renamed when complete. Video files go through PyAV when it is
    installed (H.264 out, audio copied, frame rate kept); otherwise OpenCV (MPEG-4, no audio).

    Examples: `lle run realtime --source clip.mp4 -o bright.mp4 --stats` (bundled weights);
    `lle run realtime.onnx --source clip.mp4 -o bright.mp4 --stats`;
    `lle run realtime.xml --backend openvino --source 0 --show`;
    `lle run realtime.plan --source rtsp://cam.local/stream -o night.mp4`;
    `lle run realtime_python --backend triton --url grpc://gpu-box:8001 --source clip.mp4 -o bright.mp4`.

    Jetson CSI camera (needs OpenCV with GStreamer, as JetPack ships it), one --source string:
    "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1 ! nvvidconv !
    video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1"
    """
    from lle.backends.registry import backend_class
    from lle.errors import ConfigError
    from lle.streaming import STAGES, run_stream

    if backend != "auto":
        backend_class(backend)  # an unknown name fails here, listing the valid ones

    opts: dict[str, Any] = {"threads": threads} if threads else {}
    if backend == "triton":
        if threads:
            raise ConfigError("--threads is a local-runtime setting; with --backend triton the server decides its own",
                              hint="drop --threads; for lle's python models set lle.threads in "
                              "REPO/<model>/config.pbtxt (or more --triton-instances at export)")  # fmt: skip
        if url is None:
            raise ConfigError("--backend triton needs the server's address", hint="add --url HOST:PORT "
                              "(HTTP, e.g. 127.0.0.1:8000) or --url grpc://HOST:PORT")
        opts = {"url": url}
    elif url is not None:
        raise ConfigError(f"--url is for --backend triton, not {backend}", hint="add --backend triton or drop --url")
    with progress_bar("enhancing", 0) as bar:
        task = bar.task_ids[0]

        def on_start(src: Any, be: Any) -> None:
            info = be.describe()
            total = None if src.live else src.total
            bar.update(task, total=total)
            spec = be.input_spec
            frames = "I420 frames" if spec.i420 else "BGR frames" if spec.frames else "float32 tensors"
            err_console.print(
                f"{src.description} -> {output or ('window' if show else 'nowhere')} with {info.name} "
                f"({info.device}, {info.precision}, {frames})", highlight=False, soft_wrap=True,
            )  # fmt: skip

        def on_frame(done: int, total: int | None, fps: float) -> None:
            bar.update(task, completed=done, total=total, info=f"{fps:.1f} fps")

        result = run_stream(
            model, source, output, backend=backend, device=device, show=show,
            precision=precision.value,  # type: ignore[arg-type]
            compare=compare, smoothing=smoothing, backend_options=opts, progress=on_frame, on_start=on_start,
            encoder_preset=encoder_preset.value, codec_threads=codec_threads, stall_timeout=stall_timeout or None,
        )  # fmt: skip
    msg = f"{result.frames} frame(s) in {result.seconds:.1f} s ({result.fps:.1f} fps)"
    if result.dropped:
        msg += f", dropped {result.dropped} stale frame(s)"
    if result.interrupted:
        msg += f", stopped by {result.signal or 'the user'} (output finalised)"
    out_console.print(msg, highlight=False)
    if result.backend_choice:
        out_console.print(f"backend {result.backend_choice}", highlight=False, soft_wrap=True)
    if stats:
        out_console.print("stage     mean ms   p50 ms   p90 ms  frames", highlight=False)
        for name in STAGES:
            s = result.stages.get(name)
            if s is not None:
                out_console.print(f"{name:<8}{s.mean_ms:>9.2f}{s.p50_ms:>9.2f}{s.p90_ms:>9.2f}{s.frames:>8d}",
                                  highlight=False)
    if result.interrupted:
        raise typer.Exit(143 if result.signal == "SIGTERM" else 130)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
