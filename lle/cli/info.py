"""``lle info``: version, installed backends, CPU features and GPUs; imports no runtime."""

from __future__ import annotations

import os
import platform

import typer
from rich.markup import escape
from rich.table import Table

from lle.cli._common import cli_errors, out_console
from lle.host import cpu_features, dist_version, gpus

__all__ = ["register"]

@cli_errors
def info() -> None:
    """Show the lle version, installed backends (with versions), CPU features and GPUs."""
    from lle import __version__
    from lle.backends.registry import RUNTIME_MODULES, list_backends

    out_console.print(
        f"lle {__version__}  (Python {platform.python_version()}, {platform.system()} {platform.machine()})"
    )
    table = Table("backend", "runtime", "version", "install with")
    for name in list_backends():
        pkg = RUNTIME_MODULES.get(name, name)
        ver = dist_version(pkg)
        table.add_row(name, pkg, ver or "[dim]not installed[/dim]", "" if ver else escape(f"pip install 'lle[{name}]'"))
    out_console.print(table)
    av = dist_version("av")
    out_console.print(f"video files: PyAV {av} (H.264 out, audio copied)" if av else
                      escape("video files: OpenCV (MPEG-4, no audio); pip install 'lle[video]' for PyAV"))
    model, feats = cpu_features()
    out_console.print(f"CPU: {model}, {os.cpu_count()} logical cores; features: {', '.join(feats) or 'none detected'}")
    seen = gpus()
    out_console.print("GPUs: " + ("; ".join(seen) if seen else "none seen"))


def register(app: typer.Typer) -> None:
    app.command("info")(info)
