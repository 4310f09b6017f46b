from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lle.errors import InputError
from lle.models.checkpoint import load_model
from lle.training.soup import average_weights, parse_share
from tests.conftest import make_tiny_weights


def test_average_is_the_share_weighted_mean(tmp_path) -> None:
    a = make_tiny_weights(tmp_path / "a.safetensors", "quality", seed=0)
    b = make_tiny_weights(tmp_path / "b.safetensors", "quality", seed=1)
    ma, card = load_model(a)
    mb, _ = load_model(b)
    soup, soup_card = average_weights([(a, 3.0), (b, 1.0)])
    assert soup_card == card
    sa, sb, ss = ma.state_dict(), mb.state_dict(), soup.state_dict()  # type: ignore[attr-defined]
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)
    for k in sa:
        torch.testing.assert_close(ss[k], 0.75 * sa[k] + 0.25 * sb[k])
    one, _ = average_weights([(a, 1.0)])
    for k, v in one.state_dict().items():  # type: ignore[attr-defined]
        assert torch.equal(v, sa[k])


def test_average_refuses_other_architectures(tmp_path) -> None:
    a = make_tiny_weights(tmp_path / "a.safetensors", "quality")
    r = make_tiny_weights(tmp_path / "r.safetensors", "realtime")
    with pytest.raises(InputError, match="not the architecture"):
        average_weights([(a, 1.0), (r, 1.0)])
    with pytest.raises(InputError, match="nothing to average"):
        average_weights([])


def test_parse_share() -> None:
    assert parse_share("runs/x/val_250.safetensors") == (Path("runs/x/val_250.safetensors"), 1.0)
    assert parse_share("w.safetensors:0.35") == (Path("w.safetensors"), 0.35)
    assert parse_share("C:/w.safetensors") == (Path("C:/w.safetensors"), 1.0)
    with pytest.raises(InputError, match="> 0"):
        parse_share("w.safetensors:0")
