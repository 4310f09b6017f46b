"""Evaluate both presets and the classical baselines on the validation splits; write benchmarks/results/quality.md.

    python benchmarks/eval_quality.py --quality lle/weights/quality.safetensors \
        --realtime lle/weights/realtime.safetensors --data ../shared/data

Validation splits are exactly the ones training held out (training/configs/*.yaml: SICE split by scene_group,
synthetic pairs from held-out clean photos, all 17 FiveK pairs). Also writes contact sheets, including one of
unpaired real low-light photos (input | quality | realtime).
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
    real = (
        sorted(find_images(d / "real_lowlight" / "dicm"))[:4]
        + sorted(find_images(d / "real_lowlight" / "sci_medium"))[:3]
    )
    rows = []
    for p in real:
        x = read_image(p)[0]
        s = 512 / max(x.shape[:2])
        if s < 1:
            import cv2

            x = cv2.resize(x, (round(x.shape[1] * s), round(x.shape[0] * s)), interpolation=cv2.INTER_AREA)
        rows.append({"input": x, "quality": methods["quality"](x), "realtime": methods["realtime"](x)})
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
        "![real low light](quality_sheets/real_lowlight_sheet.jpg)",
        "",
    ]
    (a.out / "quality.md").write_text("\n".join(lines))
    print(f"wrote {a.out / 'quality.md'}")


def _trained(w: Path) -> str:
    t = load_card(w).training
    return f"{t.get('steps', '?')} steps, {t.get('minutes', '?')} min on {t.get('device', '?')}"


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
