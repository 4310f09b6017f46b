"""Evaluate both presets and the classical baselines on the validation splits; write benchmarks/results/quality.md.

    python benchmarks/eval_quality.py --quality lle/weights/quality.safetensors \
        --realtime lle/weights/realtime.safetensors --data ../shared/data

Validation splits are exactly the ones training held out (training/configs/*.yaml: SICE split by scene_group,
synthetic pairs from held-out clean photos, all 17 FiveK pairs). Also writes contact sheets, including one of
unpaired real low-light photos (input | quality | realtime), and their mean luma and clipped-highlight share.
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
from lle.evaluate import BASELINES, contact_sheet, evaluate, write_report
from lle.host import cpu_features
from lle.io.image import find_images, from_nchw, read_image, to_nchw, write_image
from lle.models.checkpoint import load_card
from lle.pipeline import Enhancer
from lle.training.config import TrainConfig
from lle.training.data import build_data


def _enhancer(weights: Path):
    b = TorchBackend(weights)
    b.load()
    enh = Enhancer(b.infer, b.input_spec.size_multiple)
    return lambda x: from_nchw(enh(to_nchw(x)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", type=Path, default=Path("lle/weights/quality.safetensors"))
    ap.add_argument("--realtime", type=Path, default=Path("lle/weights/realtime.safetensors"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d = a.data
    cfg = load_config(TrainConfig, Path("training/configs/quality.yaml"), [
        f"data.pairs=[{d / 'sice_pairs'}]", f"data.val_pairs=[{d / 'fivek_pairs'}]", f"data.clean=[{d / 'clean'}]",
    ])  # fmt: skip
    data = build_data(cfg.data, cfg.seed)
    methods = {"quality": _enhancer(a.quality), "realtime": _enhancer(a.realtime), **BASELINES}
    sheets = a.out / "quality_sheets"
    reports = {}
    for name, pairs in data.val.items():
        rep, kept = evaluate(pairs, methods, dataset=name, keep=6)
        write_report(rep, sheets, None)
        cols = ["input", "quality", "realtime", "reference", "gamma", "clahe"]
        write_image(sheets / f"{name}_sheet.jpg", contact_sheet(kept, cols, height=160))
        reports[name] = rep
        print(name, {m.name: round(m.psnr, 2) for m in rep.methods}, flush=True)
    on_sheet = (
        sorted(find_images(d / "real_lowlight" / "dicm"))[:4]
        + sorted(find_images(d / "real_lowlight" / "sci_medium"))[:3]
    )
    rows = []
    unpaired: dict[str, dict[str, list[tuple[float, float]]]] = {}
    real_sets = sorted(q for q in (d / "real_lowlight").iterdir() if q.is_dir())
    for p in (img for folder in real_sets for img in find_images(folder)):
        x = load_images([p], max_side=512)[0]
        outs = {"input": x, **{m: methods[m](x) for m in ("quality", "realtime", "gamma")}}
        for m, y in outs.items():
            unpaired.setdefault(p.parent.name, {}).setdefault(m, []).append(_exposure_stats(y))
        if p in on_sheet:
            rows.append({k: outs[k] for k in ("input", "quality", "realtime")})
    write_image(sheets / "real_lowlight_sheet.jpg", contact_sheet(rows, ["input", "quality", "realtime"], height=240))
    sample = read_image(Path("lle/assets/sample_dark.jpg"))[0]
    before_after = [{"input": sample, "quality": methods["quality"](sample), "realtime": methods["realtime"](sample)}]
    write_image(a.out / "before_after.jpg", contact_sheet(before_after, ["input", "quality", "realtime"], height=320))

    cpu, _ = cpu_features()
    lines = [
        "# Quality on the validation splits",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; lle {__version__}, torch {torch.__version__}, "
        f"Python {platform.python_version()}; {cpu}",
        f"- command: `python {' '.join(sys.argv)}`",
        f"- weights: {a.quality} ({_trained(a.quality)}), {a.realtime} ({_trained(a.realtime)})",
        "- PSNR / SSIM on full validation images (long side 512), GT-mean PSNR = output rescaled to the reference's "
        "mean (separates exposure error from structure/colour/noise error); brightness error = mean luma of "
        "output minus reference.",
        "- baselines: identity (the dark input), gamma (global gamma mapping mean luma to 0.45), "
        "CLAHE (OpenCV, L channel).",
        "",
    ]
    for name, rep in reports.items():
        lines += [
            f"## {name} ({rep.n} pairs)",
            "",
            "| method | PSNR | GT-mean PSNR | SSIM | brightness err |",
            "|---|---:|---:|---:|---:|",
        ]
        for m in rep.methods:
            lines.append(
                f"| {m.name} | {m.psnr:.2f} | {m.psnr_gt_mean:.2f} | {m.ssim:.3f} | {m.brightness_error:+.3f} |"
            )
        best_base = max(m.psnr for m in rep.methods if m.name in BASELINES)
        for p in ("quality", "realtime"):
            got = next(m.psnr for m in rep.methods if m.name == p)
            lines.append(f"\n{p}: {got - best_base:+.2f} dB vs the best baseline")
        lines += ["", f"![{name}](quality_sheets/{name}_sheet.jpg)", ""]
    lines += [
        "## Unpaired real low-light photos (DICM, SCI medium)",
        "",
        "No reference here, so only exposure is measured (long side 512): mean luma, and the share of pixels "
        "whose brightest channel is at least 0.98 (clipped highlights), averaged over each set's photos.",
        "",
        "| set (photos) | input luma / clipped | quality | realtime | gamma |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, by_method in unpaired.items():
        cells = []
        for m in ("input", "quality", "realtime", "gamma"):
            luma, clipped = np.mean(by_method[m], axis=0)
            cells.append(f"{luma:.3f} / {100 * clipped:.1f}%")
        lines.append(f"| {name} ({len(by_method['input'])}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "![real low light](quality_sheets/real_lowlight_sheet.jpg)",
        "",
    ]
    (a.out / "quality.md").write_text("\n".join(lines))
    print(f"wrote {a.out / 'quality.md'}")


def _exposure_stats(y: np.ndarray) -> tuple[float, float]:
    """Mean Rec. 709 luma and the share of pixels whose brightest channel is clipped (>= 0.98)."""
    luma = float((y @ np.array([0.2126, 0.7152, 0.0722], np.float32)).mean())
    return luma, float((y.max(axis=-1) >= 0.98).mean())


def _trained(w: Path) -> str:
    t = load_card(w).training
    return f"{t.get('steps', '?')} steps, {t.get('minutes', '?')} min on {t.get('device', '?')}"


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
