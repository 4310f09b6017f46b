"""The stream pipeline: every frame in order for files, drop-stale for live sources, atomic outputs, flicker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from lle.backends import load_backend
from lle.backends.base import Backend, TensorSpec
from lle.errors import InputError
from lle.io.sinks import FolderSink, Sink, VideoFileSink
from lle.io.sources import Frame, Source, open_source
from lle.pipeline import Enhancer
from lle.streaming import StreamRunner, flicker, flicker_ratio, run_stream
from lle.streaming.runner import from_blob, to_blob

N, W, H, FPS = 24, 64, 48, 24.0

BACKENDS = [
    pytest.param("torch", "safetensors", "torch", id="torch"),
    pytest.param("onnxruntime", "onnx", "onnxruntime", id="onnxruntime"),
    pytest.param("openvino", "onnx", "openvino", id="openvino", marks=pytest.mark.openvino),
]


def frame_content(i: int) -> np.ndarray:
    """A dark frame whose content encodes ``i`` (level and a moving bar), BGR uint8."""
    img = np.full((H, W, 3), 10 + 4 * i, np.uint8)
    img[:, (2 * i) % W : (2 * i) % W + 4] = 90
    img[..., 1] //= 2
    return img


def write_video(path: Path, n: int = N) -> Path:
    w = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
    for i in range(n):
        w.write(frame_content(i))
    w.release()
    return path


def decode(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def _model(kind: str, tiny_weights: dict, tiny_onnx: dict, preset: str) -> Path:
    return tiny_weights[preset] if kind == "safetensors" else tiny_onnx[preset]


@pytest.mark.parametrize("preset", ["quality", "realtime"])
@pytest.mark.parametrize(("name", "kind", "module"), BACKENDS)
def test_video_matches_per_image(
    name: str, kind: str, module: str, preset: str, video: Path, tmp_path: Path, tiny_weights: dict, tiny_onnx: dict
) -> None:
    pytest.importorskip(module)
    model = _model(kind, tiny_weights, tiny_onnx, preset)
    res = run_stream(model, str(video), tmp_path / "frames", backend=name, smoothing=0.0)
    assert res.frames == N and res.dropped == 0
    written = sorted((tmp_path / "frames").glob("*.png"))
    assert [p.name for p in written] == [f"clip_{i:06d}.png" for i in range(N)]
    with load_backend(name, model) as be:
        enh = Enhancer(be.infer, be.input_spec.size_multiple)
        for i, (src, dst) in enumerate(zip(decode(video), written, strict=True)):
            ref = from_blob(enh(to_blob(src)))
            got = cv2.imread(str(dst))
            assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1, f"frame {i}"


@pytest.mark.parametrize(("name", "kind", "module"), BACKENDS)
def test_video_sink_keeps_count_fps_size(
    name: str, kind: str, module: str, video: Path, tmp_path: Path, tiny_weights: dict, tiny_onnx: dict
) -> None:
    pytest.importorskip(module)
    out = tmp_path / "out.mp4"
    res = run_stream(_model(kind, tiny_weights, tiny_onnx, "realtime"), str(video), out, backend=name)
    assert res.frames == N
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS, abs=0.01)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (W, H)
    cap.release()
    frames = decode(out)
    assert len(frames) == N
    levels = [float(f[:, 40:44].mean()) if i < 18 else float(f.mean()) for i, f in enumerate(frames)]
    assert levels[:18] == sorted(levels[:18])  # the level rises with the index: frames are in order
    assert not list(tmp_path.glob(".*part*"))


def test_compare_doubles_width(video: Path, tmp_path: Path, tiny_onnx: dict) -> None:
    pytest.importorskip("onnxruntime")
    run_stream(tiny_onnx["realtime"], str(video), tmp_path / "cmp.avi", compare=True)
    frames = decode(tmp_path / "cmp.avi")
    assert len(frames) == N and frames[0].shape == (H, 2 * W, 3)


class _SlowBackend(Backend):
    name, extra = "slow", "core"

    def __init__(self, delay: float) -> None:
        super().__init__(Path("slow"))
        self.delay = delay

    def load(self) -> None:
        pass

    @property
    def input_spec(self) -> TensorSpec:
        return TensorSpec(size_multiple=1)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        return batch * 2.0


class _FakeLive(Source):
    """A camera driven by events, not by sleeps: frame ``i`` is produced only once ``wait(i)`` returns."""

    live = True
    description = "fake camera"

    def __init__(self, n: int, wait: Callable[[int], None] = lambda i: None) -> None:
        self.n, self.wait = n, wait
        self.finished = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            self.wait(i)
            yield Frame(i, frame_content(i % 10), f"f{i:04d}.png")
        self.finished.set()


class _Collect(Sink):
    def __init__(self) -> None:
        self.indices: list[int] = []
        self.wrote = threading.Condition()

    def write(self, frame: Frame, image: np.ndarray) -> None:
        with self.wrote:
            self.indices.append(frame.index)
            self.wrote.notify_all()

    def wait_for(self, count: int) -> None:
        with self.wrote:
            assert self.wrote.wait_for(lambda: len(self.indices) >= count, timeout=30), "sink starved"


class _GatedBackend(_SlowBackend):
    """Its first call blocks until ``gate`` is set: the camera keeps producing while inference is busy."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__(0.0)
        self.gate = gate

    def infer(self, batch: np.ndarray) -> np.ndarray:
        assert self.gate.wait(timeout=30), "gate never opened"
        return batch * 2.0


def test_live_source_drops_stale_frames() -> None:
    sink = _Collect()
    cam = _FakeLive(60)
    res = StreamRunner(_GatedBackend(cam.finished), cam, [sink]).run()  # inference waits for the whole burst
    assert res.dropped > 0
    assert res.frames + res.dropped == 60
    assert sink.indices == sorted(sink.indices) and sink.indices[-1] == 59  # newest frame always delivered


def test_slow_live_producer_loses_nothing() -> None:
    sink = _Collect()
    cam = _FakeLive(8, wait=sink.wait_for)  # frame i comes only after i frames were written: never a stale one
    res = StreamRunner(_SlowBackend(0.0), cam, [sink]).run()
    assert res.dropped == 0 and sink.indices == list(range(8))


class _InterruptAt(Sink):
    def __init__(self, inner: Sink, at: int) -> None:
        self.inner, self.at, self.n = inner, at, 0

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self.n += 1
        if self.n == self.at:
            raise KeyboardInterrupt
        self.inner.write(frame, image)

    def close(self) -> None:
        self.inner.close()


def test_ctrl_c_leaves_playable_video(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "cut.mp4"
    sink = _InterruptAt(VideoFileSink(out, FPS), 5)
    res = StreamRunner(_SlowBackend(0.0), open_source(str(video)), [sink]).run()
    assert res.interrupted
    assert 4 <= len(decode(out)) < N
    assert not list(tmp_path.glob(".*part*"))


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="source not found"):
        open_source(str(tmp_path / "missing.mp4"))
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError, match="not a readable video"):
        open_source(str(bad))
    with pytest.raises(InputError, match="cannot open camera 97"):
        open_source("97")
    with pytest.raises(InputError, match="no images match"):
        open_source(str(tmp_path / "*.png"))


def test_folder_and_glob_sources(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"im{i}.png"), frame_content(i))
    src = open_source(str(tmp_path / "im*.png"))
    assert [f.name for f in src] == ["im0.png", "im1.png", "im2.png"]
    sink = FolderSink(tmp_path / "out")
    res = StreamRunner(_SlowBackend(0.0), open_source(str(tmp_path)), [sink]).run()
    assert res.frames == 3 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0.png", "im1.png", "im2.png"]


def test_flicker_metric() -> None:
    const = [np.full((4, 4, 3), 0.2, np.float32)] * 3
    assert flicker(const) == 0.0
    noisy = [np.full((4, 4, 3), v, np.float32) for v in (0.2, 0.22, 0.2)]
    assert flicker_ratio(noisy, [2 * f for f in noisy]) == pytest.approx(1.0)  # a pure gain adds no flicker


def _noisy_static_clip(n: int = 30, agc: float = 0.04, noise: float = 3.0) -> list[np.ndarray]:
    r = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    base = 30 + 25 * np.sin(xx / 9.0) * np.cos(yy / 7.0) + 20
    clip = []
    for _ in range(n):
        gain = 1.0 + r.normal(0, agc)  # sensor/AGC flicker on top of per-pixel noise
        f = base[..., None] * gain + r.normal(0, noise, (H, W, 3))
        clip.append(np.clip(f, 0, 255).astype(np.uint8))
    return clip


class _ListSource(Source):
    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.total, self.description = frames, len(frames), "clip"

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.frames):
            yield Frame(i, f, f"{i:04d}.png")


class _Keep(Sink):
    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self.images.append(image.astype(np.float32))


def test_realtime_smoothing_does_not_add_flicker(tiny_weights: dict) -> None:
    pytest.importorskip("torch")
    clip = _noisy_static_clip()
    ratios = {}
    for alpha in (0.0, 0.85):
        sink = _Keep()
        with load_backend("torch", tiny_weights["realtime"]) as be:
            res = StreamRunner(be, _ListSource(clip), [sink], smoothing=alpha).run()
        assert res.frames == len(clip) and res.scene_cuts == 0
        ratios[alpha] = flicker_ratio([f.astype(np.float32) for f in clip], sink.images)
    # The relative metric is gain-invariant; below 1.0 the detail gain k < 1 removes part of the noise, and the
    # analysis already averages the noise out of the coefficients, so smoothing can only keep them as steady.
    assert ratios[0.85] <= 1.02
    assert ratios[0.85] <= ratios[0.0] * (1 + 1e-5)


def test_smoothing_cuts_noise_flicker_with_the_shipped_weights() -> None:
    """Shipped realtime weights on a static noisy clip: per-frame coefficients jitter with the noise, smoothed ones
    do not. With 4 % AGC gain flicker on top, smoothed output flickers far less than the input, and unsmoothed
    output never more than the input. Recorded with the v3 run 6 weights: 0.23 smoothed, 0.88 unsmoothed (the clip's
    mean luma, about 0.2, sits on the exposure rule's ramp [0.15, 0.30], where per-frame coefficients over-counter
    the gain; v2 weights with the [0.15, 0.35] rule: 0.26 / 0.24)."""
    pytest.importorskip("torch")
    from lle.presets import bundled_weights

    def ratios(clip: list[np.ndarray]) -> dict[float, float]:
        out = {}
        for alpha in (0.0, 0.85):
            sink = _Keep()
            with load_backend("torch", bundled_weights("realtime")) as be:
                StreamRunner(be, _ListSource(clip), [sink], smoothing=alpha).run()
            out[alpha] = flicker_ratio([f.astype(np.float32) for f in clip], sink.images)
        return out

    noisy = ratios(_noisy_static_clip(agc=0.0, noise=6.0))
    assert noisy[0.85] < 0.92 * noisy[0.0], noisy
    agc = ratios(_noisy_static_clip())
    assert agc[0.85] < 0.5 and agc[0.0] < 1.0, agc


class _FakeCap:
    def __init__(self, frames: int) -> None:
        self.left = frames

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, frame_content(0)

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        pass


def test_rtsp_reconnects_with_bounded_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from lle.io import sources

    opens = iter([_FakeCap(3), None, _FakeCap(2)])  # open, stream drops, reopen fails once, succeeds, drops again

    def fake_open(self: sources.CaptureSource, target: object, api: int = 0) -> _FakeCap:
        cap = next(opens, None)
        if cap is None:
            raise InputError("cannot open stream")
        return cap

    sleeps: list[float] = []
    monkeypatch.setattr(sources.CaptureSource, "_open", fake_open)
    src = sources.CaptureSource("rtsp://cam/stream", retries=3, backoff=0.5, sleep=sleeps.append)
    assert src.live and src.reconnect
    assert len(list(src)) == 5
    assert src.reconnects == 1
    assert sleeps == [0.5, 1.0, 0.5, 1.0, 2.0]  # bounded: gives up after 3 attempts


# Temporal smoothing does what it says: the alphas reaching the backend, the reset at a cut, the result after it.


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
        res = StreamRunner(be, _ListSource(clip), [sink], smoothing=0.8).run()
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
        StreamRunner(be, _ListSource(_clip()), [_Keep()], smoothing=0.0).run()
    assert seen == [0.0] * 9
