"""onnxruntime backend: runs ``.onnx`` graphs (fp32, fp16 or Q/DQ int8) on CPU, CUDA, TensorRT EP or OpenVINO EP."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._lazy import require
from lle.backends._graph import graph_spec
from lle.backends.base import Backend, BackendInfo, TensorSpec
from lle.backends.registry import backend_suffixes
from lle.errors import BackendError

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["PROVIDERS", "OrtBackend"]

log = logging.getLogger(__name__)

# --device value -> execution providers to try, best first (CPU is always appended as the fallback for
# unsupported nodes, which is onnxruntime's own partitioning, not a silent device change).
PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider",),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider"),
    "openvino": ("OpenVINOExecutionProvider",),
}
_AUTO = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OrtBackend(Backend):
    """Runs an ONNX graph in an onnxruntime session.

    ``device``: auto | cpu | cuda[:i] | tensorrt | openvino. ``precision`` describes the graph (fp32, fp16 via the
    TensorRT EP, int8 = a Q/DQ graph run as it is). Options: ``threads`` (intra-op threads, 0 = onnxruntime's default).

    On CUDA the input is bound with IOBinding and outputs stay on the GPU until copied back once.
    """

    name = "onnxruntime"
    extra = "onnxruntime"

    def __init__(self, model_path: Any, **kw: Any) -> None:
        super().__init__(model_path, **kw)
        self._sess: ort.InferenceSession | None = None
        self._spec = TensorSpec()
        self._gpu = False
        self._providers: list[str] = []

    def _providers_for(self, ort: Any) -> list[Any]:
        have = set(ort.get_available_providers())
        dev, _, idx = self.device.partition(":")
        if dev == "auto":
            wanted = [p for p in _AUTO if p in have]
        elif dev in PROVIDERS:
            wanted = [p for p in PROVIDERS[dev] if p in have]
            if not wanted:
                raise BackendError(
                    f"onnxruntime: device {self.device!r} needs {PROVIDERS[dev][0]}, available: {sorted(have)}",
                    hint="install onnxruntime-gpu / onnxruntime-openvino, or use --device cpu",
                )
        else:
            raise BackendError(
                f"onnxruntime: unknown device {self.device!r}", hint="auto, cpu, cuda[:i], tensorrt, openvino"
            )
        out: list[Any] = []
        for p in wanted:
            opts: dict[str, str] = {}
            if p in {"CUDAExecutionProvider", "TensorrtExecutionProvider"} and idx:
                opts["device_id"] = idx
            if p == "TensorrtExecutionProvider" and self.precision in {"fp16", "int8"}:
                opts["trt_fp16_enable"] = "True"
                if self.precision == "int8":
                    opts["trt_int8_enable"] = "True"
            if p == "OpenVINOExecutionProvider" and self.precision == "fp32":
                opts["precision"] = "FP32"
            out.append((p, opts) if opts else p)
        if "CPUExecutionProvider" not in wanted:
            out.append("CPUExecutionProvider")
        return out

    def load(self) -> None:
        ort = require("onnxruntime", extra=self.extra)
        if self.model_path.suffix.lower() not in backend_suffixes(self.name):
            raise BackendError(
                f"onnxruntime runs .onnx graphs, got {self.model_path.name}",
                hint="use --backend auto to pick the backend from the file type",
            )
        if not self.model_path.is_file():
            raise BackendError(f"onnxruntime: model not found: {self.model_path}")
        if self.precision not in {"fp32", "fp16", "int8"}:
            raise BackendError(f"onnxruntime: precision {self.precision!r} not supported", hint="fp32, fp16 or int8")
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        threads = int(self.options.get("threads", 0) or 0)
        if threads:
            so.intra_op_num_threads = threads
        providers = self._providers_for(ort)
        try:
            sess = ort.InferenceSession(str(self.model_path), sess_options=so, providers=providers)
        except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf/... classes
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BackendError(
                f"onnxruntime cannot load {self.model_path.name}: {first}",
                hint="the file is damaged or not an ONNX model: export it again with `lle export --format onnx`",
            ) from err
        ins = {i.name: [d if isinstance(d, int) else None for d in i.shape] for i in sess.get_inputs()}
        outs = [o.name for o in sess.get_outputs()]
        meta = sess.get_modelmeta().custom_metadata_map
        self._spec = graph_spec(self.name, self.model_path.name, ins, outs, meta)
        self._providers = sess.get_providers()
        self._gpu = self._providers[0] in {"CUDAExecutionProvider", "TensorrtExecutionProvider"}
        self._sess = sess
        log.debug("onnxruntime providers: %s", self._providers)

    @property
    def input_spec(self) -> TensorSpec:
        return self._spec

    def _loaded(self) -> bool:
        return self._sess is not None

    def _run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        assert self._sess is not None  # checked by infer()
        names = list(outputs)
        if not self._gpu:
            return list(self._sess.run(names, dict(feeds)))
        binding = self._sess.io_binding()
        for k, v in feeds.items():
            binding.bind_cpu_input(k, v)
        dev_id = int(self.device.partition(":")[2] or 0)
        for n in names:
            binding.bind_output(n, "cuda", dev_id)
        self._sess.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    def describe(self) -> BackendInfo:
        import onnxruntime

        return BackendInfo(
            self.name, self.precision, self.device, str(self.model_path), onnxruntime.__version__,
            {"providers": self._providers},
        )  # fmt: skip

    def close(self) -> None:
        self._sess = None
