"""The edge runtime must not drag in torch or any inference runtime at import time."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "onnxruntime", "openvino", "tensorrt", "onnx", "nncf")


def test_light_imports_pull_no_heavy_runtime() -> None:
    code = (
        "import sys, lle, lle.cli, lle.cli.app, lle.backends, lle.pipeline, lle.io.image, lle.errors, lle.config;"
        "print(','.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"heavy modules imported: {res.stdout.strip()}"


def test_backend_listing_imports_no_runtime() -> None:
    code = (
        "import sys; from lle.backends import list_backends, available_backends; list_backends(); available_backends();"
        "print(','.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_help_runs_without_heavy_imports() -> None:
    code = (
        "import sys\nfrom lle.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print('HEAVY=' + ','.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "HEAVY=\n" in res.stdout or res.stdout.rstrip().endswith("HEAVY=")
