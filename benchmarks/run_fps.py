"""End-to-end `lle run` FPS on synthetic 720p/1080p videos, per preset and backend, with per-stage timings.

    python benchmarks/run_fps.py [--frames 48] [--quality-frames 6] [--backends onnxruntime,openvino]

Weights: the bundled lle/weights/{preset}.safetensors when present, else the tiny test
models (numbers then say so). Writes benchmarks/results/run_fps.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def synthetic_video(path: Path, size: tuple[int, int], n: int, fps: float = 30.0) -> Path:
    w, h = size
    r = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = (30 + 20 * np.sin(xx / 97.0) * np.cos(yy / 61.0))[..., None] * np.array([1.0, 0.9, 0.7], np.float32)
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    for i in range(n):
        f = np.roll(base, 8 * i, axis=1) + r.normal(0, 3, (h, w, 3)).astype(np.float32)
        writer.write(np.clip(f, 0, 255).astype(np.uint8))
    writer.release()
    return path


def models(tmp: Path) -> tuple[dict[str, dict[str, Path]], str]:
    from lle.export.onnx_export import export_onnx
    from lle.models.checkpoint import card_path, load_model

    out: dict[str, dict[str, Path]] = {}
    origin = []
    for preset in ("quality", "realtime"):
        src = ROOT / "lle" / "weights" / f"{preset}.safetensors"
        dst = tmp / f"{preset}.safetensors"
        if src.is_file():
            shutil.copy(src, dst)
            shutil.copy(card_path(src), card_path(dst))
            origin.append(f"{preset}: {src.relative_to(ROOT)} (bundled trained weights)")
        else:
            from conftest import make_tiny_weights

            make_tiny_weights(dst, preset)
            origin.append(f"{preset}: tiny test model (no trained weights found)")
        model, card = load_model(dst)
        out[preset] = {"torch": dst, "onnxruntime": export_onnx(model, tmp / f"{preset}.onnx", card=card)}
        out[preset]["openvino"] = out[preset]["onnxruntime"]
        out[preset]["arch"] = card.arch  # type: ignore[assignment]
    return out, "; ".join(origin)


def versions() -> str:
    import onnxruntime
    import openvino
    import torch

    from lle import __version__

    return (f"lle {__version__}, onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__.split('-')[0]}, "
            f"torch {torch.__version__}, opencv {cv2.__version__}, numpy {np.__version__}, python "
            f"{platform.python_version()}")


def main() -> None:
    from lle.host import cpu_features

    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=48, help="frames per realtime clip")
    ap.add_argument("--quality-frames", type=int, default=6, help="frames per quality clip (slow on CPU)")
    ap.add_argument("--backends", default="onnxruntime,openvino")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "run_fps.md")
    args = ap.parse_args()
    from lle.streaming import STAGES, run_stream

    backends = args.backends.split(",")
    rows, stage_rows = [], []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        arts, origin = models(tmp)
        for size_name, size in SIZES.items():
            for preset in ("realtime", "quality"):
                n = args.frames if preset == "realtime" else args.quality_frames
                clip = synthetic_video(tmp / f"{preset}_{size_name}.mp4", size, n)
                for be in backends:
                    res = run_stream(arts[preset][be], str(clip), tmp / "out.mp4", backend=be, device="cpu")
                    print(f"{preset} {size_name} {be}: {res.fps:.2f} fps", flush=True)
                    rows.append(f"| {preset} | {size_name} | {be} | {res.frames} | {res.fps:.2f} |")
                    st = " | ".join(f"{res.stages[s].mean_ms:.1f}" if s in res.stages else "-" for s in STAGES)
                    stage_rows.append(f"| {preset} | {size_name} | {be} | {st} |")
    load = os.getloadavg()
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    text = f"""# `lle run` end-to-end FPS (CPU)

- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, git {sha.stdout.strip()}
- machine: {cpu_features()[0]}, {os.cpu_count()} logical cores, load average at the end {load[0]:.1f} / {load[1]:.1f}
  (numbers are only comparable at a similar load)
- versions: {versions()}
- models: {origin}
- command: `python benchmarks/run_fps.py --frames {args.frames} --quality-frames {args.quality_frames} \
--backends {args.backends}`
- pipeline: synthetic mp4v video -> decode -> pre (BGR uint8 -> RGB float NCHW) -> infer (pad, run, crop, clip) ->
  post (-> BGR uint8) -> mp4v encode, fp32, batch 1, one thread per stage, smoothing on for realtime.

| preset | size | backend | frames | FPS |
|---|---|---|---|---|
{chr(10).join(rows)}

Mean milliseconds per frame per stage (stages run concurrently, so FPS is set by the slowest stage plus contention):

| preset | size | backend | {' | '.join(STAGES)} |
|---|---|---|{'---|' * len(STAGES)}
{chr(10).join(stage_rows)}
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
