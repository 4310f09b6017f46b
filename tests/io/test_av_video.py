"""Video files through PyAV: H.264 out, audio copied, frame count/order/rate kept, corrupt packets skipped."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")


def make_clip(
    path: Path, n: int = 24, size: tuple[int, int] = (96, 64), rate: int = 25, audio: bool = True, noise: int = 0
) -> Path:
    """Frame i is grey at level 10 + 8 i (so order is visible after enhancement), plus ``noise``; a 440 Hz tone."""
    g = np.random.default_rng(0)
    w, h = size
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=rate)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    a = None
    if audio:
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
    for i in range(n):
        img = np.full((h, w, 3), (10 + 8 * i) % 256, np.int16) + g.integers(0, noise + 1, (h, w, 3))
        f = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="bgr24")
        f.pts = i
        for p in v.encode(f):
            c.mux(p)
    if a is not None:
        t = 0
        while t < n * 16000 // rate:
            s = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(1024) + t) / 16000)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(s, format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, t
            t += 1024
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    c.close()
    return path


def _probe(path: Path) -> tuple[list[float], Fraction, int]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        rate = v.average_rate
        means = [float(f.to_ndarray(format="bgr24").mean()) for f in c.decode(v)]
    with av.open(str(path)) as c:
        audio_packets = sum(1 for p in c.demux(*c.streams.audio) if p.dts is not None) if c.streams.audio else 0
    return means, rate, audio_packets


@pytest.fixture(scope="module")
def rt_model(tiny_weights) -> Path:
    return tiny_weights["realtime"]


def test_audio_frames_order_and_rate_survive_lle_run(tmp_path, rt_model) -> None:
    from lle.streaming import run_stream

    clip = make_clip(tmp_path / "in clip é.mp4")
    out = tmp_path / "out.mp4"
    res = run_stream(rt_model, str(clip), out)
    means, rate, audio = _probe(out)
    src_means, src_rate, src_audio = _probe(clip)
    assert res.frames == len(means) == len(src_means) == 24
    assert rate == src_rate == 25
    assert audio == src_audio > 0
    assert all(b > a for a, b in zip(means, means[1:], strict=False))  # order kept (the curve is monotonic)
    assert not list(tmp_path.glob(".*part*"))


def test_corrupt_middle_section_keeps_the_good_frames(tmp_path) -> None:
    from lle.io.av_video import AvVideoSource

    clip = make_clip(tmp_path / "c.mkv", n=30, size=(160, 128), audio=False, noise=60)
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 20000] = bytes(20000)  # zero a chunk of the middle of the stream
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    with AvVideoSource(bad) as src:
        frames = list(src)
    assert 0 < len(frames) < 30  # frames before the damage are kept, no exception
    assert [f.index for f in frames] == list(range(len(frames)))


def test_odd_frame_size_round_trips(tmp_path) -> None:
    from lle.io.av_video import AvVideoSink
    from lle.io.sources import Frame

    out = tmp_path / "odd.mkv"
    sink = AvVideoSink(out, Fraction(30000, 1001))
    for i in range(5):
        sink.write(Frame(i, np.zeros((33, 51, 3), np.uint8), ""), np.full((33, 51, 3), 40 * i, np.uint8))
    sink.close()
    means, rate, _ = _probe(out)
    assert len(means) == 5 and rate == Fraction(30000, 1001)
    assert np.allclose(means, [40 * i for i in range(5)], atol=3)


def test_unwritable_suffix_is_a_clear_error(tmp_path) -> None:
    from lle.errors import InputError
    from lle.io.av_video import AvVideoSink

    with pytest.raises(InputError, match="cannot write .avi video"):
        AvVideoSink(tmp_path / "x.avi", 30)
