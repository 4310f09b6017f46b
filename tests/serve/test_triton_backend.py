"""The triton client backend without a server: URLs, the missing extra, config parsing, CLI errors."""

from __future__ import annotations

import sys

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
])
def test_cli_run_url_checks(args: list[str], match: str, tmp_path) -> None:
    from lle.cli.app import app

    res = CliRunner().invoke(app, ["run", "cam", "--source", str(tmp_path), *args])
    assert res.exit_code == 1 and match in res.output and "Traceback" not in res.output


@pytest.mark.parametrize(("args", "match"), [
    (["--backend", "onnxruntime"], "lle bench serves only --backend triton"),
    (["--backend", "triton", "--model", "cam"], "needs --url and --model"),
    (["--backend", "triton", "--model", "cam", "--url", "h:1", "--concurrency", "1,x"], "--concurrency '1,x'"),
])
def test_cli_bench_triton_checks(args: list[str], match: str) -> None:
    from lle.cli.app import app

    res = CliRunner().invoke(app, ["bench", *args])
    assert res.exit_code == 1 and match in res.output and "Traceback" not in res.output
