from __future__ import annotations

import numpy as np
import pytest
import torch

from lle.models import create_model, list_models
from lle.pipeline import Enhancer

TINY = {"quality": {"width": 4}, "realtime": {"width": 4, "depth": 2, "lowres": 32}}


def _perturbed(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    m = create_model(name, **TINY[name]).eval()
    with torch.no_grad():
        m.head.weight.normal_(0, 0.05)
    return m


def test_registry_lists_both_presets() -> None:
    assert {"quality", "realtime"} <= set(list_models())


def test_unknown_preset_names_valid_ones() -> None:
    from lle.errors import ConfigError

    with pytest.raises(ConfigError, match="valid presets: quality, realtime"):
        create_model("nope")


@pytest.mark.parametrize("name", list_models())
def test_starts_as_identity(name: str) -> None:
    m = create_model(name, **TINY[name]).eval()
    if name == "realtime":  # starts at gain 1 with a detail gain just under 1; at detail gain 1 it is the identity
        with torch.no_grad():
            m.head.bias[1] = 30.0
    x = torch.rand(1, 3, 32, 48)
    assert torch.allclose(m(x), x, atol=1e-6)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("hw", [(17, 9), (1, 1), (33, 64), (5, 130)])
def test_any_size_through_enhancer(name: str, hw: tuple[int, int]) -> None:
    m = _perturbed(name)

    def infer(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return m(torch.from_numpy(x)).numpy()

    x = np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)
    y = Enhancer(infer, m.size_multiple)(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", list_models())
def test_every_parameter_gets_a_gradient(name: str) -> None:
    m = _perturbed(name).train()
    m(torch.rand(2, 3, 64, 64)).mean().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", list_models())
def test_onnx_export_dynamic_hw_matches_eager(name: str, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from lle.export.onnx_export import export_onnx

    m = _perturbed(name)
    path = export_onnx(m, tmp_path / f"{name}.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    for hw in [(32, 48), (80, 16)]:
        x = torch.rand(2, 3, *hw)
        feeds = {"input": x.numpy()}
        if "state" in names:
            state = np.zeros((2, m.coeff_channels, m.lowres, m.lowres), np.float32)
            feeds |= {"state": state, "alpha": np.zeros(1, np.float32)}
        got = sess.run(["output"], feeds)[0]
        with torch.no_grad():
            ref = m(x).numpy()
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_realtime_temporal_state_blends() -> None:
    from lle.models.realtime import TemporalRealtime

    m = _perturbed("realtime")
    t = TemporalRealtime(m)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y0, c0 = t(x, torch.zeros(1, m.coeff_channels, 32, 32), torch.zeros(1))
        assert torch.allclose(y0, m(x), atol=1e-6)
        y1, c1 = t(x, c0 * 2, torch.ones(1))
        assert torch.allclose(c1, c0 * 2)


def test_realtime_lowres_must_fit_depth() -> None:
    from lle.errors import ConfigError

    with pytest.raises(ConfigError, match="lowres"):
        create_model("realtime", lowres=100, depth=3)
