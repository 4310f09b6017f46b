"""Triton client backend: runs a model served by Triton Inference Server over HTTP or gRPC (tritonclient).

The "artifact" is the model's name on the server. Its I/O comes from the server's model config (written by
``lle export --format triton``): uint8 ``input`` = (N, H, W, 3) BGR frames, FP32 = (N, 3, H, W) RGB in [0, 1];
``sequence_batching`` = the realtime video graph, whose coefficient state lives on the server, per sequence id.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lle._lazy import require
from lle.backends.base import ALPHA, INPUT, STATE, STATE_OUT, Backend, BackendInfo, TensorSpec
from lle.errors import BackendError, ConfigError

__all__ = ["PROTOCOLS", "TritonBackend", "parse_url"]

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


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class TritonBackend(Backend):
    """Sends frames to a Triton model and returns its outputs.

    ``model_path``: the model name on the server. Options: ``url`` (``HOST:PORT``, ``http://...`` or
    ``grpc://...``; default ``127.0.0.1:8000``), ``protocol`` (http | grpc, when the URL has no scheme),
    ``timeout`` (seconds per request, default 60), ``sequence_id`` (realtime models: this stream's id on the server,
    default random), ``model_version`` (default: the server's latest).

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
            live = client.is_server_live(**({} if self.protocol == "http" else {"client_timeout": self.timeout}))
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
        inputs = [mod.InferInput("input", list(batch.shape), self._dtype)]
        inputs[0].set_data_from_numpy(np.ascontiguousarray(batch))
        seq: dict[str, Any] = {}
        if alpha is not None:
            a = mod.InferInput("alpha", [1], "FP32")
            a.set_data_from_numpy(np.array([alpha], np.float32))
            inputs.append(a)
            seq = {"sequence_id": self.sequence_id, "sequence_start": start, "sequence_end": end}
        outputs = [mod.InferRequestedOutput("output")]
        # HTTP: the network timeout was set on the client; gRPC takes it per call.
        timeout = {} if self.protocol == "http" else {"client_timeout": self.timeout}
        try:
            res = client.infer(self.model, inputs, model_version=self.version, outputs=outputs, **seq, **timeout)
        except Exception as err:  # noqa: BLE001  (InferenceServerException, socket errors)
            raise BackendError(f"triton: {self.model} on {self.url}: {_first_line(err)}") from err
        out = res.as_numpy("output")
        if out is None:
            raise BackendError(f"triton: {self.model} on {self.url} returned no 'output'")
        return np.asarray(out)

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
                 "platform": self._config.get("platform") or self._config.get("backend", "")}
        return BackendInfo(self.name, self.precision, f"{self.protocol}://{self.url}", self.model, version, extra)

    def close(self) -> None:
        """End this stream's sequence on the server (sequence models), then close every connection. Idempotent."""
        if self._client is not None and self._sequence and self._started:
            self._end_sequence()
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
