"""``lle calib build``: make an INT8 calibration folder from your own images or video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lle.cli._common import cli_errors, err_console, progress_bar

__all__ = ["calib_app", "register"]

calib_app = typer.Typer(
    help="INT8 calibration sets: build one from deployment-like images or video frames.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@calib_app.command("build")
@cli_errors
def build(
    src: Annotated[Path, typer.Argument(help="Folder of images and/or videos shot like your deployment.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the calibration JPEGs.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of images to write.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed for the choice of images.")] = 0,
    max_side: Annotated[int, typer.Option(help="Longest side of the stored images in px (0 = keep).")] = 1920,
) -> None:
    """Pick N images (seeded) and evenly spaced video frames from SRC into --out, for `lle export --calib`."""
    from lle.export.calibration import build_calibration_dir

    with progress_bar("calibration set", n) as bar:
        paths = build_calibration_dir(
            src, out, n=n, seed=seed, max_side=max_side,
            progress=lambda i, total: bar.update(bar.task_ids[0], completed=i),
        )  # fmt: skip
    err_console.print(f"wrote {len(paths)} calibration images to {escape(str(out))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(calib_app, name="calib")
