"""``lle info``: version, installed backends, CPU features and GPUs; imports no runtime."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import typer
from rich.markup import escape
from rich.table import Table

from lle.cli._common import cli_errors, out_console
from lle.host import cpu_features, gpus

__all__ = ["register"]

_PACKAGES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt",
             "triton": "tritonclient"}  # fmt: skip


def _version(dist: str) -> str | None:
    for name in (dist, f"{dist}-gpu", f"{dist}-cu12"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


@cli_errors
def info() -> None:
    """Show the lle version, installed backends (with versions), CPU features and GPUs."""
    from lle import __version__
    from lle.backends.registry import list_backends

    out_console.print(
        f"lle {__version__}  (Python {platform.python_version()}, {platform.system()} {platform.machine()})"
    )
    table = Table("backend", "runtime", "version", "install with")
    for name in list_backends():
        pkg = _PACKAGES.get(name, name)
        ver = _version(pkg)
        table.add_row(name, pkg, ver or "[dim]not installed[/dim]", "" if ver else escape(f"pip install 'lle[{name}]'"))
    out_console.print(table)
    av = _version("av")
    out_console.print(f"video files: PyAV {av} (H.264 out, audio copied)" if av else
                      escape("video files: OpenCV (MPEG-4, no audio); pip install 'lle[video]' for PyAV"))
    model, feats = cpu_features()
    out_console.print(f"CPU: {model}, {os.cpu_count()} logical cores; features: {', '.join(feats) or 'none detected'}")
    seen = gpus()
    out_console.print("GPUs: " + ("; ".join(seen) if seen else "none seen"))


def register(app: typer.Typer) -> None:
    app.command("info")(info)
