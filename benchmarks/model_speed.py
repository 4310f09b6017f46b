"""Realtime preset graphs, as ``lle export`` writes them, vs a Zero-DCE++ timing twin: OpenVINO and onnxruntime CPU.

    python benchmarks/model_speed.py [--iters 10] [--warmup 2] [--threads 2] [--sizes 1280x720,1920x1080]
                                     [--ov-precision default,f32] [--no-onnxruntime]
                                     [--weights lle/weights/realtime.safetensors]
                                     [--out benchmarks/results/model_speed.md]

Graphs, each exported once (dynamic N/H/W) through ``lle.export.onnx_export.export_onnx``, the function the
``to_onnx`` step of ``lle export`` calls (``lle export --preset realtime --format openvino --io uint8`` is that ONNX
plus ``openvino.convert_model``, which this script runs in memory instead of saving an IR):

- lle realtime uint8: the bundled realtime weights as a video graph on (1, H, W, 3) uint8 BGR frames, state and
  alpha inputs fed zeros (the single-image result); ``--io uint8``, the CLI's default for realtime OpenVINO/ONNX.
- lle realtime i420: the same on (1, H*3/2, W) uint8 I420 frames (``--io i420``, what ``lle run`` uses for video).
- lle realtime float32: the same on (1, 3, H, W) float32 RGB in [0, 1] (``--io float32``).
- Zero-DCE++ twin float32: benchmarks/twins.py ``ZeroDCEppTwin`` (random weights) on float32 NCHW, as published.
- Zero-DCE++ twin uint8: the twin inside lle's ``FrameGraph`` (uint8 BGR frames in and out, cast/scale/round/clip
  in the graph), the same I/O as the lle uint8 graph.

The ``x Zero-DCE++`` column compares each row with the twin of like I/O at the same size (uint8 and i420 rows with
the uint8 twin, float32 rows with the float32 twin): twin ms / row ms, above 1 = faster than Zero-DCE++. Timing,
OpenVINO settings (static shapes, ``INFERENCE_NUM_THREADS``, LATENCY hint, precision read back) and the report
preamble are those of benchmarks/quality_arch.py, whose harness this script uses.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_arch import (  # noqa: E402
    Graph,
    add_runtimes,
    count_gmacs,
    export_graph,
    header,
    parse_hw,
    table,
    write_report,
)
from twins import ZeroDCEppTwin, count_params  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TWIN = "Zero-DCE++ twin"


def _feeds(io: str, h: int, w: int, state_shape: tuple[int, ...] | None) -> dict[str, np.ndarray]:
    """Seeded dark inputs of one call for a graph with I/O ``io`` at H x W (plus zero state/alpha for video graphs)."""
    from lle.backends.base import ALPHA, INPUT, STATE

    g = np.random.default_rng(0)
    if io == "float32":
        x = (0.3 * g.random((1, 3, h, w))).astype(np.float32)
    else:
        shape = (1, h, w, 3) if io == "uint8" else (1, h * 3 // 2, w)
        x = (80.0 * g.random(shape)).astype(np.uint8)
    feeds = {INPUT: x}
    if state_shape is not None:
        feeds |= {STATE: np.zeros(state_shape, np.float32), ALPHA: np.zeros(1, np.float32)}
    return feeds


def _counted(graph: nn.Module, feeds: dict[str, np.ndarray]) -> float:
    """GMACs of ``graph`` on ``feeds`` (in the graph's argument order: input, state, alpha)."""
    return count_gmacs(graph, [torch.from_numpy(v) for v in feeds.values()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=10, help="timed calls per (graph, size, runtime)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls per (graph, size, runtime) first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="1280x720,1920x1080", help="comma-separated W x H")
    ap.add_argument("--ov-precision", default="default,f32",
                    help="comma-separated OpenVINO INFERENCE_PRECISION_HINT values to time; default = OpenVINO's")
    ap.add_argument("--no-onnxruntime", dest="onnxruntime", action="store_false", help="skip onnxruntime")
    ap.add_argument("--weights", type=Path, default=ROOT / "lle/weights/realtime.safetensors")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/model_speed.md"))
    a = ap.parse_args()
    torch.set_num_threads(1)  # torch only counts MACs here (one thread avoids stalls on a busy CPU)
    from lle.models.checkpoint import load_model
    from lle.models.frames import FrameGraph, frame_graph
    from lle.models.realtime import RealtimeUNet, TemporalRealtime

    rt, card = load_model(a.weights)
    if not isinstance(rt, RealtimeUNet):
        raise SystemExit(f"{a.weights} holds preset {card.preset!r}, not the realtime preset")
    twin = ZeroDCEppTwin().eval()
    state = (1, rt.coeff_channels, rt.lowres, rt.lowres)
    # name, module exported, io, module run for GMACs, video state?, params, like-I/O twin
    specs = [
        ("lle realtime uint8", rt, "uint8", frame_graph(rt, "uint8"), True, f"{TWIN} uint8"),
        ("lle realtime i420", rt, "i420", frame_graph(rt, "i420"), True, f"{TWIN} uint8"),
        ("lle realtime float32", rt, "float32", TemporalRealtime(rt), True, f"{TWIN} float32"),
        (f"{TWIN} float32", twin, "float32", twin, False, f"{TWIN} float32"),
        (f"{TWIN} uint8", twin, "uint8", FrameGraph(twin), False, f"{TWIN} uint8"),
    ]
    sizes = [parse_hw(s) for s in a.sizes.split(",")]
    graphs: list[Graph] = []
    with tempfile.TemporaryDirectory(prefix="model_speed_") as tmp:
        for i, (name, model, io, counted, video, ref) in enumerate(specs):
            path = export_graph(model, Path(tmp) / f"g{i}.onnx", io=io)
            for h, w in sizes:
                feeds = _feeds(io, h, w, state if video else None)
                g = Graph(name, path, feeds, count_params(model), _counted(counted.eval(), feeds),
                          "random weights" if model is twin else "", size=f"{w}x{h}", ref=ref)
                graphs.append(g)
                print(f"{name} {g.size}: {g.params:,} params, {g.gmacs:.3f} GMACs", file=sys.stderr, flush=True)
        labels, meaning = add_runtimes(graphs, threads=a.threads, ov_precisions=a.ov_precision.split(","),
                                       onnxruntime=a.onnxruntime, iters=a.iters, warmup=a.warmup)
    graphs.sort(key=lambda g: (int(g.size.split("x")[0]), [s[0] for s in specs].index(g.name)))
    weights = a.weights.resolve()
    lines = header("Realtime preset graphs vs a Zero-DCE++ timing twin", threads=a.threads, iters=a.iters,
                   warmup=a.warmup, meaning=meaning,
                   export_note="every graph through lle.export.onnx_export.export_onnx (the `lle export` to_onnx "
                   "step: torch.onnx.export, opset 17, dynamic N/H/W, onnxslim), then openvino.convert_model in "
                   "memory and a reshape to the static input of each size; GMACs: torch.utils.flop_counter FLOPs / 2 "
                   "(conv and matmul only)")
    lines += [
        f"lle realtime: {weights.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights} "
        f"(arch {card.arch}); its uint8/i420/float32 graphs are those of `lle export --preset realtime --io ...`, "
        "fed a zero state and alpha 0 (the single-image result). Zero-DCE++ twin: benchmarks/twins.py "
        "`ZeroDCEppTwin`, the published enhance_net_nopool (scale factor 12, 8 curve iterations) with random "
        "weights; its uint8 form wraps it in lle's `FrameGraph` (uint8 BGR frames in and out). "
        f"x {TWIN}: the twin of like I/O (uint8 twin for uint8 and i420 rows, float32 twin for float32 rows) ms / "
        "row ms at the same size; above 1 the row is faster than Zero-DCE++.",
        "",
        *table(graphs, labels, TWIN, size_col=True),
    ]
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
