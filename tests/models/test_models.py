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


def _luma_mean(x: torch.Tensor) -> torch.Tensor:
    return (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1).mean((1, 2))


def test_exposure_cap_keeps_dark_scenes_and_tempers_moderately_lit_ones() -> None:
    """Quality's scene-adaptive exposure: a dark input's output passes untouched; an input at mean luma 0.25 whose
    output would be 0.6 comes out at the cap (0.4), blended towards the input with one factor per image."""
    from lle.models.unet import cap_exposure

    g = torch.Generator().manual_seed(0)
    base = torch.rand(2, 3, 24, 32, generator=g)
    x = torch.cat([base[:1] * 0.1 / float(_luma_mean(base[:1])), base[1:] * 0.25 / float(_luma_mean(base[1:]))])
    y = (x * 2.4).clamp(0, 1)  # both lifted; the second to a mean near 0.6
    out = cap_exposure(x, y, 0.25, 0.4)
    assert torch.equal(out[0], y[0])  # dark: mean 0.24 is far below its cap (0.76)
    assert float(_luma_mean(y[1:])) > 0.55
    assert abs(float(_luma_mean(out[1:].clamp(0, 1))) - 0.4) < 1e-4
    t = (out[1] - x[1]) / (y[1] - x[1]).clamp_min(1e-9)
    moved = (y[1] - x[1]).abs() > 1e-3
    assert float(t[moved].std()) < 1e-4  # one factor for the whole image
    assert bool((out >= x - 1e-7).all())  # an output that was brighter than the input still is
    # an input already brighter than the cap is not darkened (nor is one whose output is darker than it)
    bright = torch.full((1, 3, 8, 8), 0.3)
    assert torch.equal(cap_exposure(bright, bright * 0.9, 0.25, 0.4), bright * 0.9)


def test_exposure_cap_is_continuous_above_the_input_and_validated() -> None:
    from lle.models.unet import QualityUNet, exposure_cap_at

    m = torch.linspace(0, 1, 1001)
    cap = exposure_cap_at(m, 0.25, 0.4)
    assert float(cap[0]) == pytest.approx(1.0) and float(cap[-1]) == pytest.approx(1.0)
    assert float(cap.min()) == pytest.approx(0.4, abs=1e-3) and float(cap.diff().abs().max()) < 3e-3
    assert bool((cap >= m - 1e-6).all())  # never asks an output to be darker than its input on average
    for bad in ([0.5, 0.4], [0.0, 0.4], [0.25, 1.5]):
        with pytest.raises(ValueError, match="exposure_cap"):
            QualityUNet(width=4, exposure_cap=bad)


@pytest.mark.parametrize(("cap", "level"), [([0.25, 0.4], 0.25), ([0.2, 0.4, 0.25, 0.4, 0.6, 0.6], 0.2)])
def test_exposure_cap_in_the_model_and_in_onnx(tmp_path, cap, level) -> None:
    """The cap runs inside the model's forward (so in every exported graph) and onnxruntime matches torch on a
    moderately lit input where it binds (for the plateau form, an input inside the plateau)."""
    ort = pytest.importorskip("onnxruntime")
    from lle.export.onnx_export import export_onnx

    torch.manual_seed(0)
    capped = create_model("quality", width=4, exposure_cap=cap).eval()
    with torch.no_grad():
        capped.head.bias.copy_(torch.tensor([0.8, 0.8, 0.8, 0.0, 0.0, 0.0]))  # gain e^0.8: over-lifts
    free = create_model("quality", width=4).eval()
    free.load_state_dict(capped.state_dict())
    x = torch.full((1, 3, 32, 48), level) + 0.05 * torch.rand(1, 3, 32, 48)
    dark = x * 0.3
    with torch.no_grad():
        limit = float(exposure_cap_at_mean(x, cap))
        assert float(_luma_mean(free(x).clamp(0, 1))) > limit + 0.05
        assert abs(float(_luma_mean(capped(x).clamp(0, 1))) - limit) < 1e-4
        assert torch.allclose(capped(dark), free(dark))
    sess = ort.InferenceSession(str(export_onnx(capped, tmp_path / "q.onnx")), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for inp in (x, dark):
            got = sess.run(["output"], {"input": inp.numpy()})[0]
            assert float(np.abs(got - capped(inp).numpy()).max()) < 1e-5


def test_exposure_cap_knots_shape_the_curve() -> None:
    """``[m_a, cap_a, m_b, cap_b, ...]``: straight lines through the knots from 1 at black to 1 at white. The
    plateau form holds 0.4 from 0.2 to 0.25 (a scene a little darker than 0.25 gets no more lift) and a knot at
    (0.6, 0.6) stops lifting bright scenes; the two-value V is unchanged; the NumPy twin agrees; bad forms fail."""
    from lle.models.unet import QualityUNet, exposure_cap_at
    from lle.pipeline import exposure_limit

    m = torch.linspace(0, 1, 1001, dtype=torch.float64)
    knots = (0.2, 0.4, 0.25, 0.4, 0.6, 0.6)
    shaped, v = exposure_cap_at(m, *knots), exposure_cap_at(m, 0.25, 0.4)
    inside = (m >= 0.2) & (m <= 0.25)
    assert torch.allclose(shaped[inside], torch.full_like(shaped[inside], 0.4))
    assert torch.allclose(shaped[m >= 0.6], m[m >= 0.6])  # no lift allowed for a bright scene
    assert bool((shaped <= v + 1e-12).all()) and float(shaped[0]) == pytest.approx(1.0)
    assert float(shaped.diff().abs().max()) < 3.1e-3  # continuous (steepest: slope 3 below 0.2)
    assert bool((shaped >= m - 1e-9).all())
    assert float(v[250]) == pytest.approx(0.4) and float(v[100]) == pytest.approx(0.76)
    for args in ((0.25, 0.4), knots, (0.3, 0.45, 0.5, 0.55)):
        assert np.allclose(exposure_limit(m.numpy(), *args), exposure_cap_at(m, *args).numpy(), atol=1e-12)
    for bad in ([0.25, 0.4, 0.2], [0.25, 0.4, 0.2, 0.4], [0.0, 0.4], [0.25, 0.2], [0.25, 0.4, 1.0, 1.0], [0.25]):
        with pytest.raises(ValueError, match="exposure_cap"):
            QualityUNet(width=4, exposure_cap=bad)


def exposure_cap_at_mean(x: torch.Tensor, cap: list[float] | None = None) -> torch.Tensor:
    from lle.models.unet import exposure_cap_at

    return exposure_cap_at(_luma_mean(x), *(cap or [0.25, 0.4]))


def test_highlight_roll_off_is_monotonic_keeps_the_input_and_never_reaches_white() -> None:
    """roll_off_highlights: for every input level the output rises with the model's output (no inversion), is
    continuous with slope 1 at the knee, never drops below the input, keeps 7 % of the headroom where the lift would
    just reach white, leaves lifts under the knee and darkened pixels alone, and has finite gradients everywhere (it
    trains in the loop)."""
    from lle.models.unet import roll_off_highlights

    x = torch.linspace(0.0, 0.99, 100, dtype=torch.float64).view(-1, 1)
    y = x + torch.linspace(-0.2, 3.0, 2001, dtype=torch.float64).view(1, -1)
    out = roll_off_highlights(x, y, 0.8)
    assert bool((out.diff(dim=1) >= -1e-12).all())  # increasing in y
    assert float(out.diff(dim=1).abs().max()) <= float(y.diff(dim=1).max()) + 1e-9  # slope <= 1: continuous
    assert bool((out[y >= x] >= x.expand_as(y)[y >= x] - 1e-12).all())
    xe = x.expand_as(y)
    just_white = (y > x) & (y <= 1.0)
    assert bool((out[just_white] <= xe[just_white] + 0.9265 * (1 - xe[just_white])).all()) and bool((out <= 1).all())
    untouched = (y <= x) | (y - x <= 0.8 * (1 - x))
    assert torch.equal(out[untouched], y[untouched])
    yg = y.clone().requires_grad_(True)
    roll_off_highlights(x, yg, 0.8).sum().backward()
    assert bool(torch.isfinite(yg.grad).all())
    from lle.models.unet import QualityUNet

    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="highlight_knee"):
            QualityUNet(width=4, highlight_knee=bad)


def test_highlight_roll_off_in_the_model_and_in_onnx(tmp_path) -> None:
    """``highlight_knee`` runs inside the model (before the exposure cap), so exported graphs apply it; onnxruntime
    matches torch on an over-lifted input, and fewer pixels reach white than without it."""
    ort = pytest.importorskip("onnxruntime")
    from lle.export.onnx_export import export_onnx

    torch.manual_seed(0)
    rolled = create_model("quality", width=4, highlight_knee=0.8, exposure_cap=[0.2, 0.4, 0.25, 0.4, 0.7, 0.7]).eval()
    with torch.no_grad():
        rolled.head.bias.copy_(torch.tensor([0.6, 0.6, 0.6, 0.0, 0.0, 0.0]))  # gain e^0.6: blows the lit band's top
    plain = create_model("quality", width=4, exposure_cap=[0.2, 0.4, 0.25, 0.4, 0.7, 0.7]).eval()
    plain.load_state_dict(rolled.state_dict())
    x = torch.rand(1, 3, 32, 48) * 0.05
    x[..., 24:, :] = 0.45 + 0.1 * torch.rand(1, 3, 8, 48)  # a lit band
    with torch.no_grad():
        blown = int((plain(x).clamp(0, 1) >= 0.98).sum())
        assert blown > 50 and int((rolled(x).clamp(0, 1) >= 0.98).sum()) < blown // 4
    sess = ort.InferenceSession(str(export_onnx(rolled, tmp_path / "q.onnx")), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        got = sess.run(["output"], {"input": x.numpy()})[0]
        assert float(np.abs(got - rolled(x).numpy()).max()) < 1e-5


def test_never_darker_keeps_every_pixel_at_or_above_the_input_in_torch_and_onnx(tmp_path) -> None:
    """``never_darker``: a model that darkens a lit band (negative gain) keeps it as it came in, dark pixels it lifts
    are unchanged, and the exported graph does the same."""
    ort = pytest.importorskip("onnxruntime")
    from lle.export.onnx_export import export_onnx

    torch.manual_seed(0)
    kept = create_model("quality", width=4, never_darker=True).eval()
    with torch.no_grad():
        kept.head.bias.copy_(torch.tensor([-0.5, -0.5, -0.5, 0.0, 0.0, 0.0]))  # darkens everything
    plain = create_model("quality", width=4).eval()
    plain.load_state_dict(kept.state_dict())
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert bool((plain(x) < x - 0.05).any())
        assert torch.equal(kept(x), torch.maximum(plain(x), x))
        kept.head.bias.copy_(torch.tensor([0.5, 0.5, 0.5, 0.0, 0.0, 0.0]))  # brightens: max changes nothing
        plain.load_state_dict(kept.state_dict())
        assert torch.equal(kept(x), plain(x))
    sess = ort.InferenceSession(str(export_onnx(kept, tmp_path / "q.onnx")), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        got = sess.run(["output"], {"input": x.numpy()})[0]
        assert float(np.abs(got - kept(x).numpy()).max()) < 1e-5
