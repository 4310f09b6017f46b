"""The Triton Python-backend model: runs an exported lle artifact with lle's own onnxruntime or OpenVINO backend.

:func:`lle.serve.repository.write_repository` copies this file as ``<model>/1/model.py`` beside the artifact; the
server's Python environment needs numpy < 2, lle and that runtime. The model config's ``parameters`` say what to
load (``lle.runtime``, ``lle.artifact``, ``lle.threads``: threads per instance, 0 = automatic, see
:func:`lle.serve.repository.model_threads`).

I/O is the artifact's own: ``input``/``output`` as (N, H, W, 3) uint8 BGR frames for frame graphs, (N, 3, H, W)
float32 otherwise. Realtime video graphs are served as sequence models: Triton routes every request of a sequence
(one camera or video) to this model with its correlation id, and the coefficient state is kept here per sequence,
reset when the request carries the sequence-start control (the client sends it on the first frame and at scene
cuts) and dropped at the sequence end. ``alpha`` is a per-request input (the client's temporal smoothing).
The Python backend has no implicit-state support, hence state kept in the model rather than in Triton.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MAX_SEQUENCES", "TritonPythonModel"]

MAX_SEQUENCES = 1024
"""Per-sequence states kept at most (least recently used dropped first: a client that vanished without an end)."""


class TritonPythonModel:
    """The class the Python backend instantiates (its name is fixed by Triton)."""

    def initialize(self, args: dict[str, str]) -> None:
        import triton_python_backend_utils as pb_utils

        from lle.backends.registry import load_backend
        from lle.serve.repository import model_threads

        self.pb = pb_utils
        cfg = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in cfg.get("parameters", {}).items()}
        folder = Path(args["model_repository"]) / args["model_version"]
        instances = sum(int(g.get("count", 1)) for g in cfg.get("instance_group") or []) or 1
        threads = model_threads(int(params.get("lle.threads", "0") or 0), instances)
        opts: dict[str, Any] = {"device": params.get("lle.device", "cpu") or "cpu", "threads": threads}
        self.backend = load_backend(params["lle.runtime"], folder / params["lle.artifact"], **opts)
        logger = getattr(pb_utils, "Logger", None)  # the stub's logger (server log), in Triton >= 22.12
        if logger is not None:
            logger.log_info(f"lle: {args.get('model_instance_name', args['model_name'])} runs {params['lle.runtime']} "
                            f"with {threads} thread(s)")
        self.sequence = "sequence_batching" in cfg
        self.states: OrderedDict[int | str, np.ndarray] = OrderedDict()

    def _one(self, request: Any) -> Any:
        pb = self.pb
        x = pb.get_input_tensor_by_name(request, "input").as_numpy()
        if not self.sequence:
            return pb.InferenceResponse([pb.Tensor("output", np.ascontiguousarray(self.backend.infer(x)))])
        alpha = float(pb.get_input_tensor_by_name(request, "alpha").as_numpy().ravel()[0])
        start = bool(pb.get_input_tensor_by_name(request, "START").as_numpy().ravel()[0])
        end = bool(pb.get_input_tensor_by_name(request, "END").as_numpy().ravel()[0])
        key = request.correlation_id()
        state = None if start else self.states.pop(key, None)
        if state is None or state.shape[0] != x.shape[0]:
            state, alpha = self.backend.zero_state(x.shape[0]), 0.0
        y, state = self.backend.infer_stateful(x, state, alpha)
        if not end:
            self.states[key] = state
            while len(self.states) > MAX_SEQUENCES:
                self.states.popitem(last=False)
        return pb.InferenceResponse([pb.Tensor("output", np.ascontiguousarray(y))])

    def execute(self, requests: list[Any]) -> list[Any]:
        from lle.errors import LLEError

        out = []
        for r in requests:
            try:
                out.append(self._one(r))
            except LLEError as err:
                msg = f"{err}" + (f" ({err.hint})" if err.hint else "")
                out.append(self.pb.InferenceResponse(error=self.pb.TritonError(msg)))
        return out

    def finalize(self) -> None:
        self.backend.close()
        self.states.clear()
