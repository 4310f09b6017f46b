"""``lle serve`` and its launcher (:class:`lle.serve.server.TritonServer`): bad repositories, a missing server, a
server that dies or never gets ready, clean stops without orphans (against a fake ``tritonserver``), and one real
run of the bundled server answering an inference, then stopped by SIGTERM."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lle.cli.app import app
from lle.errors import BackendError, MissingDependencyError
from lle.serve.server import SERVER_ENV_VAR, TritonServer, find_tritonserver, free_ports


def _alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _members(ident: int, field: int = 2) -> list[int]:
    """Live processes whose /proc stat ``field`` (after the name: 1 = parent, 2 = process group) is ``ident``."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split() if d.name.isdigit() else []
        except OSError:
            continue
        if fields and fields[0] != "Z" and int(fields[field]) == ident:
            out.append(int(d.name))
    return out


def _group(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    return _members(pgid, 2)


@pytest.fixture
def serve():
    """Starts ``lle serve ARGS...``; at teardown, whatever the test's outcome, a still-running ``lle serve`` gets
    SIGTERM (it stops its server) and the process groups of the servers it started get SIGKILL, so a failing test
    leaves no server behind."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # lle serve must flush by itself
        proc = subprocess.Popen([sys.executable, "-m", "lle.cli.app", "serve", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)  # fmt: skip
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is not None:
            continue
        servers = _members(proc.pid, 1)  # its children: each server leads its own process group
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        for pgid in servers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def _read_until_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    """stdout of ``lle serve`` up to its ``client:`` line (the end of the ready report)."""
    assert proc.stdout is not None
    fd, out, deadline = proc.stdout.fileno(), b"", time.monotonic() + timeout
    while b"client:" not in out:
        left = deadline - time.monotonic()
        chunk = os.read(fd, 65536) if left > 0 and select.select([fd], [], [], min(left, 0.5))[0] else None
        if chunk == b"" or left <= 0:  # lle serve exited, or the time is up
            proc.terminate()  # not SIGKILL: lle serve stops the server it started on SIGTERM
            try:
                err = proc.communicate(timeout=30)[1]
            except subprocess.TimeoutExpired:
                proc.kill()
                err = proc.communicate()[1]
            pytest.fail(f"lle serve not ready (code {proc.returncode}):\n{out.decode()}\n{err}")
        out += chunk or b""
    return out.decode()


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, within: float = 20.0) -> tuple[int, float, str]:
    """(exit code, seconds to exit, stderr) after sending ``sig`` to ``lle serve``."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=within)
    return proc.returncode, time.monotonic() - t0, err


# --- without a server -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "match"), [
    (lambda tmp: tmp / "nosuch", "model repository not found"),
    (lambda tmp: tmp, "no models in"),
    (lambda tmp: tmp / "repo" / "fake_model", "is a model folder, not a model repository"),
])  # fmt: skip
def test_bad_repository_is_one_line(make, match: str, model_repo: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["serve", str(make(tmp_path))])
    assert res.exit_code == 1 and match in res.output and "Traceback" not in res.output


def test_missing_server_names_the_extra(model_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytriton", None)  # not importable: find_spec() gives None
    monkeypatch.delenv(SERVER_ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="no tritonserver"):
        find_tritonserver()
    res = CliRunner().invoke(app, ["serve", str(model_repo)])
    assert res.exit_code == 1 and "no tritonserver" in res.output and "pip install 'lle[triton]'" in res.output
    res = CliRunner().invoke(app, ["serve", str(model_repo), "--tritonserver", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "tritonserver not found" in res.output


def test_port_in_use_is_refused(model_repo: Path, fake_tritonserver: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = CliRunner().invoke(app, ["serve", str(model_repo), "--tritonserver", str(fake_tritonserver),
                                       "--http-port", str(port)])  # fmt: skip
    assert res.exit_code == 1 and f"cannot listen on 127.0.0.1:{port} for HTTP" in res.output


def test_server_that_dies_reports_its_errors(model_repo: Path, fake_tritonserver: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("FAKE_TRITON", "die")
    monkeypatch.chdir(fake_tritonserver.parent)  # a relative --tritonserver (the server runs in another folder)
    res = CliRunner().invoke(app, ["serve", str(model_repo), "--tritonserver", "./tritonserver"])
    assert res.exit_code == 1, res.output
    first = res.output.splitlines()[0]  # the error, one line: the server's last errors, CPU-only noise left out
    assert "tritonserver exited with code 1 before it was ready: failed to load 'm' version 1: boom |" in first
    assert first.endswith("error: creating server: Internal - failed to load all models")
    assert "CudaDriverHelper" not in first and "At:" not in first
    kept = Path(re.search(r"the whole server log: (\S+)", res.output)[1])  # type: ignore[index]
    assert "fake tritonserver starting" in kept.read_text()
    kept.unlink()


def test_server_never_ready_times_out_and_is_stopped(model_repo: Path, fake_tritonserver: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("FAKE_TRITON", "hang")
    log = tmp_path / "server.log"
    server = TritonServer(model_repo, binary=fake_tritonserver, timeout=1.5, log_path=log)
    with pytest.raises(BackendError, match=r"was not ready after 1.5 s: .*stub pid"), server:
        pass
    stub = int(re.search(r"stub pid (\d+)", log.read_text())[1])  # type: ignore[index]
    assert not _alive(stub) and server.pid is None


def test_stubborn_server_is_killed_after_the_grace_period(
    model_repo: Path, fake_tritonserver: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRITON", "stubborn")
    log = tmp_path / "server.log"
    with TritonServer(model_repo, binary=fake_tritonserver, grace=0.5, log_path=log) as server:
        pid = server.pid
        assert pid is not None and server.models() == ["fake_model"] and server.version() == "0.0-fake"
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5 and not _group(pid)


def test_server_that_dies_while_serving(model_repo: Path, fake_tritonserver: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with TritonServer(model_repo, binary=fake_tritonserver, log_path=log) as server:
        assert server.pid is not None
        pid, stub = server.pid, int(re.search(r"stub pid (\d+)", log.read_text())[1])  # type: ignore[index]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BackendError, match=r"tritonserver was killed by SIGKILL: .*stub pid"):
            server.wait()
    assert not _alive(stub)  # the stub it left behind was killed with its process group


def test_lle_serve_stops_on_sigterm_without_orphans(model_repo: Path, fake_tritonserver: Path, tmp_path: Path,
                                                    serve) -> None:  # fmt: skip
    http, grpc = free_ports(2)
    log = tmp_path / "server.log"
    proc = serve(str(model_repo), "--tritonserver", str(fake_tritonserver), "--http-port", str(http),
                  "--grpc-port", str(grpc), "--log", str(log))  # fmt: skip
    out = _read_until_ready(proc, timeout=60)
    assert f"HTTP       http://127.0.0.1:{http}" in out and f"gRPC       grpc://127.0.0.1:{grpc}" in out
    assert "models     fake_model" in out and "system:" in out
    pid = int(re.search(r"\(pid (\d+),", out)[1])  # type: ignore[index]
    stub = int(re.search(r"stub pid (\d+)", log.read_text())[1])  # type: ignore[index]
    assert _alive(pid) and _alive(stub)
    code, seconds, err = _stop(proc)
    assert code == 0 and "stopped by SIGTERM" in err, err
    assert not _alive(pid) and not _alive(stub) and not _group(pid)


# --- the real bundled server ------------------------------------------------------------------------------------


@pytest.mark.triton
@pytest.mark.slow
def test_lle_serve_real_server(serve_onnx: dict[str, Path], bundled_triton: None, tmp_path: Path, serve) -> None:
    from lle.backends.registry import load_backend
    from lle.backends.triton_backend import TritonBackend
    from lle.serve.repository import TritonConfig, write_model

    repo = tmp_path / "repo"
    write_model([serve_onnx["quality"]], repo, TritonConfig(threads=1))
    proc = serve(str(repo), "--timeout", "120")
    out = _read_until_ready(proc, timeout=150)
    assert "models     quality_python" in out and "bundled in nvidia-pytriton" in out
    pid = int(re.search(r"\(pid (\d+),", out)[1])  # type: ignore[index]
    url = re.search(r"HTTP +http://(\S+)", out)[1]  # type: ignore[index]
    x = np.random.default_rng(3).random((1, 3, 32, 48), dtype=np.float32)
    with TritonBackend("quality_python", url=url) as remote, load_backend("onnxruntime", serve_onnx["quality"]) as lo:
        np.testing.assert_allclose(remote.infer(x), lo.infer(x), atol=1e-6)
    assert len(_group(pid)) >= 2  # the server and its Python backend stub
    code, seconds, err = _stop(proc)
    assert code == 0 and "stopped by SIGTERM" in err, err
    assert seconds < 15, f"lle serve took {seconds:.1f} s to stop"
    assert not _alive(pid) and not _group(pid)
