"""I420 video graphs (``--io i420``): the realtime curve on the decoder's planes, every runtime, and ``lle run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lle.export.config import ExportConfig

cv2 = pytest.importorskip("cv2")


def _bgr(h: int, w: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    return (255.0 * g.random((h, w, 3)) ** 2).astype(np.uint8)


def _i420(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2YUV_I420)


def _random_model(seed: int = 0, **kw):
    import torch

    from lle.models.realtime import RealtimeUNet

    torch.manual_seed(seed)
    m = RealtimeUNet(width=4, depth=2, lowres=16, desaturation=0.2, **kw).eval()
    with torch.no_grad():
        for p in (m.head.weight, m.colour.weight):
            p.normal_(0, 0.3)
        m.head.bias[0] = 1.5  # a strong lift: gain about 4.5
    return m


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def _sample_dark() -> np.ndarray:
    img = cv2.imread(str(Path(__file__).resolve().parents[2] / "lle" / "assets" / "sample_dark.jpg"))
    assert img is not None
    return img


def test_bundled_weights_on_i420_match_the_bgr_graph() -> None:
    """The shipped realtime weights give nearly the BGR frame graph's picture (chroma at 4:2:0, as encoded)."""
    import torch

    from lle.models.checkpoint import load_model
    from lle.models.frames import RealtimeFrameGraph, RealtimeI420Graph
    from lle.presets import bundled_weights

    model, _ = load_model(bundled_weights("realtime"))
    bgr = _sample_dark()
    with torch.no_grad():
        ref = RealtimeFrameGraph(model)(torch.from_numpy(bgr)[None])[0][0].numpy()
        out = RealtimeI420Graph(model)(torch.from_numpy(_i420(bgr))[None])[0][0].numpy()
    got = cv2.cvtColor(out, cv2.COLOR_YUV2BGR_I420)
    assert got.shape == bgr.shape
    assert _psnr(got, ref) > 33.0  # 36.4 dB when written; 4:2:0 of the reference alone gives 39.3
    assert abs(float(got.mean()) - float(ref.mean())) < 2.0
    assert got.mean() > bgr.mean() + 20  # it does lift the dark sample


@pytest.mark.parametrize("highlight", [0.0, 0.85])
def test_luma_is_monotonic_in_each_pixels_own_input_for_fixed_coefficients(highlight: float) -> None:
    """One pixel's Y ramps 16..235 with its neighbours, the base and the coefficients fixed: its output never falls."""
    import torch

    from lle.models.frames import RealtimeI420Graph

    for seed in range(3):
        g = RealtimeI420Graph(_random_model(seed, highlight=highlight))
        grey = np.full((24, 32, 3), 40, np.uint8) + (np.random.default_rng(seed).random((24, 32, 1)) * 30).astype(
            np.uint8)  # grey: no channel clipped by the YUV -> RGB conversion
        frame = torch.from_numpy(_i420(grey))[None]
        y, u, v = g.planes(frame)
        with torch.no_grad():
            terms = g.chroma(u, v)
            p, s = g.analyse(y, terms)
            c = g.model.predict(p, s)
            for yy, xx in ((5, 7), (12, 16), (23, 31)):
                outs = []
                for val in range(16, 236, 3):
                    ys = y.clone()
                    ys[0, 0, yy, xx] = val
                    outs.append(int(g.render(ys, terms, p, c)[0, yy, xx]))
                assert all(b >= a - 1 for a, b in zip(outs, outs[1:], strict=False)), (seed, yy, xx, outs)
                assert outs[-1] > outs[0]


def test_never_darker_and_bright_lights_kept() -> None:
    """Every output luma is >= the input's; street-lamp-like spots (near white) stay near white."""
    import torch

    from lle.models.frames import RealtimeI420Graph

    bgr = (np.full((48, 64, 3), 12, np.uint8))
    for y0, x0 in ((8, 8), (30, 40), (20, 20)):
        cv2.circle(bgr, (x0, y0), 3, (200, 235, 255), -1)
    frame = torch.from_numpy(_i420(bgr))[None]
    for seed in range(3):
        g = RealtimeI420Graph(_random_model(seed, highlight=0.85))
        with torch.no_grad():
            out = g(frame)[0][0]
        y_in, y_out = frame[0, :48].int(), out[:48].int()
        assert bool((y_out >= y_in).all())
        lamps = y_in > 180
        assert bool((y_out[lamps] >= y_in[lamps]).all()) and int(y_out[lamps].max()) <= 235


def test_flat_frame_has_no_border_band() -> None:
    import torch

    from lle.models.frames import RealtimeI420Graph

    frame = torch.from_numpy(_i420(np.full((60, 80, 3), 30, np.uint8)))[None]
    with torch.no_grad():
        out = RealtimeI420Graph(_random_model(1))(frame)[0][0].int()
    y = out[:60]
    assert int(y.max() - y.min()) <= 1
    assert int(out[60:].max() - out[60:].min()) <= 1


def test_frame_graph_refuses_i420_for_the_quality_preset() -> None:
    from lle.models.frames import frame_graph
    from lle.models.unet import QualityUNet

    with pytest.raises(ValueError, match="realtime preset"):
        frame_graph(QualityUNet(width=4, depth=2), "i420")


@pytest.fixture(scope="module")
def i420_onnx(tiny_weights, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    from lle.export.onnx_export import to_onnx

    return to_onnx(tiny_weights["realtime"], tmp_path_factory.mktemp("i420"), ExportConfig(parity_hw=((32, 48),),
                                                                                            io="i420"), None)


def test_i420_onnx_and_openvino_match_torch_within_one_level(i420_onnx, tiny_weights, tmp_path) -> None:
    from lle.backends.base import I420_IO
    from lle.backends.registry import load_backend
    from lle.export.manifest import read_manifest
    from lle.export.onnx_export import read_onnx_metadata

    m = read_manifest(i420_onnx)
    assert m["graph_io"] == "i420" and m["parity"]["passed"]
    assert read_onnx_metadata(i420_onnx)["lle.io"] == I420_IO
    backends = [("onnxruntime", i420_onnx)]
    if __import__("importlib").util.find_spec("openvino") is not None:
        from lle.export.openvino_ir import to_ov

        backends.append(("openvino", to_ov(i420_onnx, tmp_path, ExportConfig(format="openvino", io="i420"), None)))
    with load_backend("torch", tiny_weights["realtime"], frames="i420") as ref:
        assert ref.input_spec.i420 and ref.stateful
        for name, path in backends:
            with load_backend(name, path) as be:
                spec = be.input_spec
                assert spec.i420 and spec.layout == "I420" and spec.channels == "YUV" and be.stateful
                for h, w in ((2, 2), (2, 6), (38, 54), (64, 96)):
                    x = _i420(_bgr(h, w, h))[None]
                    st = be.zero_state(1)
                    (y, s), (yr, sr) = be.infer_stateful(x, st, 0.0), ref.infer_stateful(x, st, 0.0)
                    assert y.shape == x.shape and y.dtype == np.uint8
                    assert np.abs(y.astype(int) - yr.astype(int)).max() <= 1, (name, h, w)
                    np.testing.assert_allclose(s, sr, atol=1e-3)
                    y2, _ = be.infer_stateful(x, s, 0.5)
                    y2r, _ = ref.infer_stateful(x, sr, 0.5)
                    assert np.abs(y2.astype(int) - y2r.astype(int)).max() <= 1


def test_i420_onnx_has_no_resize_or_pad_at_full_resolution(i420_onnx) -> None:
    """Full-resolution work is element-wise on views of Y: no Resize/Pad, and only uint8 planes are split/joined.

    Every Resize, Pad, Slice, Split, Concat and Transpose output is made a graph output and measured at 256 x 384
    (larger than the U-Net's own tensors). Resize may repeat a chroma-resolution map along W only (half the pixels).
    """
    import onnx
    import onnxruntime as ort

    m = onnx.shape_inference.infer_shapes(onnx.load(str(i420_onnx)))
    types = {v.name: v.type.tensor_type.elem_type for v in m.graph.value_info}
    watched = [n for n in m.graph.node if n.op_type in ("Resize", "Pad", "Slice", "Split", "Concat", "Transpose")]
    assert any(n.op_type == "Resize" for n in watched) and any(n.op_type == "Pad" for n in watched)
    names = {o for n in watched for o in n.output if o in types} - {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.helper.make_tensor_value_info(o, types[o], None) for o in sorted(names))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    h, w = 256, 384
    feeds = {"input": _i420(_bgr(h, w))[None], "state": np.zeros([d if isinstance(d, int) else 1 for d in
                                                                 sess.get_inputs()[1].shape], np.float32),
             "alpha": np.zeros(1, np.float32)}
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    full = []  # outputs with half the pixels of a frame or more per plane (chroma resolution has a quarter)
    for n in watched:
        for o in n.output:
            px = int(np.prod(got[o].shape[-2:] if got[o].ndim > 2 else got[o].shape[-1:])) if o in got else 0
            if px >= h * w // 2:
                full.append((n.op_type, got[o].dtype.name, got[o].shape))
    assert not [f for f in full if f[0] in ("Pad", "Transpose")], full
    assert all(f[2][-2:] == (h // 2, w) for f in full if f[0] == "Resize"), full  # along W only, at H/2 rows
    assert all(f[1] == "uint8" for f in full if f[0] != "Resize"), full  # the frame's planes, split and joined
    assert sum(f[0] == "Concat" for f in full) == 1, full


def test_backend_names_an_input_that_is_not_i420(i420_onnx) -> None:
    from lle.backends.registry import load_backend
    from lle.errors import BackendError

    with load_backend("onnxruntime", i420_onnx) as be:
        with pytest.raises(BackendError, match="not an I420 frame") as err:
            be.infer(np.zeros((1, 10, 7), np.uint8))
        assert "even size" in (err.value.hint or "")
        with pytest.raises(BackendError, match="expected"):
            be.infer(np.zeros((1, 4, 4, 3), np.uint8))


def test_io_i420_is_refused_where_it_cannot_work(tiny_weights, tmp_path) -> None:
    from lle.errors import ConfigError, ExportError
    from lle.export.onnx_export import to_onnx

    with pytest.raises(ConfigError, match="--io i420 is for ONNX/OpenVINO"):
        ExportConfig(format="tensorrt", precision="fp16", io="i420")
    with pytest.raises(ExportError, match="realtime preset"):
        to_onnx(tiny_weights["quality"], tmp_path, ExportConfig(io="i420"), None)


def test_triton_repository_refuses_an_i420_artifact(i420_onnx) -> None:
    from lle.errors import InputError
    from lle.serve.repository import artifact_io

    with pytest.raises(InputError, match="I420") as err:
        artifact_io(i420_onnx)
    assert "--io uint8" in (err.value.hint or "")


def _clip(path: Path, n: int = 12, size: tuple[int, int] = (64, 48), audio: bool = True) -> Path:
    av = pytest.importorskip("av")
    w, h = size
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=24)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    a = c.add_stream("aac", rate=48000) if audio else None
    for i in range(n):
        img = np.full((h, w, 3), 10 + 5 * i, np.uint8)
        img[:, : w // 4] = (20, 40, 200)  # a saturated colour
        f = av.VideoFrame.from_ndarray(img, format="bgr24")
        f.pts = i
        for p in s.encode(f):
            c.mux(p)
    if a is not None:
        for j in range(n // 2):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, j * 1024
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    for p in s.encode(None):
        c.mux(p)
    c.close()
    return path


def test_lle_run_decodes_to_i420_and_keeps_frames_order_rate_and_audio(i420_onnx, tmp_path) -> None:
    av = pytest.importorskip("av")
    from lle.io.av_video import AvVideoSource
    from lle.streaming.session import run_stream

    clip = _clip(tmp_path / "in.mp4")
    with AvVideoSource(clip) as src:
        assert src.want_i420()
        frames = list(src)
    assert frames[0].image.shape == (72, 64) and frames[0].image.dtype == np.uint8
    out = tmp_path / "out.mp4"
    res = run_stream(i420_onnx, str(clip), out, backend="onnxruntime", smoothing=0.0)
    assert res.frames == 12 and out.is_file()
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.video[0].average_rate == 24
        got = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(got) == 12
    means = [float(g.mean()) for g in got]
    assert means == sorted(means)  # the input brightens frame by frame: order kept


def test_lle_run_of_bgr_sources_through_an_i420_graph(i420_onnx, tmp_path) -> None:
    """Odd-sized images (BGR, padded to even and cropped back), side-by-side output and PNG folders all work."""
    from lle.streaming.session import run_stream

    src = tmp_path / "imgs"
    src.mkdir()
    for i, (h, w) in enumerate(((37, 53), (20, 30))):
        cv2.imwrite(str(src / f"im{i}.png"), _bgr(h, w, i) // 4)
    out = tmp_path / "out"
    assert run_stream(i420_onnx, str(src), out, backend="onnxruntime").frames == 2
    a, b = cv2.imread(str(out / "im0.png")), cv2.imread(str(out / "im1.png"))
    assert a.shape == (37, 53, 3) and b.shape == (20, 30, 3)
    clip = _clip(tmp_path / "in.mp4", audio=False)
    cmp = tmp_path / "cmp"
    assert run_stream(i420_onnx, str(clip), cmp, backend="onnxruntime", compare=True).frames == 12
    first = sorted(cmp.iterdir())[0]
    assert cv2.imread(str(first)).shape == (48, 128, 3)


def test_only_limited_range_8bit_420_video_is_decoded_to_i420(tmp_path) -> None:
    """Full-range (yuvj420p) and 10-bit clips stay BGR: FFmpeg converts those, the graph assumes BT.601 limited."""
    av = pytest.importorskip("av")
    from lle.io.av_video import AvVideoSource

    def clip(name: str, codec: str, pix_fmt: str) -> Path:
        path = tmp_path / name
        with av.open(str(path), "w") as c:
            s = c.add_stream(codec, rate=10)
            s.width, s.height, s.pix_fmt = 32, 16, pix_fmt
            for i in range(2):
                f = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 200, np.uint8), format="bgr24")
                f.pts = i
                for p in s.encode(f):
                    c.mux(p)
            for p in s.encode(None):
                c.mux(p)
        return path

    for name, codec, fmt, want in (("a.mkv", "libx264", "yuv420p", True), ("b.mkv", "mjpeg", "yuvj420p", False),
                                   ("c.mkv", "libx264", "yuv420p10le", False)):
        with AvVideoSource(clip(name, codec, fmt)) as src:
            assert src.want_i420() is want, name
            img = next(iter(src)).image
            assert img.shape == ((24, 32) if want else (16, 32, 3)), name
