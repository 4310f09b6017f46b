"""``lle serve``: run Triton Inference Server on a model repository written by ``lle export --format triton``."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from lle.cli._common import cli_errors, err_console, out_console

if TYPE_CHECKING:
    from lle.serve.server import TritonServer

__all__ = ["register"]


class _Stopped(BaseException):
    """Raised by the signal handler; a BaseException so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.name = signal.Signals(signum).name


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    for sig in _SIGNALS:  # a second Ctrl-C must not interrupt the shutdown itself
        signal.signal(sig, signal.SIG_IGN)
    raise _Stopped(signum)


@cli_errors
def serve(
    repo: Annotated[
        Path, typer.Argument(help="Model repository (`lle export --format triton -o REPO`).", show_default=False)
    ],
    http_port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP port (0 = a free one).")] = 0,
    grpc_port: Annotated[int, typer.Option(min=0, max=65535, help="gRPC port (0 = a free one).")] = 0,
    metrics_port: Annotated[int, typer.Option(min=0, max=65535, help="Prometheus metrics port (0 = a free one).")] = 0,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 makes the server reachable from other machines.")
    ] = "127.0.0.1",
    tritonserver: Annotated[
        str | None, typer.Option(help="The tritonserver binary (default: the one bundled in nvidia-pytriton, "
                                 "else tritonserver on PATH).", show_default=False)
    ] = None,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait for the server and its models.")] = 120.0,
    grace: Annotated[float, typer.Option(min=0.0, help="Seconds to wait after SIGTERM before killing it.")] = 10.0,
    log: Annotated[
        Path | None, typer.Option("--log", help="Write the server's log to this file (default: a temp file, kept "
                                  "only when the server fails).", show_default=False)
    ] = None,
) -> None:
    """Serve REPO with Triton Inference Server until Ctrl-C or SIGTERM.

    Starts the tritonserver bundled in nvidia-pytriton (installed by lle's `triton` extra; its Python models run in
    the environment named by $LLE_TRITON_PYTHON, default this one, which needs numpy < 2), or a system tritonserver
    (--tritonserver, or on PATH when nvidia-pytriton is absent). Waits until every model is ready, prints the URLs
    and the model names, and then runs until stopped. Ctrl-C and SIGTERM stop the server and every process it
    started (SIGKILL after --grace seconds). Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 error (the server
    could not start, or died: the message ends with its last error lines).

    Examples: `lle serve repo` (free ports on 127.0.0.1, printed); `lle serve repo --http-port 8000 --grpc-port
    8001` (Triton's usual ports); `lle serve repo --host 0.0.0.0 --http-port 8000`; then
    `lle run realtime_python --backend triton --url 127.0.0.1:8000 --source clip.mp4 -o bright.mp4`.
    """
    from lle.serve.server import TritonServer

    server = TritonServer(repo, host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
                          binary=tritonserver, timeout=timeout, grace=grace, log_path=log)  # fmt: skip
    main = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    old = {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS} if main else {}
    stopped_by = None
    try:
        server.start()
        _print_ready(server)
        server.wait()  # returns only by an exception: the server died (BackendError) or a signal (_Stopped)
    except _Stopped as stop:
        stopped_by = stop.name
    finally:
        if main:
            for sig in _SIGNALS:  # nothing interrupts the shutdown itself
                signal.signal(sig, signal.SIG_IGN)
        try:
            server.stop()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
    if stopped_by:
        err_console.print(f"stopped by {stopped_by}; tritonserver exited", highlight=False)


def _print_ready(server: TritonServer) -> None:
    assert server.server is not None  # started
    kind = "bundled in nvidia-pytriton" if server.server.bundled else "system"
    where = f", Python models in {server.env.prefix}" if server.env is not None else ""
    version = server.version()
    lines = [
        f"tritonserver {version + ' ' if version else ''}ready (pid {server.pid}, {kind}: {server.server.path}{where})",
        f"  repository {server.repo.resolve()}",
        f"  HTTP       http://{server.http_url}",
        f"  gRPC       grpc://{server.grpc_url}",
        f"  metrics    http://{server.http_url.rsplit(':', 1)[0]}:{server.metrics_port}/metrics",
        f"  models     {', '.join(server.models()) or '(none ready)'}",
        f"client: lle run MODEL --backend triton --url {server.http_url} --source ...  (Ctrl-C stops the server)",
    ]
    if server.http_url.rsplit(":", 1)[0].strip("[]") != server.host:
        lines.insert(2, f"  listening  {server.host} (other machines: this machine's address, same ports)")
    for line in lines:
        out_console.print(line, highlight=False, soft_wrap=True)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
