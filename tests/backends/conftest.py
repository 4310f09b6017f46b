from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_onnx(tiny_weights: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{preset: tiny .onnx} exported from the tiny weights."""
    pytest.importorskip("onnx")
    from lle.export.onnx_export import export_onnx
    from lle.models.checkpoint import load_model

    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for preset, w in tiny_weights.items():
        model, card = load_model(w)
        out[preset] = export_onnx(model, root / f"{preset}.onnx", card=card)
    return out
