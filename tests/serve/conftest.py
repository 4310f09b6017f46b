"""Serve fixtures: tiny exported graphs (realtime uint8 video graph, quality float32 graph) with manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lle.export.config import ExportConfig


@pytest.fixture(scope="session")
def serve_onnx(tmp_path_factory: pytest.TempPathFactory, tiny_weights: dict[str, Path]) -> dict[str, Path]:
    """{preset: model.onnx (+ model.onnx.json)}: the realtime preset as its uint8 frame video graph."""
    pytest.importorskip("onnx")
    from lle.export import export_model

    out = {}
    for preset, w in tiny_weights.items():
        folder = tmp_path_factory.mktemp(f"serve-{preset}")
        out[preset] = export_model(w, "onnx", folder, ExportConfig(parity_hw=((32, 48),))).final
    return out
