"""Shared fixtures: tiny deterministic models and images. No test touches the network or ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lle._lazy import quiet_openvino_telemetry

# before any test module imports openvino or nncf directly: their usage telemetry forks a sender per event, which
# offline can outlive the session and keep `python -m pytest` from exiting
quiet_openvino_telemetry()

PRESETS = ("quality", "realtime")
# the tiny quality model carries the shipped card's exposure cap and highlight roll-off, so every graph test covers them
TINY_ARCH = {
    "quality": {"width": 4, "depth": 4, "exposure_cap": [0.2, 0.4, 0.25, 0.4, 0.7, 0.7], "highlight_knee": 0.8},
    "realtime": {"width": 4, "depth": 2, "lowres": 32},
}


def make_tiny_weights(path: Path, preset: str, seed: int = 0) -> Path:
    """Save a tiny model of ``preset`` with seeded, non-identity weights (the zero-initialised head is perturbed)."""
    import torch

    from lle.models.checkpoint import ModelCard, save_model
    from lle.models.registry import create_model

    torch.manual_seed(seed)
    model = create_model(preset, **TINY_ARCH[preset])
    with torch.no_grad():
        model.head.weight.normal_(0.0, 0.05)
        model.head.bias.fill_(0.1)
    card = ModelCard(
        preset=preset,
        arch=TINY_ARCH[preset],
        size_multiple=model.size_multiple,
        training={"note": "tiny seeded test model"},
    )
    return save_model(model, path, card)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{preset: path to tiny .safetensors (with .json card)} for both presets."""
    root = tmp_path_factory.mktemp("weights")
    return {p: make_tiny_weights(root / f"{p}.safetensors", p) for p in PRESETS}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def dark_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, dark synthetic RGB image (H, W, 3) float32 in [0, 0.3] with some texture."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.15 + 0.1 * np.sin(xx / max(1, w) * 6.0)[..., None] * np.cos(yy / max(1, h) * 4.0)[..., None]
    img = base * np.array([1.0, 0.8, 0.6], np.float32) + r.normal(0, 0.01, (h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 0.3).astype(np.float32)


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
