"""``lle enhance``: photos and folders in, enhanced images out."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from lle.cli._common import cli_errors, default_weights, err_console, progress_bar

__all__ = ["Preset", "register"]


class Preset(str, Enum):
    quality = "quality"
    realtime = "realtime"


@cli_errors
def enhance(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output image (one input) or folder.")],
    preset: Annotated[
        Preset, typer.Option(help="Model preset: quality (photos) or realtime (video).")
    ] = Preset.quality,
    weights: Annotated[
        Path | None,
        typer.Option(help="Weights (.safetensors with its .json card). Default: the preset's bundled ones."),
    ] = None,
    tile: Annotated[
        int, typer.Option(help="Tile size in px for large images (0 = automatic: tiles of 2048 above that size).")
    ] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0 = all cores).")] = 0,
) -> None:
    """Enhance low-light photos with the PyTorch weights. Outputs keep each input's name and format.

    Inputs are never overwritten; every output is written to a temporary file and renamed when complete.
    """
    from lle.enhance import enhance_files, make_enhancer, plan_outputs

    plan = plan_outputs(inputs, output)
    w = default_weights(preset.value, weights)
    from lle.backends.torch_backend import TorchBackend

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    with TorchBackend(w, device=device) as backend:
        enhancer = make_enhancer(backend, tile)
        with progress_bar("enhancing", len(plan), enabled=len(plan) > 1) as bar:
            written = enhance_files(plan, enhancer, progress=lambda i, n: bar.update(bar.task_ids[0], completed=i))
    dt = time.perf_counter() - t0
    err_console.print(f"wrote {len(written)} image(s) to {output} in {dt:.1f} s", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("enhance")(enhance)
