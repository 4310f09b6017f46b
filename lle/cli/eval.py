"""``lle eval``: score weights on paired images against classical baselines; contact sheet for a visual check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lle.cli._common import check_preset, cli_errors, default_weights, out_console, progress_bar

__all__ = ["register"]


@cli_errors
def evaluate(
    pairs: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="LOW_DIR REF_DIR: folders of dark inputs and references with matching file names."),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Weights (.safetensors). Default: the preset's bundled ones.")
    ] = None,
    preset: Annotated[
        str, typer.Option(help="Preset whose bundled weights to use when --weights is not given.",
                          callback=check_preset)
    ] = "quality",
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the JSON report and contact sheet.")] = Path(
        "eval"
    ),
    name: Annotated[str | None, typer.Option(help="Data set name in the report (default: LOW_DIR's parent).")] = None,
    max_side: Annotated[
        int, typer.Option(help="Downscale pairs so the long side is at most this (0 = full size).")
    ] = 0,
    split: Annotated[
        str, typer.Option(help="all | val | train: 'val' scores only the pairs the training recipes hold out "
                               "(--val-fraction of the scene groups in the data root's manifest.csv, e.g. "
                               "lol_pairs' scene_group; by file name when there is no manifest).")
    ] = "all",
    val_fraction: Annotated[float, typer.Option(help="Held-out share for --split (the recipes use 0.15).")] = 0.15,
    sheet_rows: Annotated[int, typer.Option(help="Pairs shown in the contact sheet.")] = 6,
    baselines: Annotated[bool, typer.Option(help="Also score identity, global gamma and CLAHE.")] = True,
    video: Annotated[
        Path | None,
        typer.Option(help="Static-scene video: measure output vs input flicker and mean luma (as lle run plays it)."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="Artifact for --video (.safetensors/.onnx/.xml/.plan). Default: the weights.")
    ] = None,
    smoothing: Annotated[float, typer.Option(help="Coefficient smoothing for --video (realtime preset).")] = 0.85,
) -> None:
    """Evaluate weights on paired images (PSNR, GT-mean PSNR, SSIM, brightness error) and/or video flicker.

    Pairs: writes OUT/<name>.json and OUT/<name>_sheet.png (input | output | reference | baselines).
    Video: relative frame-to-frame change of output vs input on a static clip; writes OUT/<clip>_flicker.json.
    """
    from lle.errors import InputError

    if pairs is None and video is None:
        raise InputError("nothing to evaluate", hint="pass --pairs LOW_DIR REF_DIR and/or --video CLIP")
    if video is not None:
        _flicker(model or default_weights(preset, weights), video, smoothing, out)
    if pairs is None:
        return
    from lle.backends.torch_backend import TorchBackend
    from lle.data.datasets import load_pairs
    from lle.errors import DataError
    from lle.evaluate import BASELINES, contact_sheet, crop_sheet, evaluate, write_report
    from lle.io.image import from_nchw, to_nchw
    from lle.pipeline import Enhancer

    low_dir, ref_dir = pairs
    if split not in ("all", "val", "train"):
        raise InputError(f"--split {split!r} is not one of all, val, train", hint="--split val scores held-out pairs")
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"--val-fraction {val_fraction} must be between 0 and 1", hint="the recipes use 0.15")
    w = default_weights(preset, weights)
    names = None
    if split != "all":
        from lle.data.datasets import split_names
        from lle.io.image import find_images

        root = low_dir.resolve().parent
        train_n, val_n = split_names(sorted(p.name for p in find_images(low_dir)), val_fraction, root=root,
                                     group_column="scene_group")  # fmt: skip
        names = val_n if split == "val" else train_n
    rep = load_pairs(low_dir, ref_dir, names=names, max_side=max_side or None)
    if not rep.pairs:
        raise DataError(f"no usable pairs in {low_dir} / {ref_dir}", hint="; ".join(rep.problems[:3]) or None)
    dataset = name or low_dir.resolve().parent.name + ("" if split == "all" else f"_{split}")
    with TorchBackend(w) as backend:
        enh = Enhancer(backend.infer, backend.input_spec.size_multiple)
        methods = {"lle": lambda x: from_nchw(enh(to_nchw(x)))}
        if baselines:
            methods |= BASELINES
        with progress_bar("evaluating", len(rep.pairs) * len(methods)) as bar:
            report, kept = evaluate(
                rep.pairs, methods, dataset=dataset, keep=sheet_rows,
                progress=lambda i, n: bar.update(bar.task_ids[0], completed=i),
            )  # fmt: skip
    cols = ["input", "lle", "reference"] + [b for b in BASELINES if baselines and b != "identity"]
    paths = write_report(report, out, contact_sheet(kept, cols) if kept else None,
                         crop_sheet(kept, cols) if kept else None)  # fmt: skip
    table = Table("method", "PSNR", "GT-mean PSNR", "SSIM", "brightness err", "chroma ratio", "a*b* err",
                  "noise (ref)", "black (ref)", "contrast", "clipped", "inverted",
                  title=f"{dataset}: {report.n} pairs")  # fmt: skip
    for m in report.methods:
        table.add_row(m.name, f"{m.psnr:.2f}", f"{m.psnr_gt_mean:.2f}", f"{m.ssim:.3f}", f"{m.brightness_error:+.3f}",
                      f"{m.chroma_ratio:.2f}", f"{m.ab_error:.1f}", f"{m.noise:.1f} ({m.ref_noise:.1f})",
                      f"{m.black:.1f} ({m.ref_black:.1f})", f"{m.contrast_ratio:.2f}",
                      f"{100 * m.clipped:.2f}%", f"{100 * m.inverted:.2f}%")  # fmt: skip
    out_console.print(table)
    if problems := rep.problems:
        out_console.print(f"skipped {len(problems)} pair(s): " + "; ".join(problems[:5]))
    out_console.print("wrote " + ", ".join(str(p) for p in paths))


def _flicker(model: Path, video: Path, smoothing: float, out: Path) -> None:
    import json
    from dataclasses import asdict

    from lle._atomic import atomic_write_bytes
    from lle.errors import InputError
    from lle.evaluate import video_flicker

    if not video.is_file():
        raise InputError(f"video not found: {video}")
    res = video_flicker(model, video, smoothing=smoothing)
    verdict = "adds no flicker" if res.ratio <= 1.0 else "adds flicker"
    out_console.print(
        f"{video.name}: {res.frames} frames, flicker input {res.input_flicker:.4f} -> output {res.output_flicker:.4f} "
        f"(ratio {res.ratio:.2f}, {verdict}; smoothing {smoothing}); mean luma {res.input_luma:.3f} -> "
        f"{res.output_luma:.3f} (brightest output frame {res.output_luma_max:.3f})"
    )
    atomic_write_bytes(out / f"{video.stem}_flicker.json", json.dumps({**asdict(res), "ratio": res.ratio}).encode())


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
