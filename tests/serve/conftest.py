"""Serve fixtures: tiny exported graphs (realtime uint8 video graph, quality float32 graph) with manifests, the
check that a real tritonserver can run here, and a fake ``tritonserver`` for the launcher's own tests."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from lle.export.config import ExportConfig


@pytest.fixture(scope="session")
def serve_onnx(tmp_path_factory: pytest.TempPathFactory, tiny_weights: dict[str, Path]) -> dict[str, Path]:
    """{preset: model.onnx (+ model.onnx.json)}: the realtime preset as its uint8 frame video graph."""
    pytest.importorskip("onnx")
    from lle.export import export_model

    out = {}
    for preset, w in tiny_weights.items():
        folder = tmp_path_factory.mktemp(f"serve-{preset}")
        out[preset] = export_model(w, "onnx", folder, ExportConfig(parity_hw=((32, 48),))).final
    return out


@pytest.fixture(scope="session")
def bundled_triton() -> None:
    """Skip unless the bundled tritonserver and a usable server environment are here ($LLE_TRITON_PYTHON, default
    this one); with $LLE_REQUIRE_TRITON set (CI), fail instead."""
    pytest.importorskip("tritonclient.http")
    pytest.importorskip("onnxruntime")
    from lle.errors import LLEError
    from lle.serve.server import bundled_server_dir, server_env

    try:
        bundled_server_dir()
        server_env()
    except LLEError as err:
        if os.environ.get("LLE_REQUIRE_TRITON"):
            raise
        pytest.skip(f"no usable Triton server here: {err} ({err.hint})")


FAKE_SERVER = '''
import http.server, json, os, signal, subprocess, sys, time

args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1]
mode = os.environ.get("FAKE_TRITON", "ok")
print("I0101 00:00:00.000001 1 fake.cc:1] fake tritonserver starting", flush=True)
if mode == "die":
    print('E0101 00:00:00.000002 1 server.cc:241] "CudaDriverHelper has not been initialized."')
    print('E0101 00:00:00.000003 1 model_lifecycle.cc:642] "failed to load \\'m\\' version 1: boom\\\\n\\\\nAt: ..."')
    print("error: creating server: Internal - failed to load all models", flush=True)
    sys.exit(1)
stubborn = mode == "stubborn"
if stubborn:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
# A stand-in for a Python backend stub: a child in the server's process group.
ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN); " if stubborn else ""
code = f"import signal, time; {ignore}time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", code])
print(f"I0101 00:00:00.000004 1 fake.cc:2] stub pid {child.pid}", flush=True)
if mode == "hang":
    time.sleep(600)


class Handler(http.server.BaseHTTPRequestHandler):
    def _send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({"name": "triton", "version": "0.0-fake"} if self.path == "/v2" else {})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send([{"name": "fake_model", "version": "1", "state": "READY"}])

    def log_message(self, *a):
        pass


http.server.HTTPServer((opt("--http-address"), int(opt("--http-port"))), Handler).serve_forever()
'''


@pytest.fixture(scope="session")
def fake_tritonserver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An executable that behaves like ``tritonserver`` as the launcher sees it: it serves ``/v2/health/ready`` on
    ``--http-port`` and starts one child (a stand-in for a backend stub). ``$FAKE_TRITON``: ``ok`` | ``die`` (exits 1
    with Triton-style error lines) | ``hang`` (never listens) | ``stubborn`` (it and its child ignore SIGTERM)."""
    path = tmp_path_factory.mktemp("fake-triton") / "tritonserver"
    path.write_text(f"#!{sys.executable}\n{FAKE_SERVER}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    """A repository the launcher accepts (one ``<model>/config.pbtxt``; a fake server never reads it)."""
    (tmp_path / "repo" / "fake_model").mkdir(parents=True)
    (tmp_path / "repo" / "fake_model" / "config.pbtxt").write_text('name: "fake_model"\n')
    return tmp_path / "repo"
