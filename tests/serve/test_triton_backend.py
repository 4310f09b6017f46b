"""The triton client backend without a server: URLs, the missing extra, config parsing, CLI errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from lle.backends.registry import backend_class
from lle.backends.triton_backend import TritonBackend, _spec_from_config, parse_url
from lle.errors import BackendError, ConfigError, MissingDependencyError


@pytest.mark.parametrize(("url", "match"), [
    ("ftp://host:1", "unknown Triton protocol 'ftp'"),
    (":8000", "is not HOST:PORT"),
    ("host:8000/v2", "is not HOST:PORT"),
])
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_url(url)


def test_registered_and_lazy() -> None:
    assert backend_class("triton") is TritonBackend
    b = TritonBackend("cam", url="grpc://10.0.0.2")
    assert (b.protocol, b.url, b.model) == ("grpc", "10.0.0.2:8001", "cam")


def test_missing_tritonclient_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tritonclient.http", None)
    with pytest.raises(MissingDependencyError) as err:
        TritonBackend("cam", url="127.0.0.1:8000").load()
    assert err.value.hint == "pip install 'lle[triton]'"


def test_no_server_is_one_clear_error() -> None:
    pytest.importorskip("tritonclient.http")
    from lle.serve.server import free_ports

    (port,) = free_ports(1)
    with pytest.raises(BackendError, match=f"no server at http://127.0.0.1:{port}"):
        TritonBackend("cam", url=f"127.0.0.1:{port}", timeout=5).load()


def test_spec_from_config() -> None:
    seq = {"input": [{"name": "input", "data_type": "TYPE_UINT8"}, {"name": "alpha", "data_type": "TYPE_FP32"}],
           "output": [{"name": "output"}], "sequence_batching": {"state": [{"dims": ["1", "5", "8", "8"]}]}}
    spec, dtype, sequence = _spec_from_config("rt", seq)
    assert spec.frames and spec.state_shape == (5, 8, 8) and dtype == "UINT8" and sequence
    flat = {"input": [{"name": "input", "data_type": "TYPE_FP32"}], "output": [{"name": "output"}],
            "parameters": {"lle.size_multiple": {"string_value": "16"}}}
    spec, dtype, sequence = _spec_from_config("q", flat)
    assert (spec.layout, spec.size_multiple, spec.state_shape, sequence) == ("NCHW", 16, None, False)
    with pytest.raises(BackendError, match="is not an lle model"):
        _spec_from_config("x", {"input": [{"name": "INPUT0"}], "output": [{"name": "OUTPUT0"}]})
    with pytest.raises(BackendError, match="input 'input' is INT32"):
        _spec_from_config("x", {"input": [{"name": "input", "data_type": "TYPE_INT32"}],
                                "output": [{"name": "output"}]})


@pytest.mark.parametrize(("args", "match"), [
    (["--backend", "triton"], "--backend triton needs the server's address"),
    (["--backend", "onnxruntime", "--url", "127.0.0.1:8000"], "--url is for --backend triton"),
    (["--backend", "triton", "--url", "127.0.0.1:8000", "--threads", "2"],
     "--threads is a local-runtime setting; with --backend triton the server decides its own"),
])
def test_cli_run_url_checks(args: list[str], match: str, tmp_path) -> None:
    from lle.cli.app import app

    res = CliRunner().invoke(app, ["run", "cam", "--source", str(tmp_path), *args])
    assert res.exit_code == 1 and match in res.output and "hint: " in res.output and "Traceback" not in res.output


@pytest.mark.parametrize(("args", "match"), [
    (["--backend", "onnxruntime"], "lle bench serves only --backend triton"),
    (["--backend", "triton", "--model", "cam"], "needs --url and --model"),
    (["--backend", "triton", "--model", "cam", "--url", "h:1", "--concurrency", "1,x"], "--concurrency '1,x'"),
])
def test_cli_bench_triton_checks(args: list[str], match: str) -> None:
    from lle.cli.app import app

    res = CliRunner().invoke(app, ["bench", *args])
    assert res.exit_code == 1 and match in res.output and "Traceback" not in res.output


class _FakeInput:
    def __init__(self, name: str, shape: list[int], dtype: str) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype

    def set_data_from_numpy(self, a: np.ndarray) -> None:
        self.data = a


class _FakeClient:
    """Records every infer() call; the module (InferInput, ...) and the client in one."""

    InferInput = _FakeInput

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict] = []
        self.fail = fail

    @staticmethod
    def InferRequestedOutput(name: str) -> str:  # noqa: N802  (tritonclient's name)
        return name

    def infer(self, model: str, inputs: list[_FakeInput], **kw: object) -> object:
        self.calls.append({"inputs": {i.name: i.data for i in inputs}, **kw})
        if self.fail:
            raise OSError("connection refused")
        frame = inputs[0].data
        return type("Result", (), {"as_numpy": staticmethod(lambda name: frame)})()

    def close(self) -> None:
        pass


def _fake_loaded(client: _FakeClient, **opts: object) -> TritonBackend:
    from lle.backends.base import TensorSpec

    b = TritonBackend("rt", url="127.0.0.1:1", sequence_id=77, **{"shm": False, **opts})
    b._client = b._mod = client
    b._local.client = client
    b._clients = [client]
    b._spec, b._dtype, b._sequence = TensorSpec.for_frames(size_multiple=1, state_shape=(2, 4, 4)), "UINT8", True
    return b


def test_close_ends_the_sequence() -> None:
    client = _FakeClient()
    b = _fake_loaded(client)
    frame = np.full((1, 6, 10, 3), 9, np.uint8)
    for alpha in (0.0, 0.85, 0.85):
        b.infer_stateful(frame, b.zero_state(1), alpha)
    assert [(c["sequence_start"], c["sequence_end"]) for c in client.calls] == [(True, False)] + [(False, False)] * 2
    b.close()
    b.close()  # idempotent: one end request only
    last = client.calls[-1]
    assert len(client.calls) == 4 and last["sequence_id"] == 77
    assert (last["sequence_start"], last["sequence_end"]) == (False, True)
    assert last["inputs"]["input"].shape == frame.shape and last["inputs"]["input"].dtype == np.uint8


def test_close_without_a_stream_or_with_a_dead_server_sends_nothing_or_stays_quiet() -> None:
    idle = _FakeClient()
    _fake_loaded(idle).close()  # no frame sent: no sequence to end
    assert idle.calls == []
    dead = _FakeClient()
    b = _fake_loaded(dead)
    b.infer_stateful(np.zeros((1, 4, 4, 3), np.uint8), b.zero_state(1), 0.0)
    dead.fail = True
    b.close()  # the end request fails: logged, not raised
    assert dead.calls[-1]["sequence_end"] is True and b._client is None


def test_single_images_leave_the_next_frame_starting_a_sequence() -> None:
    client = _FakeClient()
    b = _fake_loaded(client)
    frame = np.zeros((1, 4, 4, 3), np.uint8)
    b.infer_stateful(frame, b.zero_state(1), 0.0)
    b.infer(frame)  # a one-frame sequence (start + end) on the same id ends the stream's sequence on the server
    b.infer_stateful(frame, b.zero_state(1), 0.85)
    assert client.calls[-1]["sequence_start"] is True


def test_shared_memory_is_on_by_default_only_for_loopback_urls() -> None:
    on = ["127.0.0.1:8000", "grpc://localhost:8001", "http://[::1]:8000", "127.0.1.1:9"]
    assert all(TritonBackend("m", url=u)._shm for u in on)
    assert not any(TritonBackend("m", url=u)._shm for u in ["10.0.0.2:8000", "grpc://gpu-box", "0.0.0.0:8000"])
    assert not TritonBackend("m", url="127.0.0.1:8000", shm=False)._shm
    assert TritonBackend("m", url="grpc://gpu-box", shm=True)._shm


class _NoShmClient(_FakeClient):
    """A server that cannot map the client's region (another host, or a container with its own /dev/shm)."""

    def register_system_shared_memory(self, name: str, key: str, byte_size: int, **kw: object) -> None:
        self.calls.append({"register": name})
        raise OSError(f"Unable to open shared memory region: '{key}'")


def _lle_regions() -> list[str]:
    import os
    from pathlib import Path

    return [p.name for p in Path("/dev/shm").glob(f"lle_{os.getpid()}_*")]


def test_auto_shared_memory_falls_back_to_the_socket_once(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("tritonclient.utils.shared_memory")
    client = _NoShmClient()
    b = _fake_loaded(client, shm=None)
    frame = np.full((1, 6, 10, 3), 9, np.uint8)
    with caplog.at_level("WARNING", logger="lle.backends.triton_backend"):
        for alpha in (0.0, 0.85):
            np.testing.assert_array_equal(b.infer_stateful(frame, b.zero_state(1), alpha)[0], frame)
    assert [r.getMessage() for r in caplog.records if "sending tensors over the socket" in r.getMessage()]
    assert len(caplog.records) == 1 and sum("register" in c for c in client.calls) == 1  # tried once, not per frame
    assert not b.describe().extra["shm"] and not _lle_regions()
    b.close()


def test_asked_for_shared_memory_that_fails_is_an_error() -> None:
    pytest.importorskip("tritonclient.utils.shared_memory")
    b = _fake_loaded(_NoShmClient(), shm=True)
    with pytest.raises(BackendError, match="cannot map shared memory /lle_") as err:
        b.infer_stateful(np.zeros((1, 4, 4, 3), np.uint8), b.zero_state(1), 0.0)
    assert "shm=False" in (err.value.hint or "") and not _lle_regions()
