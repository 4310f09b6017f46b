"""Evaluate both presets and the classical baselines on every validation split; write benchmarks/results/quality.md.

    python benchmarks/eval_quality.py --quality lle/weights/quality.safetensors \
        --quality-before runs/old_quality.safetensors --realtime lle/weights/realtime.safetensors --data ../shared/data
        [--realtime-before runs/old_realtime.safetensors]

Validation splits are exactly the ones training held out (training/configs/quality.yaml: SICE and the real noisy LOL
pairs split by scene_group (LOL at its native 600x400),
synthetic pairs from held-out clean photos through the simple recipe and through the camera model, all 17 FiveK
pairs). Per method: PSNR, GT-mean PSNR, SSIM, brightness error and the picture faults of lle.eval_metrics (chroma
ratio, a*b* error, grain in the reference's flat dark areas, black level against the reference's, local-contrast
ratio, newly clipped and inverted highlights). Unpaired real
low-light photos get mean luma, grain, clipped and inverted highlights. A "moderate" set (held-out clean photos
exposed down to mean lumas of 0.20, 0.25 and 0.30, around a lit night street) checks that exposure follows the
scene. Contact sheets and 100 % crops go to benchmarks/results/quality_sheets/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from lle import __version__
from lle.backends.torch_backend import TorchBackend
from lle.config import load_config
from lle.data.datasets import load_images
from lle.data.synth import linear_to_srgb, srgb_to_linear
from lle.eval_metrics import picture_metrics
from lle.evaluate import BASELINES, contact_sheet, crop_sheet, evaluate, write_report
from lle.host import cpu_features
from lle.io.image import find_images, from_nchw, read_image, to_nchw, write_image
from lle.models.checkpoint import load_card
from lle.pipeline import Enhancer
from lle.training.config import TrainConfig
from lle.training.data import build_data

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _enhancer(weights: Path):
    b = TorchBackend(weights)
    b.load()
    enh = Enhancer(b.infer, b.input_spec.size_multiple)
    return lambda x: from_nchw(enh(to_nchw(x)))


def _expose_to(img: np.ndarray, luma: float) -> np.ndarray:
    """``img`` with its exposure (in linear light) scaled so that its mean sRGB luma is about ``luma``."""
    lin = srgb_to_linear(img)
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if float((linear_to_srgb(lin * mid) @ _LUMA).mean()) < luma:
            lo = mid
        else:
            hi = mid
    return np.round(linear_to_srgb(lin * lo) * 255) / 255


def _trained(w: Path) -> str:
    t = load_card(w).training
    return f"{t.get('steps', '?')} steps, {t.get('minutes', '?')} min on {t.get('device', '?')}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", type=Path, default=Path("lle/weights/quality.safetensors"))
    ap.add_argument("--quality-before", type=Path, default=None, help="earlier quality weights, shown beside")
    ap.add_argument("--label", default="quality", help="column name of --quality")
    ap.add_argument("--label-before", default="quality_before", help="column name of --quality-before")
    ap.add_argument("--realtime", type=Path, default=Path("lle/weights/realtime.safetensors"))
    ap.add_argument("--realtime-before", type=Path, default=None, help="earlier realtime weights, shown beside")
    ap.add_argument("--realtime-label-before", default="realtime_before", help="column name of --realtime-before")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d = a.data
    cfg = load_config(TrainConfig, Path("training/configs/quality.yaml"), [
        f"data.pairs=[{d / 'sice_pairs'}, {d / 'lol_pairs'}]", f"data.val_pairs=[{d / 'fivek_pairs'}]",
        f"data.clean=[{d / 'clean'}]",
    ])  # fmt: skip
    data = build_data(cfg.data, cfg.seed)
    models = {a.label: _enhancer(a.quality)}
    if a.quality_before:
        models[a.label_before] = _enhancer(a.quality_before)
    models["realtime"] = _enhancer(a.realtime)
    if a.realtime_before:
        models[a.realtime_label_before] = _enhancer(a.realtime_before)
    methods = {**models, **BASELINES}
    ours = list(models)
    sheets = a.out / "quality_sheets"
    reports = {}
    for name, pairs in data.val.items():
        rep, kept = evaluate(pairs, methods, dataset=name, keep=6)
        write_report(rep, sheets, None)
        cols = ["input", *ours, "reference", "gamma", "clahe"]
        write_image(sheets / f"{name}_sheet.jpg", contact_sheet(kept, cols, height=160))
        write_image(sheets / f"{name}_crops.jpg", crop_sheet(kept[:3], ["input", *ours, "reference"], size=128))
        reports[name] = rep
        print(name, {m.name: round(m.psnr, 2) for m in rep.methods}, flush=True)

    # Scene-adaptive exposure: held-out clean photos already at a mean luma of 0.25 should stay a night, not fog.
    # Three levels around a lit night street (0.25): a clip's frames drift a little either side of its mean.
    levels = (0.2, 0.25, 0.3)
    moderate_luma: dict[float, dict[str, list[float]]] = {}
    for level in levels:
        moderate = [_expose_to(p.ref, level) for p in data.val.get("synthetic", [])]
        moderate_luma[level] = {m: [float((methods[m](x) @ _LUMA).mean()) for x in moderate]
                                for m in (*ours, "gamma")}  # fmt: skip

    on_sheet = (
        sorted(find_images(d / "real_lowlight" / "dicm"))[:4]
        + sorted(find_images(d / "real_lowlight" / "sci_medium"))[:3]
    )
    rows = []
    unpaired: dict[str, dict[str, list[dict[str, float]]]] = {}
    for p in (img for folder in sorted(q for q in (d / "real_lowlight").iterdir() if q.is_dir())
              for img in find_images(folder)):  # fmt: skip
        x = load_images([p], max_side=512)[0]
        outs = {"input": x, **{m: methods[m](x) for m in (*ours, "gamma")}}
        for m, y in outs.items():
            unpaired.setdefault(p.parent.name, {}).setdefault(m, []).append(picture_metrics(y, x))
        if p in on_sheet:
            rows.append({k: outs[k] for k in ("input", *ours)})
    write_image(sheets / "real_lowlight_sheet.jpg", contact_sheet(rows, ["input", *ours], height=240))
    write_image(sheets / "real_lowlight_crops.jpg", crop_sheet(rows, ["input", *ours], size=160))
    sample = read_image(Path("lle/assets/sample_dark.jpg"))[0]
    before_after = [{"input": sample, **{m: models[m](sample) for m in ours}}]
    write_image(a.out / "before_after.jpg", contact_sheet(before_after, ["input", *ours], height=320))

    cpu, _ = cpu_features()
    weights = f"{a.label} {a.quality} ({_trained(a.quality)})"
    if a.quality_before:
        weights += f"; {a.label_before} {a.quality_before} ({_trained(a.quality_before)})"
    lines = [
        "# Quality on the validation splits",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; lle {__version__}, torch {torch.__version__}, "
        f"Python {platform.python_version()}; {cpu}",
        f"- command: `python {' '.join(sys.argv)}`",
        f"- weights: {weights}; realtime {a.realtime} ({_trained(a.realtime)})"
        + (f"; {a.realtime_label_before} {a.realtime_before} ({_trained(a.realtime_before)})"
           if a.realtime_before else ""),
        "- PSNR / SSIM on full validation images (long side 512), GT-mean PSNR = output rescaled to the reference's "
        "mean (separates exposure error from structure/colour/noise error); brightness error = mean luma of "
        "output minus reference.",
        "- picture faults (lle.eval_metrics): chroma ratio = mean a*b* chroma of the output over the reference's "
        "(target 0.9-1.1); a*b* err = mean a*b* distance; noise = grain (std of the luma high-pass, 8-bit levels) "
        "in the reference's flat dark areas, with the reference's own grain there in brackets; black = darkest 1 % of "
        "the output's luma (8-bit levels, 2 px blur), the reference's in brackets (higher = lifted, milky blacks); "
        "contrast = local contrast (mean 15x15 std of luma) over the reference's (< 1 flat); clipped = newly "
        "blown pixels; inverted = bright input pixels that come out darker.",
        "- baselines: identity (the dark input), gamma (global gamma mapping mean luma to 0.45), "
        "CLAHE (OpenCV, L channel).",
        "",
    ]
    for name, rep in reports.items():
        lines += [
            f"## {name} ({rep.n} pairs)",
            "",
            "| method | PSNR | GT-mean PSNR | SSIM | brightness err | chroma ratio | a*b* err | noise (ref) "
            "| black (ref) | contrast | clipped | inverted |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in rep.methods:
            lines.append(
                f"| {m.name} | {m.psnr:.2f} | {m.psnr_gt_mean:.2f} | {m.ssim:.3f} | {m.brightness_error:+.3f} | "
                f"{m.chroma_ratio:.2f} | {m.ab_error:.1f} | {m.noise:.2f} ({m.ref_noise:.2f}) | "
                f"{m.black:.1f} ({m.ref_black:.1f}) | {m.contrast_ratio:.2f} | "
                f"{100 * m.clipped:.2f}% | {100 * m.inverted:.2f}% |"
            )
        best_base = max(m.psnr for m in rep.methods if m.name in BASELINES)
        for p in ours:
            got = next(m.psnr for m in rep.methods if m.name == p)
            lines.append(f"\n{p}: {got - best_base:+.2f} dB vs the best baseline")
        lines += ["", f"![{name}](quality_sheets/{name}_sheet.jpg)", "",
                  f"100 % crops (brightest spot, flattest dark area, blackest object): "
                  f"![{name} crops](quality_sheets/{name}_crops.jpg)",
                  ""]  # fmt: skip
    lines += [
        "## Scene-adaptive exposure",
        "",
        f"{len(data.val.get('synthetic', []))} held-out clean photos exposed down (in linear light) to a mean luma of "
        "0.20, 0.25 and 0.30 (0.25 is a lit night street): mean output luma per method, and the brightest photo's in "
        "brackets (a scene that is already moderately lit should stay under 0.42).",
        "",
        "| input mean luma | " + " | ".join(moderate_luma[levels[0]]) + " |",
        "|---|" + "---:|" * len(moderate_luma[levels[0]]),
        *(f"| {level:.2f} | " + " | ".join(f"{np.mean(v):.3f} ({max(v):.3f})" for v in row.values()) + " |"
          for level, row in moderate_luma.items()),
        "",
        "## Unpaired real low-light photos",
        "",
        "No reference here (long side 512): mean luma / grain in the output's flat dark areas (8-bit levels) / "
        "newly clipped / inverted highlights, averaged over each set's photos.",
        "",
        "| set (photos) | " + " | ".join(("input", *ours, "gamma")) + " |",
        "|---|" + "---:|" * (len(ours) + 2),
    ]
    for name, by_method in unpaired.items():
        cells = []
        for m in ("input", *ours, "gamma"):
            rows_m = by_method[m]
            luma = np.mean([r["mean_luma"] for r in rows_m])
            noise = np.nanmean([r["noise"] for r in rows_m]) if any(np.isfinite(r["noise"]) for r in rows_m) else np.nan
            clipped = np.mean([r["clipped"] for r in rows_m])
            inv = np.mean([r["inverted"] for r in rows_m])
            cells.append(f"{luma:.3f} / {noise:.2f} / {100 * clipped:.1f}% / {100 * inv:.2f}%")
        lines.append(f"| {name} ({len(by_method['input'])}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "![real low light](quality_sheets/real_lowlight_sheet.jpg)",
        "",
        "100 % crops: ![real low light crops](quality_sheets/real_lowlight_crops.jpg)",
        "",
    ]
    (a.out / "quality.md").write_text("\n".join(lines))
    print(f"wrote {a.out / 'quality.md'}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
