"""Against a real tritonserver (the one bundled in nvidia-pytriton) on 127.0.0.1, Python-backend models running lle's
onnxruntime backend: HTTP and gRPC outputs match the local backend, and the realtime video model keeps its state per
sequence id. The server runs in the environment named by $LLE_TRITON_PYTHON (default: this one); .ci/run builds one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lle.backends.registry import load_backend
from lle.backends.triton_backend import TritonBackend
from lle.serve.server import TritonServer

pytestmark = pytest.mark.triton
pytest.importorskip("tritonclient.http")
pytest.importorskip("tritonclient.grpc")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def server(serve_onnx: dict[str, Path], bundled_triton: None,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:  # fmt: skip
    from lle.serve.repository import TritonConfig, write_model

    repo = tmp_path_factory.mktemp("repo")
    for preset in ("realtime", "quality"):
        write_model([serve_onnx[preset]], repo, TritonConfig(threads=1))
    with TritonServer(repo, timeout=120) as srv:
        yield srv


def _frames(n: int, h: int = 36, w: int = 52) -> list[np.ndarray]:
    r = np.random.default_rng(7)
    return [r.integers(0, 40 + 50 * i, (1, h, w, 3), dtype=np.uint8) for i in range(n)]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_outputs_match_the_local_backend(server, serve_onnx: dict[str, Path], protocol: str) -> None:
    url = server.http_url if protocol == "http" else f"grpc://{server.grpc_url}"
    x = np.random.default_rng(1).random((2, 3, 32, 48), dtype=np.float32)
    frame = _frames(1)[0]
    with load_backend("onnxruntime", serve_onnx["quality"]) as local, TritonBackend("quality_python", url=url) as rem:
        assert not rem.stateful and rem.input_spec.size_multiple == local.input_spec.size_multiple
        np.testing.assert_allclose(rem.infer(x), local.infer(x), atol=1e-6)
    with load_backend("onnxruntime", serve_onnx["realtime"]) as local, TritonBackend("realtime_python", url=url) as rem:
        assert rem.stateful and rem.input_spec.frames and rem.input_spec.state_shape == local.input_spec.state_shape
        np.testing.assert_array_equal(rem.infer(frame), local.infer(frame))
        assert rem.describe().extra["server_version"]


def test_sequence_state_is_kept_per_sequence_id(server, serve_onnx: dict[str, Path]) -> None:
    frames = _frames(4)
    other = [f[:, :, ::-1].copy() for f in frames]  # a second camera: different pictures, same size
    alphas = [0.0, 0.85, 0.85, 0.85]
    with load_backend("onnxruntime", serve_onnx["realtime"]) as local:
        want = {}
        for key, clip in (("a", frames), ("b", other)):
            state, outs = local.zero_state(1), []
            for f, a in zip(clip, alphas, strict=True):
                y, state = local.infer_stateful(f, state, a)
                outs.append(y)
            want[key] = outs
        single = local.infer(frames[3])
    a = TritonBackend("realtime_python", url=server.http_url, sequence_id=11)
    b = TritonBackend("realtime_python", url=f"grpc://{server.grpc_url}", sequence_id=12)
    with a, b:
        placeholder = a.zero_state(1)
        for i, alpha in enumerate(alphas):  # interleaved: the server must not mix the two states
            np.testing.assert_array_equal(a.infer_stateful(frames[i], placeholder, alpha)[0], want["a"][i])
            np.testing.assert_array_equal(b.infer_stateful(other[i], placeholder, alpha)[0], want["b"][i])
        assert not np.array_equal(want["a"][3], single)  # smoothing did change the result
        # A scene cut (alpha 0) restarts the sequence: the server's state is reset, giving the single-image result.
        np.testing.assert_array_equal(a.infer_stateful(frames[3], placeholder, 0.0)[0], single)


def _continue_sequence(url: str, sequence_id: int, frame: np.ndarray) -> None:
    """One frame to ``realtime_python`` in sequence ``sequence_id`` without the start flag (tritonclient directly)."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url)
    inputs = [httpclient.InferInput("input", list(frame.shape), "UINT8"), httpclient.InferInput("alpha", [1], "FP32")]
    inputs[0].set_data_from_numpy(frame)
    inputs[1].set_data_from_numpy(np.array([0.85], np.float32))
    try:
        client.infer("realtime_python", inputs, sequence_id=sequence_id, sequence_start=False)
    finally:
        client.close()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_close_ends_the_sequence_on_the_server(server, protocol: str) -> None:
    from tritonclient.utils import InferenceServerException

    frame, seq = _frames(1)[0], 31 if protocol == "http" else 32
    url = server.http_url if protocol == "http" else f"grpc://{server.grpc_url}"
    with TritonBackend("realtime_python", url=url, sequence_id=seq) as b:
        b.infer_stateful(frame, b.zero_state(1), 0.0)
        _continue_sequence(server.http_url, seq, frame)  # the sequence is live: a frame without the start flag is ok
    # close() sent the sequence end: the server has dropped the sequence (not after the 60 s idle timeout).
    with pytest.raises(InferenceServerException, match="START"):
        _continue_sequence(server.http_url, seq, frame)


def test_lle_run_against_the_server(server, serve_onnx: dict[str, Path], tmp_path: Path) -> None:
    from lle.cli.app import app

    src = tmp_path / "in"
    src.mkdir()
    for i, f in enumerate(_frames(3)):
        cv2.imwrite(str(src / f"{i}.png"), f[0])
    runner = CliRunner()
    remote = runner.invoke(app, ["run", "realtime_python", "--backend", "triton", "--url",
                                 f"grpc://{server.grpc_url}", "--source", str(src), "-o", str(tmp_path / "remote")])
    assert remote.exit_code == 0, remote.output
    local = runner.invoke(app, ["run", str(serve_onnx["realtime"]), "--backend", "onnxruntime", "--source", str(src),
                                "-o", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    for i in range(3):
        a, b = (cv2.imread(str(tmp_path / d / f"{i}.png")) for d in ("remote", "local"))
        np.testing.assert_array_equal(a, b)
    missing = runner.invoke(app, ["run", "nosuch", "--backend", "triton", "--url", server.http_url, "--source",
                                  str(src)])
    assert missing.exit_code == 1 and "ready models: quality_python, realtime_python" in missing.output


def test_bench_concurrency_table(server, tmp_path: Path) -> None:
    from lle.bench.triton import bench_triton, write_triton_reports

    report = bench_triton("realtime_python", server.http_url, size=(64, 48), concurrency=(1, 2), seconds=0.3,
                          warmup=1)
    assert [r.concurrency for r in report.rows] == [1, 2]
    assert all(r.requests > 0 and r.errors == 0 and r.p50_ms is not None for r in report.rows)
    md, js = write_triton_reports(report, tmp_path)
    assert "| 2 |" in md.read_text() and js.is_file()


def _shm_files() -> set[str]:
    """This process's lle shared-memory regions in /dev/shm."""
    return {p.name for p in Path("/dev/shm").glob(f"lle_{os.getpid()}_*")}


def _server_regions(server: TritonServer) -> set[str]:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.http_url)
    try:
        return {r["name"] for r in client.get_system_shared_memory_status()}
    finally:
        client.close()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_shared_memory_gives_the_socket_output_and_cleans_up(server, protocol: str) -> None:
    url = server.http_url if protocol == "http" else f"grpc://{server.grpc_url}"
    assert not _shm_files()
    x = np.random.default_rng(3).random((2, 3, 32, 48), dtype=np.float32)
    big = np.random.default_rng(4).random((1, 3, 64, 96), dtype=np.float32)
    frames = _frames(3)
    with TritonBackend("quality_python", url=url, shm=False) as sock, TritonBackend("quality_python", url=url) as mem:
        np.testing.assert_array_equal(mem.infer(x), sock.infer(x))
        assert mem.describe().extra["shm"] and not sock.describe().extra["shm"]  # on by default for 127.0.0.1
        (first,) = _shm_files()
        assert first in _server_regions(server)
        np.testing.assert_array_equal(mem.infer(big), sock.infer(big))  # a bigger frame: a new, bigger region
        (second,) = _shm_files()
        assert second != first and _server_regions(server) & {first, second} == {second}
    assert not _shm_files() and not _server_regions(server) & {first, second}
    with TritonBackend("realtime_python", url=url, shm=False) as sock, TritonBackend("realtime_python", url=url,
                                                                                       shm=True) as mem:  # fmt: skip
        placeholder = sock.zero_state(1)
        for i, alpha in enumerate((0.0, 0.85, 0.85)):
            want = sock.infer_stateful(frames[i], placeholder, alpha)[0]
            np.testing.assert_array_equal(mem.infer_stateful(frames[i], placeholder, alpha)[0], want)
        regions = _shm_files()
        assert len(regions) == 1 and regions <= _server_regions(server)
    # close() ended the sequence through the region, then unregistered and removed it.
    assert not _shm_files() and not _server_regions(server) & regions


def test_bench_against_local_and_shared_memory(server, serve_onnx: dict[str, Path]) -> None:
    from lle.bench.triton import bench_triton, render_triton_markdown

    report = bench_triton("realtime_python", [f"grpc://{server.grpc_url}", server.http_url], size=(64, 48),
                          concurrency=(1, 2), seconds=0.3, warmup=1, shm=(False, True), local=serve_onnx["realtime"])
    transports = ["local onnxruntime (1 thread)", "grpc", "grpc+shm", "http", "http+shm"]
    assert [(r.concurrency, r.transport) for r in report.rows] == [(c, t) for c in (1, 2) for t in transports]
    assert all(r.requests > 0 and r.errors == 0 for r in report.rows), report.rows
    assert report.settings["server_threads"] == 1 and report.settings["instances"] == 1
    assert report.ratio(report.rows[0]) == 1.0 and report.ratio(report.rows[2]) is not None
    md = render_triton_markdown(report)
    assert "| x local |" in md and "| grpc+shm | 2 |" in md
    assert not _shm_files()
