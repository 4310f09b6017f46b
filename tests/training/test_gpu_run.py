"""training/gpu_run.sh refuses clearly before it starts anything it cannot finish."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "gpu_run.sh"


def _run(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": python})  # fmt: skip


def test_usage_without_arguments() -> None:
    r = _run()
    assert r.returncode == 2 and "usage: bash training/gpu_run.sh OUT_DIR" in r.stderr


def test_missing_data_folder_is_named(tmp_path) -> None:
    r = _run(str(tmp_path / "out"), str(tmp_path / "nodata"))
    assert r.returncode == 2 and f"{tmp_path / 'nodata'}/sice_pairs not found" in r.stderr
    assert not (tmp_path / "out").exists()


def test_no_cuda_is_refused_before_training(tmp_path) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    data = tmp_path / "data"
    for d in ("sice_pairs", "lol_pairs", "fivek_pairs", "clean"):
        (data / d).mkdir(parents=True)
    r = _run(str(tmp_path / "out"), str(data))
    assert r.returncode == 2 and "sees no GPU" in r.stderr
    assert not (tmp_path / "out").exists()
