"""Triton client backend: runs a model served by Triton Inference Server over HTTP or gRPC (tritonclient).

The "artifact" is the model's name on the server. Its I/O comes from the server's model config (written by
``lle export --format triton``): uint8 ``input`` = (N, H, W, 3) BGR frames, FP32 = (N, 3, H, W) RGB in [0, 1];
``sequence_batching`` = the realtime video graph, whose coefficient state lives on the server, per sequence id.

On a server on this host (a loopback URL) frames travel through system shared memory by default: each client
thread registers one region (``/dev/shm/lle_<pid>_<random>``) holding its input and output tensors, so a frame is
copied into the region instead of being serialised over the socket; :meth:`TritonBackend.close` unregisters and
removes the regions.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lle._lazy import require
from lle.backends.base import ALPHA, INPUT, STATE, STATE_OUT, Backend, BackendInfo, TensorSpec
from lle.errors import BackendError, ConfigError

__all__ = ["PROTOCOLS", "TritonBackend", "is_loopback", "parse_url"]

log = logging.getLogger(__name__)

PROTOCOLS = {"http": "tritonclient.http", "grpc": "tritonclient.grpc"}
_DEFAULT_PORT = {"http": 8000, "grpc": 8001}


def parse_url(url: str, protocol: str | None = None) -> tuple[str, str]:
    """``"grpc://host:8001"`` -> ``("grpc", "host:8001")``; no scheme means HTTP (or ``protocol``).

    Raises:
        ConfigError: unknown scheme/protocol, or no host.

    Example:
        >>> parse_url("grpc://127.0.0.1:8001"), parse_url("localhost:8000"), parse_url("gpu-box", "grpc")
        (('grpc', '127.0.0.1:8001'), ('http', 'localhost:8000'), ('grpc', 'gpu-box:8001'))
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = protocol or "http", url
    elif protocol is not None and protocol != scheme:
        raise ConfigError(f"--url {url!r} says {scheme} but the protocol is {protocol}", hint="give one of them")
    if scheme not in PROTOCOLS:
        raise ConfigError(f"unknown Triton protocol {scheme!r} in --url {url!r}", hint="http://HOST:PORT or "
                          "grpc://HOST:PORT (no scheme: HTTP)")
    rest = rest.rstrip("/")
    if not rest or rest.startswith(":") or "/" in rest:
        raise ConfigError(f"--url {url!r} is not HOST:PORT", hint="e.g. --url 127.0.0.1:8000 or grpc://gpu-box:8001")
    if ":" not in rest:
        rest = f"{rest}:{_DEFAULT_PORT[scheme]}"
    return scheme, rest


def is_loopback(url: str) -> bool:
    """True when ``HOST:PORT`` names this machine through the loopback interface (so shared memory can reach it).

    Example:
        >>> [is_loopback(u) for u in ("127.0.0.1:8001", "localhost:8000", "[::1]:8001", "gpu-box:8001")]
        [True, True, True, False]
    """
    host = url.rpartition(":")[0].strip("[]").lower()
    return host in {"localhost", "::1"} or host.startswith("127.")


@dataclass(slots=True)
class _Region:
    """One client thread's system shared-memory region: the input at offset 0, the output after it (aligned)."""

    name: str
    """Triton's name of the region (what requests refer to)."""
    key: str
    """The POSIX shared-memory key (``/dev/shm/<key without '/'>``)."""
    size: int
    handle: Any


def _align(n: int, to: int = 64) -> int:
    return -(-n // to) * to


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class TritonBackend(Backend):
    """Sends frames to a Triton model and returns its outputs.

    ``model_path``: the model name on the server. Options: ``url`` (``HOST:PORT``, ``http://...`` or
    ``grpc://...``; default ``127.0.0.1:8000``), ``protocol`` (http | grpc, when the URL has no scheme),
    ``timeout`` (seconds per request, default 60), ``sequence_id`` (realtime models: this stream's id on the server,
    default random), ``model_version`` (default: the server's latest), ``shm`` (send and receive tensors through
    system shared memory: ``True`` = always, a failure to set it up raising :class:`BackendError`; ``False`` = never;
    default ``None`` = when the URL is a loopback address, falling back to the socket with one warning when the
    server cannot map the region, e.g. a server in a container with its own ``/dev/shm``).

    For sequence models every frame goes to one sequence; a frame with ``alpha = 0`` (the first, and each scene cut
    the client's smoother detects) restarts it, which resets the server-side state. The ``state`` arrays of
    :meth:`infer_stateful` are placeholders: the state never leaves the server. :meth:`close` ends the sequence
    (one last request, a zero frame of the last frame's shape, carrying Triton's sequence-end flag), so the server
    frees its slot and state at once instead of after the model's idle timeout.
    """

    name = "triton"
    extra = "triton"
    remote = True

    def __init__(self, model_path: Any, **kw: Any) -> None:
        super().__init__(model_path, **kw)
        self.model = str(model_path)
        self.protocol, self.url = parse_url(str(self.options.get("url") or "127.0.0.1:8000"),
                                            self.options.get("protocol"))
        self.timeout = float(self.options.get("timeout", 60.0))
        self.version = str(self.options.get("model_version", ""))
        self.sequence_id = int(self.options.get("sequence_id") or secrets.randbits(62) + 1)
        self._client: Any = None
        self._mod: Any = None
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._spec = TensorSpec()
        self._dtype = "FP32"
        self._sequence = False
        self._started = False
        self._last_shape: tuple[int, ...] = ()
        self._config: dict[str, Any] = {}
        self._server_version = ""
        shm = self.options.get("shm")
        self._shm_asked: bool | None = None if shm is None else bool(shm)
        self._shm = is_loopback(self.url) if shm is None else bool(shm)
        self._regions: list[_Region] = []
        self._shm_mod: Any = None

    def _new_client(self, mod: Any) -> Any:
        if self.protocol == "http":
            client = mod.InferenceServerClient(self.url, connection_timeout=self.timeout, network_timeout=self.timeout)
        else:
            client = mod.InferenceServerClient(self.url)
        with self._lock:
            self._clients.append(client)
        return client

    def _thread_client(self) -> Any:
        """This thread's client: the HTTP client (gevent) must stay on the thread that made it."""
        self.check_loaded()
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client(self._mod)
        return client

    def load(self) -> None:
        mod = require(PROTOCOLS[self.protocol], extra=self.extra)
        try:
            client = self._new_client(mod)
            self._local.client = client
            live = client.is_server_live(**self._call_timeout)
        except Exception as err:  # tritonclient raises its own exception types and socket errors
            raise BackendError(f"triton: no server at {self.protocol}://{self.url}: {_first_line(err)}",
                               hint="start tritonserver, or check --url HOST:PORT (HTTP 8000, gRPC 8001)") from err
        if not live:
            raise BackendError(f"triton: server at {self.url} is not live", hint="check the server log")
        try:
            ready = client.is_model_ready(self.model, self.version)
            meta = client.get_server_metadata()
        except Exception as err:  # noqa: BLE001
            raise BackendError(f"triton: {self.url}: {_first_line(err)}") from err
        if not ready:
            models = self._models(client)
            raise BackendError(f"triton: model {self.model!r} is not ready on {self.url}"
                               + (f"; ready models: {', '.join(models)}" if models else "; no model is ready"),
                               hint="pass the model name as the MODEL argument")  # fmt: skip
        try:
            config = client.get_model_config(self.model, self.version)
        except Exception as err:  # noqa: BLE001
            raise BackendError(f"triton: cannot read the config of {self.model!r}: {_first_line(err)}") from err
        if self.protocol == "grpc":
            from google.protobuf.json_format import MessageToDict

            config = MessageToDict(config.config, preserving_proto_field_name=True)
        self._server_version = str(meta.get("version", "") if isinstance(meta, dict) else meta.version)
        self._config = config
        self._spec, self._dtype, self._sequence = _spec_from_config(self.model, config)
        self._client, self._mod = client, mod

    def _models(self, client: Any) -> list[str]:
        try:
            index = client.get_model_repository_index()
        except Exception:  # noqa: BLE001  (only for the error message)
            return []
        entries = index if isinstance(index, list) else [
            {"name": m.name, "state": m.state} for m in index.models]  # fmt: skip
        return sorted(str(m["name"]) for m in entries if m.get("state") == "READY")

    @property
    def input_spec(self) -> TensorSpec:
        return self._spec

    def _request(self, batch: np.ndarray, alpha: float | None, *, start: bool = False, end: bool = False
                 ) -> np.ndarray:  # fmt: skip
        client = self._thread_client()
        mod = self._mod
        batch = np.ascontiguousarray(batch)
        inputs = [mod.InferInput("input", list(batch.shape), self._dtype)]
        outputs = [mod.InferRequestedOutput("output")]
        region = self._thread_region(client, 2 * _align(batch.nbytes)) if self._shm else None
        if region is not None:
            # The output of an lle graph has the input's shape and dtype: input at 0, output after it.
            self._shm_mod.set_shared_memory_region(region.handle, [batch])
            inputs[0].set_shared_memory(region.name, batch.nbytes)
            outputs[0].set_shared_memory(region.name, batch.nbytes, offset=_align(batch.nbytes))
        else:
            inputs[0].set_data_from_numpy(batch)
        seq: dict[str, Any] = {}
        if alpha is not None:
            a = mod.InferInput("alpha", [1], "FP32")
            a.set_data_from_numpy(np.array([alpha], np.float32))
            inputs.append(a)
            seq = {"sequence_id": self.sequence_id, "sequence_start": start, "sequence_end": end}
        try:
            res = client.infer(self.model, inputs, model_version=self.version, outputs=outputs, **seq,
                               **self._call_timeout)
        except Exception as err:  # noqa: BLE001  (InferenceServerException, socket errors)
            raise BackendError(f"triton: {self.model} on {self.url}: {_first_line(err)}") from err
        if region is not None:
            return self._shm_output(res, region, batch)
        out = res.as_numpy("output")
        if out is None:
            raise BackendError(f"triton: {self.model} on {self.url} returned no 'output'")
        return np.asarray(out)

    def _shm_output(self, res: Any, region: _Region, batch: np.ndarray) -> np.ndarray:
        """Copy the output out of this thread's region (the next request overwrites it)."""
        meta = res.get_output("output")
        if meta is None:
            raise BackendError(f"triton: {self.model} on {self.url} returned no 'output'")
        shape = tuple(int(d) for d in (meta["shape"] if isinstance(meta, dict) else meta.shape))
        if int(np.prod(shape)) * batch.itemsize > batch.nbytes:  # the server would have refused to write it
            raise BackendError(f"triton: {self.model} returned an output of shape {shape}, larger than its input "
                               f"{batch.shape}", hint="serve a model written by `lle export --format triton`")
        view = self._shm_mod.get_contents_as_numpy(region.handle, batch.dtype, shape, offset=_align(batch.nbytes))
        return np.array(view, copy=True)

    def _thread_region(self, client: Any, size: int) -> _Region | None:
        """This thread's registered region of at least ``size`` bytes (a bigger frame replaces it), or None.

        None when shared memory is off or cannot be set up (auto mode: one warning, then the socket for every later
        request).

        Raises:
            BackendError: ``shm=True`` and the region cannot be created or registered.
        """
        region: _Region | None = getattr(self._local, "region", None)
        if region is not None and region.size >= size:
            return region
        if region is not None:
            self._release(client, region)
            self._local.region = None
        name = f"lle_{os.getpid()}_{secrets.token_hex(6)}"
        key = f"/{name}"
        try:
            shm = self._shm_mod = require("tritonclient.utils.shared_memory", extra=self.extra)
            handle = shm.create_shared_memory_region(name, key, size, create_only=True)
        except Exception as err:  # noqa: BLE001  (SharedMemoryException, OSError: no /dev/shm, no module)
            self._shm_failed(f"cannot create shared memory {key} ({size} bytes): {_first_line(err)}", err)
            return None
        region = _Region(name, key, size, handle)
        with self._lock:
            self._regions.append(region)
        try:
            client.register_system_shared_memory(name, key, size, **self._call_timeout)
        except Exception as err:  # noqa: BLE001  (the server cannot open the key: another host or /dev/shm)
            self._destroy(region)
            self._shm_failed(f"the server at {self.url} cannot map shared memory {key}: {_first_line(err)}", err)
            return None
        self._local.region = region
        log.debug("triton: registered shared memory %s (%d bytes)", name, size)
        return region

    def _shm_failed(self, msg: str, err: BaseException) -> None:
        if self._shm_asked:
            raise BackendError(f"triton: {msg}", hint="the server must run on this host and see its /dev/shm; "
                               "or pass shm=False to send tensors over the socket") from err
        if self._shm:
            log.warning("triton: %s; sending tensors over the socket instead", msg)
        self._shm = False

    def _destroy(self, region: _Region) -> None:
        """Remove the region from this process and from /dev/shm (the server keeps a mapping it still holds)."""
        with self._lock:
            if region in self._regions:
                self._regions.remove(region)
        try:
            self._shm_mod.destroy_shared_memory_region(region.handle)
        except Exception:  # noqa: BLE001  (already gone)
            log.debug("triton: removing shared memory %s failed", region.key, exc_info=True)

    def _release(self, client: Any, region: _Region) -> None:
        """Unregister the region on the server (a failure, e.g. the server gone, is only logged), then destroy it."""
        for wait in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, None):
            try:
                client.unregister_system_shared_memory(region.name, **self._call_timeout)
                break
            except Exception as err:  # noqa: BLE001
                # The server releases a region a moment after the last response that used it was sent.
                if wait is None or "in use" not in str(err):
                    log.debug("triton: unregistering shared memory %s failed", region.name, exc_info=True)
                    break
                time.sleep(wait)
        self._destroy(region)

    @property
    def _call_timeout(self) -> dict[str, float]:
        """Per-call timeout keywords: gRPC takes one per call, HTTP had it set on the client."""
        return {} if self.protocol == "http" else {"client_timeout": self.timeout}

    def _loaded(self) -> bool:
        return self._client is not None

    def _run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        batch = feeds[INPUT]
        if not self._sequence:
            return [self._request(batch, None)]
        if STATE_OUT not in outputs:
            # A one-frame sequence per image: the single-image result, leaving no state behind on the server.
            out = [np.concatenate([self._request(batch[i : i + 1], 0.0, start=True, end=True)
                                   for i in range(batch.shape[0])])]  # fmt: skip
            self._started = False  # that ended this id's sequence on the server: the next frame starts a new one
            return out
        if batch.shape[0] != 1:
            raise BackendError(f"triton: a sequence model takes one frame per request, got a batch of "
                               f"{batch.shape[0]}", hint="send the frames of one stream one by one")
        alpha = float(feeds[ALPHA][0])
        start = alpha == 0.0 or not self._started
        y = self._request(batch, alpha, start=start)
        self._started, self._last_shape = True, tuple(batch.shape)
        return [y, feeds[STATE]]

    def _end_sequence(self) -> None:
        """Send the sequence-end request of this stream; a failure (server gone, sequence timed out) is only logged."""
        dtype = np.uint8 if self._dtype == "UINT8" else np.float32
        try:
            self._request(np.zeros(self._last_shape, dtype), 0.0, end=True)
        except BackendError as err:
            log.debug("triton: could not end sequence %d: %s", self.sequence_id, err)

    def describe(self) -> BackendInfo:
        from lle.host import dist_version

        version = dist_version("tritonclient") or ""
        extra = {"server_version": self._server_version, "protocol": self.protocol, "sequence": self._sequence,
                 "platform": self._config.get("platform") or self._config.get("backend", ""), "shm": self._shm,
                 "parameters": {k: v.get("string_value", "") for k, v in
                                (self._config.get("parameters") or {}).items()},
                 "instances": sum(int(g.get("count", 1)) for g in self._config.get("instance_group") or [])}
        return BackendInfo(self.name, self.precision, f"{self.protocol}://{self.url}", self.model, version, extra)

    def close(self) -> None:
        """End the stream's sequence, unregister and remove the shared-memory regions, close every connection.

        The sequence end is for sequence models only. Idempotent.
        """
        if self._client is not None and self._sequence and self._started:
            self._end_sequence()
        with self._lock:
            regions = list(self._regions)
        if regions:
            client = getattr(self._local, "client", None)
            if client is None and self._mod is not None:
                try:
                    client = self._new_client(self._mod)
                except Exception:  # noqa: BLE001  (no server: the regions are still removed here)
                    client = None
            for region in regions:
                if client is not None:
                    self._release(client, region)
                else:
                    self._destroy(region)
        self._client = None
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001  (a dead connection, or a gevent client of another thread)
                log.debug("triton: closing a client failed", exc_info=True)
        self._local = threading.local()
        self._started = False


def _spec_from_config(model: str, config: dict[str, Any]) -> tuple[TensorSpec, str, bool]:
    """(TensorSpec, Triton dtype of ``input``, is a sequence model) from a model config (JSON form).

    Raises:
        BackendError: the model does not have lle's ``input``/``output`` I/O.
    """
    inputs = {i["name"]: i for i in config.get("input", [])}
    outputs = {o["name"] for o in config.get("output", [])}
    if "input" not in inputs or "output" not in outputs:
        raise BackendError(
            f"triton: model {model!r} is not an lle model (inputs {sorted(inputs)}, outputs {sorted(outputs)}; "
            "expected 'input' and 'output')", hint="serve a repository written by `lle export --format triton`",
        )  # fmt: skip
    dtype = str(inputs["input"].get("data_type", "TYPE_FP32")).removeprefix("TYPE_")
    params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
    mult = int(params.get("lle.size_multiple") or 1)
    sequence = "sequence_batching" in config
    state: tuple[int, ...] | None = None
    if sequence:
        if params.get("lle.state_shape"):
            state = tuple(int(d) for d in params["lle.state_shape"].split(","))
        else:
            states = config["sequence_batching"].get("state") or []
            if not states:
                raise BackendError(f"triton: sequence model {model!r} has no lle.state_shape and no state",
                                   hint="serve a repository written by `lle export --format triton`")
            state = tuple(int(d) for d in states[0]["dims"][1:])
        if "alpha" not in inputs:
            raise BackendError(f"triton: sequence model {model!r} has no 'alpha' input",
                               hint="serve a repository written by `lle export --format triton`")
    if dtype == "UINT8":
        return TensorSpec.for_frames(size_multiple=1, state_shape=state), dtype, sequence
    if dtype != "FP32":
        raise BackendError(f"triton: model {model!r} input 'input' is {dtype}, expected UINT8 or FP32")
    return TensorSpec(size_multiple=mult, state_shape=state), dtype, sequence
