"""``lle info``: version, installed backends, CPU features and GPUs; imports no runtime."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from lle.cli._common import cli_errors, out_console

__all__ = ["cpu_features", "gpus", "register"]

_PACKAGES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt"}
_FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "avx_vnni",
    "neon",
    "asimd",
)


def _version(dist: str) -> str | None:
    for name in (dist, f"{dist}-gpu", f"{dist}-cu12"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_features() -> tuple[str, list[str]]:
    """CPU model name and the inference-relevant instruction-set flags it reports (Linux /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="ignore").splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key in {"model name", "Model"} and model in {"", platform.machine(), platform.processor()}:
                model = val.strip()
            elif key in {"flags", "Features"}:
                flags |= set(val.split())
    return model, [f for f in _FEATURES if f in flags]


def gpus() -> list[str]:
    """GPUs seen by ``nvidia-smi -L`` (NVIDIA) plus Jetson's tegra marker; no CUDA library is loaded."""
    out = []
    if shutil.which("nvidia-smi"):
        try:
            res = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
            out += [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
        except (OSError, subprocess.TimeoutExpired):
            pass
    if Path("/etc/nv_tegra_release").is_file():
        out.append("NVIDIA Jetson (" + Path("/etc/nv_tegra_release").read_text().split(",")[0].strip("# ") + ")")
    return out


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
    model, feats = cpu_features()
    out_console.print(f"CPU: {model}, {os.cpu_count()} logical cores; features: {', '.join(feats) or 'none detected'}")
    seen = gpus()
    out_console.print("GPUs: " + ("; ".join(seen) if seen else "none seen"))


def register(app: typer.Typer) -> None:
    app.command("info")(info)
