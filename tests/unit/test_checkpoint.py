from __future__ import annotations

import json

import pytest
import torch

from lle.errors import InputError
from lle.models.checkpoint import ModelCard, card_path, load_card, load_model, save_model
from lle.models.registry import create_model


def test_card_and_weights_round_trip(tmp_path) -> None:
    m = create_model("quality", width=4)
    with torch.no_grad():
        m.head.bias.fill_(0.25)
    card = ModelCard(preset="quality", arch={"width": 4}, size_multiple=16, metrics={"psnr": 21.5})
    path = save_model(m, tmp_path / "w.safetensors", card)
    got = load_card(path)
    assert got.preset == "quality" and got.arch == {"width": 4} and got.metrics == {"psnr": 21.5}
    assert got.lle_version
    m2, card2 = load_model(path)
    assert torch.equal(m2.head.bias, m.head.bias)
    # the card is also embedded in the safetensors header
    card_path(path).unlink()
    assert load_card(path).preset == "quality"


def test_missing_and_garbage_weights(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_card(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a safetensors"):
        load_card(bad)


def test_weights_that_do_not_fit_the_preset(tmp_path) -> None:
    m = create_model("quality", width=4)
    path = save_model(m, tmp_path / "w.safetensors", ModelCard(preset="quality", arch={"width": 4}, size_multiple=16))
    card_path(path).write_text(json.dumps({"preset": "quality", "arch": {"width": 8}, "size_multiple": 16}))
    with pytest.raises(InputError, match="does not fit"):
        load_model(path)


def test_half_storage_halves_the_file_and_loads_as_float32(tmp_path) -> None:
    m = create_model("quality", width=4)
    card = ModelCard(preset="quality", arch={"width": 4}, size_multiple=16)
    full = save_model(m, tmp_path / "f.safetensors", card)
    half = save_model(m, tmp_path / "h.safetensors", card, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    m2, _ = load_model(half)
    p = next(m2.parameters())
    assert p.dtype == torch.float32
    torch.testing.assert_close(p, next(m.parameters()), atol=1e-3, rtol=1e-3)
