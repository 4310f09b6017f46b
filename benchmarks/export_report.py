"""Export every target that runs on this machine and write benchmarks/results/export.md.

For each weights file: size on disk, parity vs PyTorch (as checked by the export step), PSNR against ground truth on
validation pairs for FP32 torch and for each artifact (so the INT8 drop is measured where it matters), export time.

    nice -n 19 python benchmarks/export_report.py \
        --weights runs/quality/best.safetensors --weights runs/realtime/best.safetensors \
        --pairs /work/shared/data/sice_pairs/low /work/shared/data/sice_pairs/ref --n-pairs 8
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lle.errors import ParityError  # noqa: E402
from lle.export import TARGETS  # noqa: E402
from lle.export.calibration import CalibrationSet  # noqa: E402
from lle.export.config import CalibrationConfig, ExportConfig, InputSpec  # noqa: E402
from lle.export.manifest import psnr, read_manifest, tool_versions  # noqa: E402

CPU_TARGETS = ("onnx", "onnx-fp16", "onnx-int8", "openvino", "openvino-fp16", "openvino-int8")
GPU_TARGETS = ("trt-fp16", "trt-int8")
_PRECISION = {"onnx": "fp32", "openvino": "fp32", "trt-fp32": "fp32"}


@dataclass
class Row:
    target: str
    artifact: str
    size: int
    parity: str
    psnr_gt: float
    seconds: float
    float_convs: str = "-"


def _runnable() -> list[str]:
    have = [t for t in CPU_TARGETS if not t.startswith("openvino") or importlib.util.find_spec("openvino")]
    if importlib.util.find_spec("tensorrt"):
        have += list(GPU_TARGETS)
    return have


def _pairs(low: Path, ref: Path, n: int) -> list[tuple[Path, Path]]:
    from lle.io.image import find_images

    names = [p.name for p in find_images(low) if (ref / p.name).is_file()]
    if not names:
        raise SystemExit(f"no pairs: no file names in common between {low} and {ref}")
    idx = np.linspace(0, len(names) - 1, num=min(n, len(names))).round().astype(int)
    return [(low / names[i], ref / names[i]) for i in sorted(set(idx))]


def _load_pairs(pairs: list[tuple[Path, Path]], multiple: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from lle.io.image import read_image
    from lle.pipeline import pad_to_multiple

    out = []
    for lo, hi in pairs:
        x = read_image(lo)[0].transpose(2, 0, 1)[None].copy()
        y = read_image(hi)[0].transpose(2, 0, 1)[None].copy()
        out.append((pad_to_multiple(x, multiple)[0], y))
    return out


def _runner(path: Path, cfg: ExportConfig):
    if path.suffix == ".onnx":
        from lle.export.onnx_export import run_onnx

        return lambda xs: run_onnx(path, xs)
    if path.suffix == ".xml":
        from lle.export.openvino_ir import run_ov

        return lambda xs: run_ov(path, xs, device=cfg.openvino.device)
    from lle.export.onnx_export import graph_feed
    from lle.export.trt_engine import run_engine

    feed = graph_feed(path.parent / "model.onnx")
    return lambda xs: run_engine(path, [feed(x) for x in xs])


def _gt_psnr(outs: list[np.ndarray], data: list[tuple[np.ndarray, np.ndarray]]) -> float:
    vals = [psnr(o[..., : y.shape[-2], : y.shape[-1]], y) for o, (_, y) in zip(outs, data, strict=True)]
    return float(np.mean(vals))


def report_one(weights: Path, targets: list[str], work: Path, calib_dir: Path, cfg: ExportConfig,
               pairs: list[tuple[Path, Path]]) -> tuple[str, float, list[Row]]:
    import torch

    from lle.models.checkpoint import load_model

    model, card = load_model(weights)
    data = _load_pairs(pairs, card.size_multiple)
    with torch.no_grad():
        ref_out = [model(torch.from_numpy(x)).numpy() for x, _ in data]
    fp32_gt = _gt_psnr(ref_out, data)
    calib = CalibrationSet.from_dir(calib_dir, n=cfg.calibration.n, hw=cfg.calib_hw, multiple=card.size_multiple,
                                    seed=cfg.calibration.seed, holdout=cfg.calibration.holdout)
    out_dir = work / card.preset
    done: dict[str, tuple[Path, float]] = {}
    rows = []
    for target in targets:
        precision = _PRECISION.get(target, target.rsplit("-", 1)[-1])
        tcfg = dataclasses.replace(cfg, precision=precision)
        src, total, failed = weights, 0.0, ""
        for step in TARGETS[target]:
            key = f"{step.__name__}:{precision}" if step.__name__ == "to_engine" else step.__name__
            if key not in done:
                t0 = time.perf_counter()
                print(f"[{card.preset}] {target}: {step.__name__} ...", file=sys.stderr, flush=True)
                try:
                    done[key] = (step(src, out_dir, tcfg, calib), time.perf_counter() - t0)
                except ParityError as err:
                    # The artifact and its manifest are written before the check: report the miss, keep going.
                    failed = "FAILED the parity check: "
                    done[key] = (out_dir / str(err).split()[0], time.perf_counter() - t0)
            src, dt = done[key]
            total += dt
        man = read_manifest(src)
        p = man.get("parity", {})
        parity = failed + (
            f"{p['psnr_db']:.1f} dB vs torch" if p.get("kind") == "psnr" else f"max abs {p['max_abs']:.1e}"
        )
        gt = _gt_psnr(_runner(src, tcfg)([x for x, _ in data]), data)
        mixed = man.get("mixed_precision")
        floats = f"{len(mixed['float_layers'])}/{mixed['n_convs']}" if mixed else "-"
        rows.append(Row(target, src.name, int(man.get("size_bytes", 0)), parity, gt, total, floats))
    return card.preset, fp32_gt, rows


def _machine() -> str:
    from lle.host import cpu_features

    return f"{cpu_features()[0]}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_report(path: Path, results: list[tuple[str, float, list[Row]]], args: argparse.Namespace,
                 pairs: list[tuple[Path, Path]], cfg: ExportConfig) -> None:
    """Write the report; with ``args.keep_others`` the sections of presets not run now are kept from ``path``."""
    v = tool_versions()
    run = [
        f"- date (UTC): {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}, git {_git_sha()}",
        f"- machine: {_machine()}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- command: `{' '.join(shlex.quote(a) for a in sys.argv)}`",
        f"- validation pairs: {len(pairs)} from `{args.pairs[0]}` / `{args.pairs[1]}`: "
        + ", ".join(p[0].name for p in pairs),
        f"- calibration: {cfg.calibration.n} images from `{args.calib}` at {cfg.calib_hw[0]}x{cfg.calib_hw[1]} "
        f"(Q/DQ ranges: {cfg.calibration.method}), {cfg.calibration.holdout} held out for the INT8 check",
    ]
    lines = [
        "# Export report", "",
        "- parity: FP32/FP16 = max abs diff vs torch on seeded random inputs; INT8 = PSNR vs torch FP32 output on "
        "held-out calibration images. PSNR vs GT = mean PSNR of the artifact's output against the reference images; "
        "drop = FP32 torch PSNR vs GT minus the artifact's (target for INT8: <= 0.3 dB).",
        "- float convs: INT8 mixed precision, convolutions kept in float of all convolutions (the search is in "
        "`lle/export/mixed_precision.py`; its plan is shared by the two INT8 targets).",
        "- export time includes the shared ONNX export step (run once per model, counted in every row).",
        "",
    ]
    sections = _sections(path.read_text()) if args.keep_others and path.is_file() else {}
    for preset, fp32_gt, rows in results:
        body = [*run, "", f"FP32 torch vs GT: **{fp32_gt:.2f} dB**", "",
                "| target | artifact | size | parity | float convs | PSNR vs GT (dB) | drop vs FP32 (dB) "
                "| export time (s) |",
                "|---|---|---:|---|---:|---:|---:|---:|"]
        for r in rows:
            body.append(f"| {r.target} | {r.artifact} | {r.size / 2**20:.2f} MiB | {r.parity} | {r.float_convs} | "
                        f"{r.psnr_gt:.2f} | {fp32_gt - r.psnr_gt:+.2f} | {r.seconds:.1f} |")
        missing = sorted(set(CPU_TARGETS + GPU_TARGETS) - {r.target for r in rows})
        if missing:
            body += ["", f"Not run: {', '.join(missing)} (not asked for, runtime not installed or no GPU)."]
        sections[preset] = [*body, ""]
    for preset in sorted(sections):
        lines += [f"## {preset}", "", *sections[preset]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip("\n") + "\n")


def _sections(text: str) -> dict[str, list[str]]:
    """``## <preset>`` sections of an earlier report: {preset: its lines after the heading and a blank line}."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = out.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line)
    return {k: v[1:] if v and not v[0] else v for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, action="append", help="weights (.safetensors); repeatable")
    ap.add_argument("--pairs", type=Path, nargs=2, metavar=("LOW_DIR", "REF_DIR"), required=True)
    ap.add_argument("--n-pairs", type=int, default=8)
    ap.add_argument("--calib", type=Path, default=ROOT / "calibration_data" / "images")
    ap.add_argument("--calib-n", type=int, default=64)
    ap.add_argument("--calib-hw", default="720x1280", help="calibration (deployment) resolution HxW")
    ap.add_argument("--targets", nargs="*", default=None, help=f"default: all runnable of {CPU_TARGETS + GPU_TARGETS}")
    ap.add_argument("--work", type=Path, default=None, help="artifact folder (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "export.md")
    ap.add_argument("--keep-others", action="store_true",
                    help="keep the sections of presets not given in --weights from the existing --out file")
    args = ap.parse_args(argv)
    weights = args.weights or sorted((ROOT / "lle" / "weights").glob("*.safetensors"))
    if not weights:
        raise SystemExit("no weights: pass --weights PATH (lle/weights/ has none)")
    targets = args.targets or _runnable()
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise SystemExit(f"unknown targets {sorted(unknown)}; valid: {', '.join(TARGETS)}")
    h, w = (int(v) for v in args.calib_hw.lower().split("x"))
    cfg = ExportConfig(input=InputSpec(min_hw=(64, 64), opt_hw=(h, w), max_hw=(max(h, 1088), max(w, 1920))),
                       calibration=CalibrationConfig(n=args.calib_n, hw=(h, w)))
    pairs = _pairs(args.pairs[0], args.pairs[1], args.n_pairs)
    with tempfile.TemporaryDirectory(prefix="lle-export-report-") as tmp:
        work = args.work or Path(tmp)
        results = [report_one(wt, targets, work / wt.stem, args.calib, cfg, pairs) for wt in weights]
    write_report(args.out, results, args, pairs, cfg)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
