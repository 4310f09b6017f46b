"""The backend contract: Backend.infer / infer_stateful own the load guard and the input checks, then call _run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from lle.backends.base import ALPHA, INPUT, OUTPUT, STATE, STATE_OUT, Backend, TensorSpec
from lle.errors import BackendError


class _Scale(Backend):
    """Doubles its input; with ``video`` it carries a (2, 4, 4) state as ``alpha * state + (1 - alpha)``."""

    name, extra = "scale", ""

    def __init__(self, *, video: bool = False) -> None:
        super().__init__(Path("scale.bin"))
        self.video = video
        self.calls: list[tuple[list[str], tuple[str, ...]]] = []
        self._on = False

    def load(self) -> None:
        self._on = True

    def close(self) -> None:
        self._on = False

    def _loaded(self) -> bool:
        return self._on

    @property
    def input_spec(self) -> TensorSpec:
        return TensorSpec(size_multiple=4, state_shape=(2, 4, 4) if self.video else None)

    def _run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        self.calls.append((sorted(feeds), tuple(outputs)))
        out = {OUTPUT: feeds[INPUT] * 2.0}
        if STATE in feeds:
            out[STATE_OUT] = feeds[ALPHA][0] * feeds[STATE] + (1.0 - feeds[ALPHA][0])
        return [out[n] for n in outputs]


def test_infer_checks_load_and_input_then_runs() -> None:
    be = _Scale()
    x = np.ones((1, 3, 8, 8), np.float32)
    with pytest.raises(BackendError, match="scale backend: call load"):
        be.infer(x)
    with be:
        np.testing.assert_array_equal(be.infer(x), 2 * x)
        with pytest.raises(BackendError, match="not a multiple of 4"):
            be.infer(np.ones((1, 3, 6, 8), np.float32))
        with pytest.raises(BackendError, match="expected"):
            be.infer(x.astype(np.float64))
        with pytest.raises(BackendError, match="no temporal state"):
            be.infer_stateful(x, np.zeros((1, 2, 4, 4), np.float32), 0.5)
    assert be.calls == [([INPUT], (OUTPUT,))]


def test_video_graph_feeds_and_infer_stateful() -> None:
    with _Scale(video=True) as be:
        x = np.ones((2, 3, 4, 4), np.float32)
        be.infer(x)
        assert be.calls[-1] == ([ALPHA, INPUT, STATE], (OUTPUT,))  # a zero state and alpha 0 for single images
        y, s = be.infer_stateful(x, np.full((2, 2, 4, 4), 3.0, np.float32), 0.5)
        np.testing.assert_array_equal(s, np.full((2, 2, 4, 4), 2.0, np.float32))
        with pytest.raises(BackendError, match="alpha"):
            be.infer_stateful(x, be.zero_state(2), 1.5)
        with pytest.raises(BackendError, match="state"):
            be.infer_stateful(x, be.zero_state(1), 0.5)


def test_a_backend_that_overrides_infer_needs_no_run() -> None:
    class Old(Backend):
        name, extra = "old", ""

        def load(self) -> None:
            return None

        def infer(self, batch: np.ndarray) -> np.ndarray:
            return batch

        @property
        def input_spec(self) -> TensorSpec:
            return TensorSpec()

    x = np.zeros((1, 3, 2, 2), np.float32)
    assert Old(Path("m")).infer(x) is x


def test_exposure_cap_metadata_parses_both_forms_and_ignores_junk() -> None:
    """``lle.exposure_cap`` graph metadata: the cap curve's knots ("m0,cap", "m_a,cap_a,m_b,cap_b") become floats;
    anything else means no cap
    (the Enhancer then tiles without the whole-image preview, as for a graph exported before the cap existed)."""
    from lle.backends._graph import parse_exposure_cap

    assert parse_exposure_cap("0.25,0.4") == (0.25, 0.4)
    assert parse_exposure_cap("0.2,0.4,0.25,0.4") == (0.2, 0.4, 0.25, 0.4)
    for junk in (None, "", "0.25", "a,b", "0.1,0.2,0.3"):
        assert parse_exposure_cap(junk) is None
