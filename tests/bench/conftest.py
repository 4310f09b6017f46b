from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for every bench test: each tiny artifact is exported once per session."""
    return tmp_path_factory.mktemp("bench-cache")


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_weights: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{preset: folder with the tiny model's FP32 ONNX}, like an ``lle export`` folder (fast: no parity runs)."""
    pytest.importorskip("onnx")
    from lle.export.onnx_export import export_onnx
    from lle.models.checkpoint import load_model

    out = {}
    for preset, weights in tiny_weights.items():
        folder = tmp_path_factory.mktemp(f"artifacts-{preset}")
        model, card = load_model(weights)
        export_onnx(model, folder / "model.onnx", card=card)
        out[preset] = folder
    return out
