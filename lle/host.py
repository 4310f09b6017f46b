"""Host facts for reports, manifests and ``lle info``: CPU model and flags, GPUs, library versions. Loads no runtime."""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

__all__ = ["cpu_features", "dist_version", "gpus", "release_memory", "versions"]

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


def dist_version(dist: str) -> str | None:
    """Installed version of distribution ``dist`` or of its GPU/CUDA or full-OpenCV variant; None when absent.

    Reads package metadata only (nothing is imported). Variants tried: ``dist``, ``dist-gpu``, ``dist-cu12``, and
    ``opencv-python`` for ``opencv-python-headless``.
    """
    names = [dist, f"{dist}-gpu", f"{dist}-cu12"]
    if dist.startswith("opencv"):
        names.append("opencv-python")
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def versions(dists: Iterable[str]) -> dict[str, str]:
    """``{"python": ..., dist: version}`` for every installed one of ``dists`` (absent ones are left out)."""
    out = {"python": platform.python_version()}
    for dist in dists:
        ver = dist_version(dist)
        if ver is not None:
            out[dist] = ver
    return out


def release_memory() -> bool:
    """Hand memory the process has freed back to the system (glibc ``malloc_trim``); False where that is unavailable.

    Large steps (an export's parity runs, a calibration) free hundreds of megabytes that glibc keeps for reuse; the
    next step then peaks on top of them. Calling this between steps keeps the peak to one step's own.

    Example:
        >>> isinstance(release_memory(), bool)
        True
    """
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        return bool(ctypes.CDLL(name).malloc_trim(0))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return False
