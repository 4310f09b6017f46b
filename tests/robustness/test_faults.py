"""Fault injection in ``lle run``: a stalling source, a source that fails mid-stream, SIGTERM/SIGINT mid-run and a
sink whose disk fills. The output is always a playable file of the frames done, the exit code says what happened,
and nothing hangs (every test has a hard time limit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lle.errors import InputError
from lle.io.sources import Frame, Source
from tests.robustness.files import dark_u8, tiny_video

av = pytest.importorskip("av")


def _frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


class _FaultySource(Source):
    """A live-like source: ``good`` frames, then a stall (until released) or an exception."""

    description = "test camera"
    live = False
    fps = 10.0

    def __init__(self, good: int, fault: str) -> None:
        self.good, self.fault, self.release = good, fault, threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.good):
            yield Frame(i, dark_u8(24, 32, seed=i), f"f{i}.png", time.perf_counter())
        if self.fault == "stall":
            self.release.wait(60)
            return
        raise RuntimeError("camera unplugged")


def _run_faulty(tmp_path: Path, weights: Path, fault: str, suffix: str = ".mp4") -> tuple[InputError, Path, float]:
    from lle.backends.torch_backend import TorchBackend
    from lle.io.av_video import AvVideoSink
    from lle.streaming.runner import StreamRunner

    src = _FaultySource(6, fault)
    out = tmp_path / f"out{suffix}"
    t0 = time.monotonic()
    try:
        with TorchBackend(weights) as be:
            runner = StreamRunner(be, src, [AvVideoSink(out, 10)], stall_timeout=1.0)
            with pytest.raises(InputError) as e:
                runner.run()
    finally:
        src.release.set()
    return e.value, out, time.monotonic() - t0


@pytest.mark.timeout(60)
def test_a_stalled_source_stops_with_an_error_and_keeps_the_frames(tmp_path: Path, tiny_weights) -> None:
    err, out, seconds = _run_faulty(tmp_path, tiny_weights["realtime"], "stall")
    assert "test camera stalled: no frame for 1 s after 6 frame(s)" in str(err)
    assert "6 frame(s) before it were written" in str(err) and "--stall-timeout" in (err.hint or "")
    assert seconds < 20
    assert _frames(out) == 6
    assert not list(tmp_path.glob(".*part*"))


@pytest.mark.timeout(60)
def test_a_source_failing_mid_stream_keeps_the_frames(tmp_path: Path, tiny_weights) -> None:
    err, out, _ = _run_faulty(tmp_path, tiny_weights["realtime"], "error")
    assert "test camera failed after 6 frame(s): RuntimeError: camera unplugged" in str(err)
    assert _frames(out) == 6


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Big enough frames that an idle machine cannot finish the clip in the moment between "under way" and the signal.
    return tiny_video(tmp_path_factory.mktemp("long") / "long.mp4", n=1500, size=(192, 144), fps=25.0)


def _lle(args: list[str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "lle.cli.app", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_run_finalises_a_playable_video(
    tmp_path: Path, tiny_weights, long_clip: Path, sig: int, code: int
) -> None:
    out = tmp_path / "out.mp4"
    p = _lle(["run", str(tiny_weights["realtime"]), "--source", str(long_clip), "-o", str(out)])
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".*part*")) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)  # the output has been opened: the run is under way
    time.sleep(0.1)
    assert p.poll() is None, "the run ended before the signal could be sent"
    p.send_signal(sig)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr
    n = _frames(out)
    assert 0 < n < 1500
    assert not list(tmp_path.glob(".*part*"))


_FSIZE = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    from lle.cli.app import main
    main({args!r})
""")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_sink_whose_disk_fills(tmp_path: Path, tiny_weights, suffix: str) -> None:
    clip = tmp_path / "noisy.mkv"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = 96, 64, "yuv420p", {"preset": "ultrafast"}
        rng = np.random.default_rng(0)
        for i in range(120):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), np.uint8), format="bgr24")
            f.pts = i
            for pk in s.encode(f):
                c.mux(pk)
        for pk in s.encode(None):
            c.mux(pk)
    out = tmp_path / f"out{suffix}"
    args = ["run", str(tiny_weights["realtime"]), "--source", str(clip), "-o", str(out)]
    r = subprocess.run([sys.executable, "-c", _FSIZE.format(limit=60_000, args=args)], capture_output=True,
                       text=True, timeout=100, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})  # fmt: skip
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(out) in errors[0] and "File too large" in errors[0], r.stderr
    assert not list(tmp_path.glob(".*part*"))
    if suffix == ".mkv":  # Matroska plays without its index: the frames before the disk filled are kept
        assert 0 < _frames(out) < 120
    elif out.exists():
        assert _frames(out) > 0


def test_a_muxer_error_that_hides_a_full_disk_is_named(tmp_path: Path, monkeypatch) -> None:
    """MP4's muxer can report EINVAL where the write really failed on the file-size limit or a full disk."""
    import errno
    import resource

    from lle.io import av_video

    part = tmp_path / ".out.part.mp4"
    part.write_bytes(b"\0" * 60_000)
    monkeypatch.setattr(resource, "getrlimit", lambda _r: (60_000, 60_000))
    assert av_video._disk_limit_reached(part) == errno.EFBIG
    monkeypatch.setattr(resource, "getrlimit", lambda _r: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert av_video._disk_limit_reached(part) is None  # an ordinary EINVAL stays EINVAL
    full = os.statvfs_result((4096, 4096, 10, 10, 2, 10, 10, 10, 0, 255))  # 2 blocks of 4 KiB free
    monkeypatch.setattr(av_video.os, "statvfs", lambda _p: full)
    assert av_video._disk_limit_reached(part) == errno.ENOSPC
    assert av_video._disk_limit_reached(tmp_path / "missing.mp4") is None
