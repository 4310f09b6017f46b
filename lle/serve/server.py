"""Start the ``tritonserver`` bundled in the ``nvidia-pytriton`` wheel on 127.0.0.1, for tests, benchmarks and trials.

The wheel ships the server, its Python backend and one backend stub per Python version; it does not ship the
onnxruntime, OpenVINO or TensorRT backends, so only ``backend: "python"`` models load here. Three facts make it run
on a plain CPU machine:

- the stub is copied into a private copy of the backend folder (site-packages is never modified);
- the stub embeds the *system* ``libpython3.X``; ``LD_LIBRARY_PATH`` puts the interpreter's own ``LIBDIR`` first;
- the stub runs in isolated mode (it ignores ``PYTHONPATH``) and finds its ``sys.prefix`` through the first
  ``python3`` on ``PATH``; putting a virtual environment's ``bin`` first makes the Python models run in that
  environment. It needs numpy < 2 (with numpy 2 every response comes back empty), plus lle and the runtime the
  model wraps (onnxruntime or OpenVINO).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from lle.errors import ConfigError, InputError, MissingDependencyError

__all__ = ["SERVER_ENV_VAR", "ServerEnv", "TritonServer", "bundled_server_dir", "free_ports", "server_env"]

log = logging.getLogger(__name__)

SERVER_ENV_VAR = "LLE_TRITON_PYTHON"
"""Environment variable naming the virtual environment the server's Python models run in (default: this one)."""

_SERVER_ENV_FIX = (
    "python3 -m venv ENV && ENV/bin/pip install 'numpy<2' onnxruntime openvino nvidia-pytriton && "
    "ENV/bin/pip install --no-deps "
    f"/path/to/lle, then export {SERVER_ENV_VAR}=ENV"
)


def bundled_server_dir() -> Path:
    """``<site-packages>/pytriton/tritonserver`` (found without importing pytriton).

    Raises:
        MissingDependencyError: nvidia-pytriton is not installed.
    """
    spec = importlib.util.find_spec("pytriton")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    else:  # nvidia-pytriton pins numpy < 2, so it usually lives in the server's own environment
        env = os.environ.get(SERVER_ENV_VAR)
        found = sorted(Path(env).glob("lib/python3*/site-packages/pytriton/tritonserver")) if env else []
        if not found:
            raise MissingDependencyError(
                "nvidia-pytriton (which bundles tritonserver) is not installed here"
                + (f" nor in {SERVER_ENV_VAR}={env}" if env else ""),
                hint=f"install it in the server environment: {_SERVER_ENV_FIX}")
        root = found[-1]
    if not (root / "bin" / "tritonserver").is_file():
        raise MissingDependencyError(f"no tritonserver binary in {root}", hint="reinstall nvidia-pytriton")
    return root


class ServerEnv:
    """The Python environment the server's Python models run in: its ``bin`` folder, version and ``LIBDIR``."""

    def __init__(self, prefix: Path, version: str, libdir: str, numpy: str) -> None:
        self.prefix, self.version, self.libdir, self.numpy = prefix, version, libdir, numpy

    def __repr__(self) -> str:
        return f"ServerEnv({self.prefix}, python {self.version}, numpy {self.numpy})"


def server_env(prefix: Path | None = None) -> ServerEnv:
    """Check the environment the server's Python models will run in.

    ``prefix`` is a virtual environment (or Python installation) folder; default ``$LLE_TRITON_PYTHON``, else the
    running interpreter's ``sys.prefix``.

    Raises:
        ConfigError: no Python there, lle or numpy missing, or numpy >= 2 (the hint says how to make one).
    """
    import sys

    prefix = Path(prefix or os.environ.get(SERVER_ENV_VAR) or sys.prefix)
    python = prefix / "bin" / "python3"
    if not python.is_file():
        raise ConfigError(f"no bin/python3 in the Triton server environment {prefix}", hint=_SERVER_ENV_FIX)
    code = ("import sys, sysconfig, numpy, lle; print(f'{sys.version_info[0]}.{sys.version_info[1]}'); "
            "print(sysconfig.get_config_var('LIBDIR')); print(numpy.__version__)")
    try:
        res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"cannot run {python}: {err}", hint=_SERVER_ENV_FIX) from err
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["failed"])[-1]
        raise ConfigError(f"the Triton server environment {prefix} cannot import numpy and lle: {last}",
                          hint=_SERVER_ENV_FIX)
    version, libdir, numpy = res.stdout.split()[:3]
    if int(numpy.split(".")[0]) >= 2:
        raise ConfigError(
            f"the Triton server environment {prefix} has numpy {numpy}; the bundled Python backend needs numpy < 2 "
            "(with numpy 2 every response comes back empty)", hint=_SERVER_ENV_FIX,
        )  # fmt: skip
    return ServerEnv(prefix, version, libdir, numpy)


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


class TritonServer:
    """``tritonserver`` serving ``repo`` on 127.0.0.1 (HTTP, gRPC and metrics on free ports).

    Use as a context manager; :meth:`stop` always runs, also when start-up fails. ``timeout`` bounds the wait for
    the server to report ready.

    Example (not run here: it starts a server)::

        with TritonServer(Path("repo")) as server:
            print(server.http_url, server.grpc_url)
    """

    def __init__(self, repo: Path, *, env: Path | None = None, timeout: float = 120.0,
                 log_path: Path | None = None) -> None:  # fmt: skip
        self.repo, self.env_prefix, self.timeout, self.log_path = Path(repo), env, timeout, log_path
        self.http_port = self.grpc_port = self.metrics_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Path | None = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _backends(self, root: Path, env: ServerEnv, tmp: Path) -> Path:
        stub = root / "python_backend_stubs" / env.version / "triton_python_backend_stub"
        if not stub.is_file():
            have = sorted(p.name for p in (root / "python_backend_stubs").iterdir())
            raise ConfigError(f"nvidia-pytriton has no Python backend stub for Python {env.version} "
                              f"(has {', '.join(have)})", hint=f"make {SERVER_ENV_VAR} a venv of one of those")
        backends = tmp / "backends"
        shutil.copytree(root / "backends", backends, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(stub, backends / "python" / stub.name)
        return backends

    def start(self) -> TritonServer:
        """Start the server and wait until it and every model in ``repo`` are ready.

        Raises:
            InputError: ``repo`` is not a folder.
            MissingDependencyError / ConfigError: no bundled server, or an unusable server environment.
            RuntimeError: the server exited or was not ready within ``timeout`` (with the end of its log).
        """
        if not self.repo.is_dir():
            raise InputError(f"model repository not found: {self.repo}", hint="write one with lle export --format "
                             "triton -o REPO")
        root = bundled_server_dir()
        env = server_env(self.env_prefix)
        self._tmp = tempfile.TemporaryDirectory(prefix="lle-triton-")
        tmp = Path(self._tmp.name)
        backends = self._backends(root, env, tmp)
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        libs = [env.libdir, str(root.parent.parent / "nvidia_pytriton.libs"), os.environ.get("LD_LIBRARY_PATH", "")]
        proc_env = {**os.environ, "PATH": f"{env.prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                    "LD_LIBRARY_PATH": os.pathsep.join(p for p in libs if p)}
        proc_env.pop("PYTHONPATH", None)
        cmd = [
            str(root / "bin" / "tritonserver"), "--model-repository", str(self.repo.resolve()),
            "--backend-directory", str(backends), "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1",
            "--metrics-address", "127.0.0.1", "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
            "--metrics-port", str(self.metrics_port), "--exit-timeout-secs", "5", "--log-verbose", "0",
        ]  # fmt: skip
        self._log = self.log_path or tmp / "tritonserver.log"
        log.info("starting %s (Python models in %s)", " ".join(cmd), env)
        with open(self._log, "wb") as out:
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=proc_env, cwd=tmp,
                                          start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        url = f"http://{self.http_url}/v2/health/ready"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited with code {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310  (a local http URL)
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"tritonserver not ready after {self.timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log."""
        if self._log is None or not self._log.is_file():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL to its process group after 15 s) and remove its temp folder."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # stubs left behind by a crashed server
        if self._tmp is not None:
            if self.log_path is None and self._log is not None and self._log.is_file():
                log.debug("tritonserver log:\n%s", self.log_tail())
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> TritonServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
