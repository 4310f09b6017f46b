"""Temporal smoothing does what it says: the alphas reaching the backend, the reset at a cut, the result after it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from lle.backends.registry import load_backend
from lle.io.sinks import Sink
from lle.io.sources import Frame, Source
from lle.streaming import StreamRunner


class _Clip(Source):
    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.total, self.description = frames, len(frames), "clip"

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.frames):
            yield Frame(i, f, f"{i:04d}.png")


class _Keep(Sink):
    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self.images.append(image.copy())


def _clip() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    dark = [np.clip(30 + rng.normal(0, 3, (24, 40, 3)), 0, 255).astype(np.uint8) for _ in range(5)]
    bright = [np.clip(160 + rng.normal(0, 3, (24, 40, 3)), 0, 255).astype(np.uint8) for _ in range(4)]
    return dark + bright


def test_alphas_reset_at_the_cut_and_the_frame_after_it_equals_the_single_image_result(tiny_weights) -> None:
    pytest.importorskip("torch")
    clip = _clip()
    seen: list[float] = []
    with load_backend("torch", tiny_weights["realtime"], frames=True) as be:
        real = be.infer_stateful

        def spy(batch: np.ndarray, state: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
            seen.append(alpha)
            return real(batch, state, alpha)

        be.infer_stateful = spy  # type: ignore[method-assign]
        sink = _Keep()
        res = StreamRunner(be, _Clip(clip), [sink], smoothing=0.8).run()
        single = [be.infer(f[None])[0] for f in clip]
    assert res.scene_cuts == 1 and res.frames == len(clip)
    assert seen == [0.0, 0.8, 0.8, 0.8, 0.8, 0.0, 0.8, 0.8, 0.8]
    np.testing.assert_array_equal(sink.images[0], single[0])
    np.testing.assert_array_equal(sink.images[5], single[5])  # right after the cut: no memory of the dark scene


def test_smoothing_off_sends_zero_alpha_every_frame(tiny_weights) -> None:
    pytest.importorskip("torch")
    seen: list[float] = []
    with load_backend("torch", tiny_weights["realtime"], frames=True) as be:
        real = be.infer_stateful
        be.infer_stateful = lambda b, s, a: (seen.append(a), real(b, s, a))[1]  # type: ignore[method-assign]
        StreamRunner(be, _Clip(_clip()), [_Keep()], smoothing=0.0).run()
    assert seen == [0.0] * 9
