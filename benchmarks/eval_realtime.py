"""Realtime preset safety and noise check on real and noisy data; writes benchmarks/results/realtime_v2.md and crops.

    python benchmarks/eval_realtime.py --data ../shared/data [--baseline-onnx OLD_REALTIME.onnx]

Measures, for the bundled realtime weights (and an older realtime export when given, run the same way):
- real low-light photos (``real_lowlight``, no reference): inverted highlights (share of pixels whose brightest input
  channel is > 0.6 that come out more than 0.05 darker in luma), newly blown pixels (output max channel >= 0.98
  where the input's was < 0.98), mean luma in and out;
- noisy synthetic pairs (held-out clean photos through the realtime recipe's sensor-noise synthesis, seeded):
  PSNR, SSIM and output/reference chroma ratio;
- SICE held-out scenes (the training split): PSNR and SSIM.
The bundled weights run through the float32 path ("new") and through the I420 video graph that `lle run` uses for
video ("new (I420 graph)": the image converted to 8-bit I420, enhanced, converted back); "new, output through
4:2:0" is the float32 path's output after a BGR -> I420 -> BGR round trip, what any 4:2:0 video encode keeps of it.
Crops at 100 % (input | baseline | new) of the brightest and the darkest flat region of a few real photos go to
benchmarks/results/realtime_crops/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _chroma(img: np.ndarray) -> float:
    lab = cv2.cvtColor(np.clip(img, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def _runner(path: Path):
    from lle.backends.registry import load_backend
    from lle.pipeline import Enhancer

    be = load_backend("onnxruntime" if path.suffix == ".onnx" else "torch", path)
    be.load()
    enh = Enhancer(be.infer, be.input_spec.size_multiple)

    def run(img: np.ndarray) -> np.ndarray:  # (H, W, 3) RGB float -> same
        return enh(np.ascontiguousarray(img.transpose(2, 0, 1)[None]))[0].transpose(1, 2, 0)

    return run


def _i420_runner(weights: Path):
    """The realtime weights through the I420 video graph (what `lle run` of a video runs): RGB -> I420 -> RGB."""
    import torch

    from lle.io.frames import bgr_to_i420, to_bgr
    from lle.models.checkpoint import load_model
    from lle.models.frames import RealtimeI420Graph

    model, _ = load_model(weights)
    graph = RealtimeI420Graph(model.eval()).eval()

    def run(img: np.ndarray) -> np.ndarray:
        bgr = (np.clip(img, 0, 1)[..., ::-1] * 255.0 + 0.5).astype(np.uint8)
        i420, hw = bgr_to_i420(bgr)
        with torch.no_grad():
            out = graph(torch.from_numpy(i420)[None])[0][0].numpy()
        return to_bgr(out, hw)[..., ::-1].astype(np.float32) / 255.0

    return run


def _through_420(run):
    """``run``'s output as a 4:2:0 video encode would keep it (BGR -> I420 -> BGR): the floor for video output."""
    from lle.io.frames import bgr_to_i420, to_bgr

    def wrapped(img: np.ndarray) -> np.ndarray:
        bgr = (np.clip(run(img), 0, 1)[..., ::-1] * 255.0 + 0.5).astype(np.uint8)
        i420, hw = bgr_to_i420(bgr)
        return to_bgr(i420, hw)[..., ::-1].astype(np.float32) / 255.0

    return wrapped


def _safety(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    bright = x.max(axis=2) > 0.6
    inverted = bright & ((y @ LUMA) < (x @ LUMA) - 0.05)
    blown = (y.max(axis=2) >= 0.98) & (x.max(axis=2) < 0.98)
    return float(inverted.sum()), float(blown.mean()), int(bright.sum())


def _crop_pair(x: np.ndarray, outs: list[np.ndarray], size: int = 96) -> list[np.ndarray]:
    h, w = x.shape[:2]
    s = min(size, h, w)
    lum = cv2.blur(x @ LUMA, (s, s))
    grad = cv2.blur(np.abs(cv2.Laplacian(x @ LUMA, cv2.CV_32F)), (s, s))
    half = s // 2
    inner = (slice(half, h - half), slice(half, w - half))
    picks = []
    for score in (lum, -(lum + 20 * grad)):  # brightest region (lamps/windows), darkest flat region
        sub = score[inner]
        cy, cx = np.unravel_index(int(np.argmax(sub)), sub.shape)
        picks.append((cy, cx))
    rows = []
    for cy, cx in picks:
        tiles = [a[cy : cy + s, cx : cx + s] for a in (x, *outs)]
        rows.append(np.hstack([cv2.resize(t, (s * 2, s * 2), interpolation=cv2.INTER_NEAREST) for t in tiles]))
    return rows


def main() -> None:
    import torch

    from lle.config import load_config
    from lle.data.datasets import load_images
    from lle.host import cpu_features
    from lle.io.image import find_images
    from lle.training.config import TrainConfig
    from lle.training.data import build_data
    from lle.training.metrics import psnr, ssim

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--weights", type=Path, default=ROOT / "lle" / "weights" / "realtime.safetensors")
    ap.add_argument("--baseline-onnx", type=Path)
    ap.add_argument("--crops", type=int, default=6)
    ap.add_argument("--no-i420", action="store_true", help="skip the I420 video graph row")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "realtime_v2.md")
    args = ap.parse_args()
    torch.set_num_threads(2)
    models = {"new": _runner(args.weights)}
    if not args.no_i420:
        models["new, output through 4:2:0"] = _through_420(models["new"])
        models["new (I420 graph)"] = _i420_runner(args.weights)
    if args.baseline_onnx:
        models = {"baseline": _runner(args.baseline_onnx), **models}

    real = sorted(p for d in sorted((args.data / "real_lowlight").iterdir()) if d.is_dir() for p in find_images(d))
    imgs = load_images(real, max_side=960)
    inv = {k: 0.0 for k in models}
    bright_total = 0
    blown = {k: [] for k in models}
    luma_in, luma_out = [], {k: [] for k in models}
    crop_dir = args.out.parent / "realtime_crops"
    crop_dir.mkdir(parents=True, exist_ok=True)
    for i, (path, x) in enumerate(zip(real, imgs, strict=True)):
        outs = {k: np.clip(m(x), 0, 1) for k, m in models.items()}
        luma_in.append(float((x @ LUMA).mean()))
        for k, y in outs.items():
            n_inv, b, n_bright = _safety(x, y)
            inv[k] += n_inv
            blown[k].append(b)
            luma_out[k].append(float((y @ LUMA).mean()))
        bright_total += n_bright
        if i % max(1, len(real) // args.crops) == 0:
            rows = _crop_pair(x, list(outs.values()))
            sheet = np.vstack(rows)
            cv2.imwrite(str(crop_dir / f"{path.parent.name}_{path.stem}.png"),
                        (np.clip(sheet, 0, 1)[..., ::-1] * 255 + 0.5).astype(np.uint8))

    cfg = load_config(TrainConfig, ROOT / "training" / "configs" / "realtime.yaml", [])
    clean_root = args.data / "clean"
    from dataclasses import replace

    dcfg = replace(cfg.data, pairs=[str(args.data / "sice_pairs")], val_pairs=[], clean=[str(clean_root)])
    data = build_data(dcfg, 0)
    pair_rows = {}
    for split, pairs in (("sice_pairs", data.val.get("sice_pairs", [])), ("synthetic", data.val.get("synthetic", []))):
        for k, m in models.items():
            ps, ss, cr = [], [], []
            for p in pairs:
                y = np.clip(m(p.low), 0, 1)
                yt, rt = (torch.from_numpy(a.transpose(2, 0, 1)[None].copy()) for a in (y, p.ref))
                ps.append(float(psnr(yt, rt)))
                ss.append(float(ssim(yt, rt)))
                cr.append(_chroma(y) / max(_chroma(p.ref), 1e-6))
            pair_rows[(split, k)] = (np.mean(ps), np.mean(ss), np.mean(cr), len(pairs))

    lines = [f"| {k} | {100 * inv[k] / max(1, bright_total):.2f} % | {100 * np.mean(blown[k]):.2f} % | "
             f"{np.mean(luma_in):.3f} -> {np.mean(luma_out[k]):.3f} |" for k in models]
    prow = [f"| {s} ({v[3]}) | {k} | {v[0]:.2f} | {v[1]:.3f} | {v[2]:.2f} |" for (s, k), v in pair_rows.items()]
    text = f"""# Realtime preset: highlight safety, noise and colour

- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {cpu_features()[0]}; python \
{platform.python_version()}, torch {torch.__version__}
- command: `python benchmarks/eval_realtime.py {' '.join(sys.argv[1:])}`
- new: `{args.weights.relative_to(ROOT) if args.weights.is_relative_to(ROOT) else args.weights}`; baseline: \
`{args.baseline_onnx.name if args.baseline_onnx else 'none'}`

Real low-light photos ({len(real)} from `real_lowlight`, long side <= 960; {bright_total} pixels brighter than 0.6):

| model | inverted highlights (of bright px) | newly blown px | mean luma in -> out |
|---|---|---|---|
{chr(10).join(lines)}

Paired data (SICE held-out scenes; synthetic = held-out clean photos through the realtime recipe's sensor noise):

| set (pairs) | model | PSNR dB | SSIM | chroma out/ref |
|---|---|---|---|---|
{chr(10).join(prow)}

Crops (input | {' | '.join(models)}; brightest region, then darkest flat region; 2x nearest): `realtime_crops/`.
"""
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
