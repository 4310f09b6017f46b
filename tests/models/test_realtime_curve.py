"""Realtime preset v2: the curve is monotonic, never inverts or blows out highlights, and leaves no border bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lle.models.checkpoint import load_model
from lle.models.realtime import RealtimeUNet, tone_curve

WEIGHTS = Path(__file__).resolve().parents[2] / "lle" / "weights" / "realtime.safetensors"


@pytest.fixture(scope="module")
def shipped() -> RealtimeUNet:
    model, _ = load_model(WEIGHTS)
    assert isinstance(model, RealtimeUNet)
    return model.eval()


def _ramp(n: int = 256) -> torch.Tensor:
    return torch.linspace(0, 1, n).view(1, 1, 1, n)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("desaturation", "highlight"), [(0.0, 0.0), (0.2, 0.0), (0.9, 0.0), (0.2, 0.5), (0.0, 0.9)])
def test_curve_is_monotonic_on_a_ramp_for_random_coefficients(seed: int, desaturation: float, highlight: float
                                                              ) -> None:
    # An exposure ramp: the pixel and its local base (a blur of the frame) both scale with t; coefficients fixed.
    g = torch.Generator().manual_seed(seed)
    n = 512
    t = _ramp(n)
    colour, base = torch.rand(8, 3, 1, 1, generator=g), torch.rand(8, 3, 1, 1, generator=g)
    x = t * colour
    k = torch.rand(8, 1, 1, 1, generator=g).clamp(min=1e-3)
    r = torch.exp(torch.empty(8, 1, 1, 1).uniform_(-4.5, 4.5, generator=g))  # gains e^-4.5 .. e^4.5
    w = torch.rand(8, 3, 1, 1, generator=g).clamp(min=0.05)
    y = tone_curve(x, t * base * (1 - k) * w, k, r, w, desaturation=desaturation, highlight=highlight)
    assert (y[..., 1:] - y[..., :-1] >= -1e-6).all()
    assert y.min() >= 0 and y.max() <= 1 + 1e-6
    assert (y >= x - 1e-6).all()  # never darker than the input


@pytest.mark.parametrize("seed", range(3))
def test_each_channel_rises_with_its_own_input(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n = 256
    k = torch.rand(4, 1, 1, 1, generator=g).clamp(min=1e-3)
    r = torch.exp(torch.empty(4, 1, 1, 1).uniform_(-4.5, 4.5, generator=g))
    base = torch.rand(4, 3, 1, 1, generator=g) * (1 - k)
    for c in range(3):
        x = torch.rand(4, 3, 1, 1, generator=g).expand(4, 3, 1, n).clone()
        x[:, c] = _ramp(n)[0, 0]
        y = tone_curve(x, base.expand_as(x), k, r)
        assert (y[:, c, :, 1:] - y[:, c, :, :-1] >= -1e-6).all()


def test_desaturation_only_where_the_gain_lifts() -> None:
    x = torch.tensor([0.20, 0.10, 0.05]).view(1, 3, 1, 1)
    one = torch.ones(1, 1, 1, 1)
    same = tone_curve(x, torch.zeros_like(x), one, one, desaturation=0.5)  # gain 1: untouched
    assert torch.allclose(same, x)
    plain = tone_curve(x, torch.zeros_like(x), one, one / 8, desaturation=0.0)
    desat = tone_curve(x, torch.zeros_like(x), one, one / 8, desaturation=0.5)
    assert float(desat[0, 0]) == pytest.approx(float(plain[0, 0]))  # brightest channel keeps its value
    assert (desat[0, 1:] > plain[0, 1:]).all()  # the others move towards it: less chroma, never darker


def test_curve_rolls_off_instead_of_clipping() -> None:
    x = _ramp().expand(1, 3, 1, 256)
    one = torch.ones(1, 1, 1, 256)
    y = tone_curve(x, torch.zeros_like(x), one, one / 16.0)  # gain 16 in the shadows
    assert float(y[..., -1].min()) == pytest.approx(1.0)
    assert (y[..., :-1] < 1.0).all()  # nothing but white reaches white
    slope = (y[..., 1:] - y[..., :-1]) * 255
    assert float(slope[..., -1].max()) < float(slope[..., 0].min())  # compressive at the top, not a hard clip


@pytest.mark.parametrize("highlight", [0.3, 0.5, 0.8])
def test_highlight_cap_keeps_bright_pixels_off_white(highlight: float) -> None:
    # Gain 20: the roll-off alone sends everything above ~0.8 to >= 0.98; the cap keeps a share 1 - h of the
    # distance to white, so only inputs within 0.02 / (1 - h) of white can reach 0.98.
    x = _ramp(1024).expand(1, 3, 1, 1024)
    one = torch.ones(1, 1, 1, 1024)
    rolled = tone_curve(x, torch.zeros_like(x), one, one / 20.0)
    capped = tone_curve(x, torch.zeros_like(x), one, one / 20.0, highlight=highlight)
    v = x[0, 0, 0]
    assert bool(((rolled[0, 0, 0] >= 0.98) & (v < 0.8)).any())
    assert (capped <= rolled + 1e-6).all() and (capped >= x - 1e-6).all()
    assert (capped[0, 0, 0] <= v + highlight * (1 - v) + 1e-6).all()
    assert not bool(((capped[0, 0, 0] >= 0.98) & (v < 1 - 0.02 / (1 - highlight) - 1e-3)).any())
    dark = v < 0.01  # deep shadows keep the full lift: the cap is far above the curve there
    assert torch.allclose(capped[0, 0, 0][dark], rolled[0, 0, 0][dark])
    assert float(capped[0, 0, 0, -1]) == pytest.approx(1.0)


def test_shipped_weights_are_monotonic_in_the_input(shipped: RealtimeUNet) -> None:
    # Coefficients from a real-looking dark frame, then the frame (and so its base) scaled by t: every pixel rises.
    g = torch.Generator().manual_seed(0)
    frame = (torch.rand(1, 3, 64, 96, generator=g) * 0.3) ** 1.5
    with torch.no_grad():
        p, s = shipped.analyse(frame)
        c = shipped.predict(p, s)
        outs = torch.stack([shipped.render(frame * t, p * t, c) for t in torch.linspace(0, 3.3, 34)])
    assert (outs[1:] - outs[:-1] >= -1e-6).all()


def test_shipped_weights_on_a_grey_ramp_image(shipped: RealtimeUNet) -> None:
    x = _ramp(384).expand(1, 3, 32, 384).contiguous()
    with torch.no_grad():
        y = shipped(x)
    row = y[0, :, 16]
    assert (row[:, 1:] - row[:, :-1] >= -1e-4).all()


def test_bright_light_sources_are_never_darkened(shipped: RealtimeUNet) -> None:
    rng = np.random.default_rng(0)
    img = np.full((1, 3, 180, 320), 0.03, np.float32) + rng.normal(0, 0.01, (1, 3, 180, 320)).astype(np.float32)
    for _ in range(40):  # street lamps and lit windows: small bright spots, some coloured
        y, x, r = rng.integers(4, 176), rng.integers(4, 316), rng.integers(1, 4)
        img[0, :, y - r : y + r, x - r : x + r] = rng.uniform(0.7, 1.0, (3, 1, 1))
    x_t = torch.from_numpy(np.clip(img, 0, 1))
    with torch.no_grad():
        out = shipped(x_t)
    bright = x_t.amax(1, keepdim=True).expand_as(x_t) > 0.6
    assert float((x_t - out)[bright].max()) <= 0.02
    assert float(out.max()) <= 1.0


def test_no_border_bands_on_a_flat_frame(shipped: RealtimeUNet) -> None:
    for level in (0.05, 0.2):
        x = torch.full((1, 3, 270, 480), level)
        with torch.no_grad():
            y = shipped(x)[0]
        interior = y[:, 40:-40, 40:-40].mean(dim=(1, 2))
        for edge in (y[:, :4], y[:, -4:], y[:, :, :4], y[:, :, -4:]):
            assert float((edge - interior.view(3, 1, 1)).abs().max()) < 1.0 / 255


def test_v1_weights_layout_is_adapted_for_warm_start() -> None:
    m = RealtimeUNet(width=4, depth=2, lowres=16)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    state["encoder.stem.0.weight"] = torch.randn(4, 3, 3, 3)
    state["head.weight"], state["head.bias"] = torch.randn(6, 4, 3, 3), torch.randn(6)
    new = m.adapt_state_dict(state)
    m.load_state_dict(new)
    assert torch.equal(new["encoder.stem.0.weight"][:, :3], state["encoder.stem.0.weight"])
    assert not new["encoder.stem.0.weight"][:, 3].any()
    assert torch.allclose(new["head.weight"][0], state["head.weight"][:3].mean(0))


def test_highlight_cap_trains_on_black_pixels_without_nan() -> None:
    torch.manual_seed(0)
    m = RealtimeUNet(width=4, depth=2, lowres=16, desaturation=0.2, highlight=0.75)
    x = torch.rand(2, 3, 48, 64)
    x[:, :, :8] = 0.0  # black rows: v = 0 in the cap's division
    m(x).mean().backward()
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)


def test_exposure_weight_keeps_dark_frames_and_tempers_lit_ones(shipped: RealtimeUNet) -> None:
    """The shipped card's exposure rule: a dark frame is enhanced as without it, a moderately lit one less, a
    well-exposed one barely, and the curve stays monotonic (only the coefficients change)."""
    import copy

    from lle.models.realtime import exposure_weight

    assert shipped.exposure == (0.15, 0.30)
    off = copy.deepcopy(shipped)
    off.exposure = None
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(1, 1, 48, 64, generator=g)
    means = {}
    for level in (0.08, 0.3, 0.55):
        x = (level * (0.6 + 0.8 * tex)).expand(1, 3, 48, 64) * torch.tensor([1.0, 0.9, 0.8]).view(1, 3, 1, 1)
        with torch.no_grad():
            y_on, y_off = shipped(x), off(x)
        means[level] = (float(x.mean()), float(y_on.mean()), float(y_off.mean()))
        assert bool((y_on >= x - 1e-6).all())
    dark, mid, lit = means[0.08], means[0.3], means[0.55]
    assert abs(dark[1] - dark[2]) < 1e-6  # below 0.15: untouched
    assert mid[0] < mid[1] < mid[2]  # lifted, but less than without the rule
    assert lit[1] - lit[0] < 0.5 * (lit[2] - lit[0])
    p = torch.full((2, 3, 4, 4), 0.1)
    p[1] = 0.7
    assert exposure_weight(p, 0.15, 0.6).flatten().tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="exposure"):
        RealtimeUNet(exposure=(0.5, 0.2))
    # monotonic on a ramp with the rule on
    ramp = torch.linspace(0, 1, 256).view(1, 1, 1, 256).expand(1, 3, 16, 256).contiguous()
    with torch.no_grad():
        y = shipped(ramp)
    assert bool((y[..., 1:] - y[..., :-1] >= -1e-5).all())


@pytest.mark.parametrize(("desaturation", "highlight"), [(0.0, 0.0), (0.2, 0.0), (0.2, 0.85), (0.0, 0.5)])
def test_frame_graphs_planar_curve_is_the_tone_curve(desaturation: float, highlight: float) -> None:
    """The frame graphs run :func:`tone_curve` plane by plane (no channel Concat/Split): the same values."""
    from lle.models.frames import _curve_planes

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 24, generator=g) * 255.0
    k = torch.rand(2, 1, 16, 24, generator=g).clamp(min=1e-3)
    r = torch.exp(torch.empty(2, 1, 16, 24).uniform_(-4.5, 4.5, generator=g))
    w = torch.rand(2, 3, 1, 1, generator=g).clamp(min=0.05)
    base_k = torch.rand(2, 3, 16, 24, generator=g) * 255.0 * (1.0 - k) * w
    ref = tone_curve(x, base_k, k, r, w, desaturation=desaturation, white=255.0, highlight=highlight)
    got = _curve_planes(x.split(1, dim=1), base_k.split(1, dim=1), k, r, w, torch.tensor(255.0), desaturation,
                        highlight)
    torch.testing.assert_close(torch.cat(got, dim=1), ref, rtol=1e-5, atol=1e-4)


def test_frame_graph_maps_are_the_render_maps(shipped: RealtimeUNet) -> None:
    """One Resize for all five maps of the BGR frame graph gives :meth:`RealtimeUNet.render_maps` exactly."""
    from lle.models.frames import RealtimeFrameGraph

    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 37, 53, generator=g) * 255.0
    with torch.no_grad():
        p, s = shipped.analyse(x / 255.0)
        c = shipped.predict(p, s) + torch.randn(1, 5, shipped.lowres, shipped.lowres, generator=g)
        base_k, k, r, w = shipped.render_maps(x, p, c, base_scale=255.0, bgr=True)
        *bk, k2, r2, w2 = RealtimeFrameGraph(shipped).maps(p, c, x.shape[-2:])
    for a, b in ((torch.cat(bk, dim=1), base_k), (k2, k), (r2, r), (w2, w)):
        assert torch.equal(a, b)


def test_i420_analysis_is_analyse_half_of_the_rgb_samples(shipped: RealtimeUNet) -> None:
    """The I420 graph's planar analysis (1/255 after pooling) is the model's :meth:`analyse_half` of the samples."""
    from lle.models.frames import RealtimeI420Graph, _rgb_planes

    graph = RealtimeI420Graph(shipped)
    g = torch.Generator().manual_seed(3)
    frames = (torch.rand(1, 57, 54, generator=g) * 255).to(torch.uint8)  # Y 38 x 54, U and V 19 x 27
    y, u, v = graph.planes(frames)
    terms = graph.chroma(u, v)
    with torch.no_grad():
        p, s = graph.analyse(y, terms)
        p_ref, s_ref = shipped.analyse_half(torch.cat(_rgb_planes(y[..., ::2, ::2], terms), dim=1) / 255.0)
    torch.testing.assert_close(p, p_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s, s_ref, rtol=1e-4, atol=1e-5)
