"""lle bench times the code lle run runs: its pre/infer/post give the frames the streaming pipeline writes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from lle.io.sinks import Sink
from lle.io.sources import Frame, Source


class _List(Source):
    description = "frames"

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.total = frames, len(frames)

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.frames):
            yield Frame(i, f, f"f{i}.png")


class _Keep(Sink):
    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self.images.append(image)


def test_bench_run_path_matches_the_streaming_pipeline(tiny_onnx: dict) -> None:
    pytest.importorskip("onnxruntime")
    from lle.backends import load_backend
    from lle.bench.frames import make_frames
    from lle.bench.runner import RunPath
    from lle.streaming import StreamRunner

    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in make_frames(37, 21, 2, photos=False)]
    with load_backend("onnxruntime", tiny_onnx["quality"], device="cpu") as be:
        path = RunPath(be)
        bench = [path.post(path.infer(path.pre([f])))[0] for f in bgr]
        sink = _Keep()
        StreamRunner(be, _List(bgr), [sink]).run()
    assert len(sink.images) == len(bench)
    for got, want in zip(sink.images, bench, strict=True):
        np.testing.assert_array_equal(got, want)


def test_bench_run_path_of_an_i420_graph_matches_the_streaming_pipeline(tiny_weights: dict, tmp_path) -> None:
    """BGR frames (odd size) through an I420 video graph: converted, enhanced, converted back and cropped alike."""
    pytest.importorskip("onnxruntime")
    from lle.backends import load_backend
    from lle.bench.frames import make_frames
    from lle.bench.runner import RunPath
    from lle.export.config import ExportConfig
    from lle.export.onnx_export import to_onnx
    from lle.streaming import StreamRunner

    onnx = to_onnx(tiny_weights["realtime"], tmp_path, ExportConfig(parity_hw=((32, 48),), io="i420"), None)
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in make_frames(37, 21, 2, photos=False)]
    with load_backend("onnxruntime", onnx, device="cpu") as be:
        path = RunPath(be)
        bench = [path.post(path.infer(path.pre([f])))[0] for f in bgr]
        assert path.rgb_float(bgr[0]).shape == (1, 3, 21, 37)
        sink = _Keep()
        StreamRunner(be, _List(bgr), [sink], smoothing=0.0).run()
    assert len(sink.images) == len(bench)
    for got, want in zip(sink.images, bench, strict=True):
        assert got.shape == (21, 37, 3)
        np.testing.assert_array_equal(got, want)
