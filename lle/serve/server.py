"""Start ``tritonserver`` on a model repository: the one bundled in the ``nvidia-pytriton`` wheel, or a system one.

:class:`TritonServer` is the one launcher: ``lle serve``, the tests and the benchmarks all start the server through it.

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
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lle.errors import BackendError, ConfigError, InputError, MissingDependencyError
from lle.serve.repository import repository_models

__all__ = [
    "SERVER_ENV_VAR", "ServerBinary", "ServerEnv", "TritonServer", "bundled_server_dir", "find_tritonserver",
    "free_ports", "server_env",
]  # fmt: skip

log = logging.getLogger(__name__)

SERVER_ENV_VAR = "LLE_TRITON_PYTHON"
"""Environment variable naming the virtual environment the server's Python models run in (default: this one)."""

_INSTALL_HINT = (
    f"pip install 'lle[triton]' (bundles tritonserver), or point {SERVER_ENV_VAR} at an environment that has it "
    "(docs/deploy.md), or give a tritonserver binary: lle serve --tritonserver PATH"
)
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


@dataclass(frozen=True, slots=True)
class ServerBinary:
    """A ``tritonserver`` executable; ``bundled`` is its nvidia-pytriton folder (None: a system server)."""

    path: Path
    bundled: Path | None = None


def find_tritonserver(binary: Path | str | None = None) -> ServerBinary:
    """The server to start: ``binary`` if given (a path or a name on ``PATH``), else nvidia-pytriton's, else ``PATH``'s.

    A ``binary`` inside an nvidia-pytriton install is treated as the bundled server (its stubs and libraries are set
    up); any other is started as it is, with its own backends.

    Raises:
        InputError: ``binary`` does not exist or is not executable.
        MissingDependencyError: nothing given, nvidia-pytriton not installed and no ``tritonserver`` on ``PATH``.
    """
    if binary is not None:
        found = (Path(binary) if os.sep in str(binary) else Path(shutil.which(str(binary)) or binary)).absolute()
        if not found.is_file():
            raise InputError(f"tritonserver not found: {binary}", hint="pass the path of the tritonserver binary")
        if not os.access(found, os.X_OK):
            raise InputError(f"{found} is not executable", hint=f"chmod +x {found}")
        root = found.resolve().parent.parent
        return ServerBinary(found, root if (root / "python_backend_stubs").is_dir() else None)
    try:
        root = bundled_server_dir()
    except MissingDependencyError as err:
        system = shutil.which("tritonserver")
        if system is None:
            raise MissingDependencyError(f"no tritonserver: {err} and none is on PATH", hint=_INSTALL_HINT) from err
        return ServerBinary(Path(system))
    return ServerBinary(root / "bin" / "tritonserver", root)


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (the caller closes it)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise ConfigError(f"cannot resolve host {host!r}: {err.strerror}", hint="e.g. 127.0.0.1 or 0.0.0.0") from err
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: a port in TIME_WAIT is free
        sock.bind(addr)
    except BaseException:
        sock.close()
        raise
    return sock


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports free on ``host`` right now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(_bind(host, 0)) for _ in range(n)]
        return [int(s.getsockname()[1]) for s in socks]


def _connect_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host`` (``0.0.0.0`` -> ``127.0.0.1``), bracketed if IPv6."""
    addr = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104  (a bind address)
    return f"[{addr}]" if ":" in addr else addr


_LOG_PREFIX = re.compile(r"^[IWE]\d{4} [\d:.]+ +\d+ [\w./+-]+:\d+\] ")
_LOG_NOISE = re.compile(r"CudaDriverHelper|NVML|DCGM|pinned memory")
"""Error lines every CPU-only start logs."""
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _short(line: str, limit: int = 300) -> str:
    """A server log line without its prefix, quotes, traceback (from an escaped newline on) and excess length."""
    text = _LOG_PREFIX.sub("", line).strip().strip('"').split("\\n")[0].strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TritonServer:
    """``tritonserver`` serving ``repo`` (HTTP, gRPC and metrics on ``host``; port 0 = a free one).

    ``binary``: see :func:`find_tritonserver` (default: the bundled server, else ``tritonserver`` on ``PATH``).
    ``env``: the environment the bundled server's Python models run in (default ``$LLE_TRITON_PYTHON``, else this
    one). ``timeout`` bounds the wait for the server (and every model in ``repo``) to be ready; ``grace`` the wait
    for it to exit after SIGTERM, before SIGKILL. ``log_path`` keeps the server log there (default: a temp file,
    removed at :meth:`stop`; when the server fails, a copy is kept and the error's hint names it).

    Use as a context manager; :meth:`stop` always runs, also when start-up fails or is interrupted.

    Example (not run here: it starts a server)::

        with TritonServer(Path("repo")) as server:
            print(server.http_url, server.grpc_url, server.models())
            server.wait()  # until the server dies (BackendError) or the caller is interrupted
    """

    def __init__(self, repo: Path, *, env: Path | None = None, timeout: float = 120.0, log_path: Path | None = None,
                 host: str = "127.0.0.1", http_port: int = 0, grpc_port: int = 0, metrics_port: int = 0,
                 binary: Path | str | None = None, grace: float = 10.0) -> None:  # fmt: skip
        self.repo, self.env_prefix, self.timeout, self.log_path = Path(repo), env, timeout, log_path
        self.host, self.binary, self.grace = host, binary, grace
        self.http_port, self.grpc_port, self.metrics_port = http_port, grpc_port, metrics_port
        self.server: ServerBinary | None = None
        self.env: ServerEnv | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Path | None = None

    @property
    def http_url(self) -> str:
        """``HOST:PORT`` of the HTTP endpoint, as a client on this machine reaches it."""
        return f"{_connect_host(self.host)}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``HOST:PORT`` of the gRPC endpoint, as a client on this machine reaches it."""
        return f"{_connect_host(self.host)}:{self.grpc_port}"

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group), None when not running."""
        return None if self._proc is None else self._proc.pid

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

    def _pick_ports(self) -> None:
        """Check the ports asked for, pick free ones for those that are 0."""
        asked = {"HTTP": self.http_port, "gRPC": self.grpc_port, "metrics": self.metrics_port}
        given = [p for p in asked.values() if p]
        if len(set(given)) != len(given):
            raise ConfigError(f"the HTTP, gRPC and metrics ports must differ, got {asked}")
        for what, port in asked.items():
            if port:
                try:
                    _bind(self.host, port).close()
                except OSError as err:
                    raise ConfigError(f"cannot listen on {self.host}:{port} for {what}: {err.strerror or err}",
                                      hint="choose another port, or 0 for a free one") from err
        free = iter(free_ports(len(asked) - len(given), self.host))
        self.http_port, self.grpc_port, self.metrics_port = (p or next(free) for p in asked.values())

    def start(self) -> TritonServer:
        """Start the server and wait until it and every model in ``repo`` are ready.

        Raises:
            InputError: ``repo`` is not a model repository, or ``binary`` does not exist.
            MissingDependencyError / ConfigError: no server, an unusable server environment, or a port in use.
            BackendError: the server exited or was not ready within ``timeout`` (with the end of its log).
        """
        repository_models(self.repo)
        self.server = server = find_tritonserver(self.binary)
        self.env = env = None if server.bundled is None else server_env(self.env_prefix)
        self._pick_ports()
        self._tmp = tempfile.TemporaryDirectory(prefix="lle-triton-")
        tmp = Path(self._tmp.name)
        proc_env = dict(os.environ)
        extra: list[str] = []
        if server.bundled is not None and env is not None:
            extra = ["--backend-directory", str(self._backends(server.bundled, env, tmp))]
            libs = [env.libdir, str(server.bundled.parent.parent / "nvidia_pytriton.libs"),
                    os.environ.get("LD_LIBRARY_PATH", "")]  # fmt: skip
            proc_env.update(PATH=f"{env.prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                            LD_LIBRARY_PATH=os.pathsep.join(p for p in libs if p))
            proc_env.pop("PYTHONPATH", None)
        cmd = [
            str(server.path), "--model-repository", str(self.repo.resolve()), *extra,
            "--http-address", self.host, "--grpc-address", self.host, "--metrics-address", self.host,
            "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
            "--metrics-port", str(self.metrics_port), "--exit-timeout-secs", "5", "--log-verbose", "0",
        ]  # fmt: skip
        self._log = self.log_path or tmp / "tritonserver.log"
        self._log.parent.mkdir(parents=True, exist_ok=True)
        log.debug("starting %s (%s)", " ".join(cmd), self.env or "system server")
        with open(self._log, "wb") as out:
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=proc_env, cwd=tmp, start_new_session=True)
        self._wait_ready()
        return self

    def _get(self, path: str, *, method: str = "GET", timeout: float = 2.0) -> Any:
        """JSON from the server's HTTP endpoint (no proxy); raises ``OSError`` (``URLError``) when unreachable."""
        req = urllib.request.Request(f"http://{self.http_url}{path}", method=method,  # noqa: S310  (local http)
                                     data=b"{}" if method == "POST" else None)  # fmt: skip
        with _NO_PROXY.open(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._failure(f"tritonserver {_exited(self._proc.returncode)} before it was ready")
            try:
                self._get("/v2/health/ready")
                return
            except (urllib.error.URLError, OSError, ValueError):  # not listening yet, or 400 = not ready
                pass
            time.sleep(0.25)
        raise self._failure(f"tritonserver was not ready after {self.timeout:g} s")

    def _failure(self, what: str) -> BackendError:
        """A one-line error: ``what``, the server's last error lines, and where the whole log is."""
        lines = [ln.strip() for ln in self.log_tail(400).splitlines() if ln.strip()]
        errors = [ln for ln in lines if (re.match(r"E\d{4} ", ln) or ln.lower().startswith("error"))
                  and not _LOG_NOISE.search(ln)]  # fmt: skip
        tail = " | ".join(_short(ln) for ln in (errors or lines)[-2:]) or "its log is empty"
        kept = self.log_path
        if kept is None and self._log is not None and self._log.is_file():
            fd, name = tempfile.mkstemp(prefix="lle-tritonserver-", suffix=".log")
            os.close(fd)
            shutil.copyfile(self._log, name)
            kept = Path(name)
        return BackendError(f"{what}: {tail}", hint=f"the whole server log: {kept}" if kept else None)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log."""
        if self._log is None or not self._log.is_file():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def models(self) -> list[str]:
        """Names of the models the server reports ready (the repository's folders, when it does not answer)."""
        try:
            index = self._get("/v2/repository/index", method="POST", timeout=10)
        except (urllib.error.URLError, OSError, ValueError):
            return repository_models(self.repo)
        return sorted(str(m["name"]) for m in index if m.get("state") == "READY")

    def version(self) -> str:
        """The server's version (``GET /v2``), or ``""``."""
        try:
            return str(self._get("/v2").get("version", ""))
        except (urllib.error.URLError, OSError, ValueError, AttributeError):
            return ""

    def wait(self) -> None:
        """Block while the server runs; a signal handler that raises (Ctrl-C) interrupts it.

        Raises:
            BackendError: the server exited (it never does on its own: a crash, or killed), with its log's end.
        """
        if self._proc is None:
            raise BackendError("tritonserver is not running")
        code = self._proc.wait()
        raise self._failure(f"tritonserver {_exited(code)}")

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after ``grace`` s; remove its temp folder.

        Idempotent; returns when the server and every process it started (Python backend stubs) are gone.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=self.grace)
                except subprocess.TimeoutExpired:
                    log.warning("tritonserver did not exit %g s after SIGTERM; killing it", self.grace)
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # stubs a crashed or killed server left behind
            deadline = time.monotonic() + 5.0
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
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


def _exited(code: int) -> str:
    """``"exited with code 1"`` or ``"was killed by SIGKILL"`` (a ``Popen.returncode``)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _group_alive(pgid: int) -> bool:
    """A process of group ``pgid`` still runs (zombies waiting for their reaper do not count, where /proc says)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``; nothing if it is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
