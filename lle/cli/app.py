"""The ``lle`` command: a Typer app of thin commands over the library."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from lle import __version__
from lle.cli import bench, calib, enhance, export, info, run, serve, train
from lle.cli import eval as eval_cmd
from lle.cli._common import STATE, err_console

__all__ = ["app", "main"]

app = typer.Typer(
    name="lle",
    help="Low-light image and video enhancement: train, export (ONNX/OpenVINO/TensorRT), run and benchmark.",
    pretty_exceptions_show_locals=False,
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"lle {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Debug logging.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Warnings and errors only.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger("lle")
    root.handlers[:] = [RichHandler(console=err_console, show_path=False, show_time=False)]
    root.setLevel(level)
    STATE["debug"] = debug
    _quiet_opencv(verbose)


def _quiet_opencv(verbose: bool) -> None:
    """Keep OpenCV's own C++ log lines (decoder warnings with source paths) off the terminal unless ``-v``.

    lle reports every failure itself, in one line; OpenCV would print a second, cryptic one first.
    """
    import os

    if verbose:
        return
    if "cv2" in sys.modules:
        sys.modules["cv2"].utils.logging.setLogLevel(0)
    else:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")


for _module in (enhance, run, export, calib, bench, serve, train, eval_cmd, info):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
