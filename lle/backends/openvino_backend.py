"""OpenVINO backend: runs OpenVINO IR (``.xml`` + ``.bin``) or ``.onnx`` on CPU, GPU or NPU."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._lazy import require
from lle.backends._graph import graph_spec
from lle.backends.base import INPUT, OUTPUT, Backend, BackendInfo, TensorSpec
from lle.backends.registry import backend_suffixes
from lle.errors import BackendError

if TYPE_CHECKING:
    import openvino as ov

__all__ = ["OpenVinoBackend"]

log = logging.getLogger(__name__)

_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}  # int8: the IR's own (quantized) precision
_HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}


class OpenVinoBackend(Backend):
    """Runs an OpenVINO model with one infer request (live video) or an async queue (files).

    ``device``: auto | cpu | gpu[.i] | npu (OpenVINO device names, any case). ``precision``: fp32 | fp16 | bf16 |
    int8; fp32 sets ``INFERENCE_PRECISION_HINT=f32`` because OpenVINO runs bf16 by default on CPUs with AMX/AVX512-BF16.

    Options: ``hint`` = latency (default; live video) | throughput (files; used by :meth:`infer_iter` with an
    ``AsyncInferQueue``), ``cache_dir`` (compiled-model cache, speeds up the next load, needed for GPU/NPU start-up),
    ``threads`` (``INFERENCE_NUM_THREADS``, 0 = default), ``static`` (compile for each concrete input shape, keeping
    the last few: OpenVINO's CPU plugin fuses the full-resolution element-wise chain only for static shapes, 2.3x
    faster for the realtime graph at 1080p; default on for video graphs, whose frames all have one size). NPU needs
    static shapes: export with a fixed size.
    """

    name = "openvino"
    extra = "openvino"

    def __init__(self, model_path: Any, **kw: Any) -> None:
        super().__init__(model_path, **kw)
        self._compiled: ov.CompiledModel | None = None
        self._req: ov.InferRequest | None = None
        self._spec = TensorSpec()
        self._ov_device = ""
        self._static = False
        self._by_shape: dict[tuple[int, ...], tuple[Any, Any]] = {}

    def _config(self) -> dict[str, str]:
        hint = str(self.options.get("hint", "latency")).lower()
        if hint not in _HINTS:
            raise BackendError(f"openvino: unknown hint {hint!r}", hint="latency or throughput")
        cfg = {"PERFORMANCE_HINT": _HINTS[hint]}
        if self.precision in _PRECISION:
            cfg["INFERENCE_PRECISION_HINT"] = _PRECISION[self.precision]
        elif self.precision != "int8":
            raise BackendError(f"openvino: precision {self.precision!r} not supported", hint="fp32, fp16, bf16, int8")
        threads = int(self.options.get("threads", 0) or 0)
        if threads:
            cfg["INFERENCE_NUM_THREADS"] = str(threads)
        if self.options.get("cache_dir"):
            cfg["CACHE_DIR"] = str(self.options["cache_dir"])
        return cfg

    def load(self) -> None:
        ov = require("openvino", extra=self.extra)
        suffix = self.model_path.suffix.lower()
        if suffix not in backend_suffixes(self.name):
            raise BackendError(
                f"openvino runs .xml IR or .onnx graphs, got {self.model_path.name}",
                hint="use --backend auto to pick the backend from the file type",
            )
        if not self.model_path.is_file():
            raise BackendError(f"openvino: model not found: {self.model_path}")
        if suffix == ".xml" and not self.model_path.with_suffix(".bin").is_file():
            raise BackendError(f"openvino: {self.model_path.with_suffix('.bin').name} (weights of the IR) is missing")
        core = ov.Core()
        devices = core.available_devices
        dev = self.device.upper()
        if dev == "AUTO":
            dev = "CPU" if devices == ["CPU"] else "AUTO"
        elif dev.split(".")[0] not in {d.split(".")[0] for d in devices}:
            raise BackendError(f"openvino: device {self.device!r} not available; found {devices}", hint="--device cpu")
        try:
            model = core.read_model(str(self.model_path))
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else "unreadable"
            raise BackendError(
                f"openvino cannot read {self.model_path.name}: {first}",
                hint="the file is damaged or not an ONNX/OpenVINO model: export it again with `lle export`",
            ) from err
        ins = {i.get_any_name(): _dims(i.get_partial_shape()) for i in model.inputs}
        outs = [o.get_any_name() for o in model.outputs]
        meta: dict[str, str | None] = {}
        for name in ("lle.size_multiple", "lle.io", "lle.exposure_cap"):
            for key in (["framework", name], [name], name.split(".")):
                if model.has_rt_info(key):
                    meta[name] = str(model.get_rt_info(key).astype(str))
                    break
        self._spec = graph_spec(self.name, self.model_path.name, ins, outs, meta)
        try:
            self._compiled = core.compile_model(model, dev, self._config())
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else "compile failed"
            raise BackendError(f"openvino cannot compile {self.model_path.name} for {dev}: {first}") from err
        self._ov_device = dev
        self._req = self._compiled.create_infer_request()
        self._model, self._core = model, core
        dynamic = any(not i.get_partial_shape().is_static for i in model.inputs)
        self._static = dynamic and bool(self.options.get("static", self._spec.state_shape is not None))
        self._by_shape = {}

    @property
    def input_spec(self) -> TensorSpec:
        return self._spec

    def _loaded(self) -> bool:
        return self._req is not None and self._compiled is not None

    def _request(self, batch: np.ndarray) -> ov.InferRequest:
        assert self._req is not None  # checked by infer()
        if not self._static:
            return self._req
        key = tuple(batch.shape)
        hit = self._by_shape.get(key)
        if hit is None:
            model = self._model.clone()
            shapes = {}
            for port in model.inputs:
                name = port.get_any_name()
                dims = _dims(port.get_partial_shape())
                shapes[name] = list(key) if name == INPUT else [key[0] if d is None else d for d in dims]
            model.reshape(shapes)
            compiled = self._core.compile_model(model, self._ov_device, self._config())
            hit = (compiled, compiled.create_infer_request())
            if len(self._by_shape) >= 4:
                self._by_shape.pop(next(iter(self._by_shape)))
            self._by_shape[key] = hit
            log.debug("openvino: compiled %s for input %s", self.model_path.name, key)
        return hit[1]

    def _run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        res = self._request(feeds[INPUT]).infer(dict(feeds), share_inputs=True)
        return [np.array(res[n], copy=True) for n in outputs]

    def infer_iter(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Like ``map(infer, batches)``, in order, with several requests in flight (``AsyncInferQueue``).

        Stateless use only (each batch gets a zero state); with ``hint=latency`` this is one request at a time.
        """
        self.check_loaded()
        assert self._compiled is not None
        ov = require("openvino", extra=self.extra)
        n = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        if n == 1:
            yield from super().infer_iter(batches)
            return
        queue = ov.AsyncInferQueue(self._compiled, n)
        done: dict[int, np.ndarray] = {}
        queue.set_callback(lambda req, i: done.__setitem__(i, np.array(req.get_tensor(OUTPUT).data, copy=True)))
        sent = nxt = 0
        for b in batches:
            self.check_input(b)
            queue.start_async(self.feeds(b), sent)
            sent += 1
            while nxt in done:
                yield done.pop(nxt)
                nxt += 1
        queue.wait_all()
        while nxt < sent:
            yield done.pop(nxt)
            nxt += 1

    def describe(self) -> BackendInfo:
        openvino = require("openvino", extra=self.extra)
        extra: dict[str, Any] = {"ov_device": self._ov_device}
        if self._compiled is not None:
            prec = self._compiled.get_property("INFERENCE_PRECISION_HINT")
            extra["inference_precision"] = prec.get_type_name() if hasattr(prec, "get_type_name") else str(prec)
        return BackendInfo(self.name, self.precision, self.device, str(self.model_path), openvino.__version__, extra)

    def close(self) -> None:
        self._req = None
        self._compiled = None
        self._by_shape = {}


def _dims(shape: Any) -> list[int | None]:
    return [d.get_length() if d.is_static else None for d in shape]
