from __future__ import annotations

import json

import numpy as np
import pytest

from lle.export.manifest import read_manifest
from lle.export.onnx_export import (
    ALPHA_NAME,
    INPUT_NAME,
    OUTPUT_NAME,
    STATE_NAME,
    STATE_OUT_NAME,
    graph_feed,
    load_reference,
    onnx_io,
    read_onnx_metadata,
    run_onnx,
)
from lle.presets import PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_onnx_matches_torch_at_two_sizes(exported, tiny_weights, preset) -> None:
    import torch

    from lle.models.checkpoint import load_model

    path, _ = exported[preset]
    model, card = load_model(tiny_weights[preset])
    m = card.size_multiple
    xs = [np.random.default_rng(s).random((1, 3, h, w), dtype=np.float32) for s, (h, w) in
          enumerate([(2 * m, 3 * m), (48, 80) if m == 4 else (3 * m, 5 * m)])]
    with torch.no_grad():
        refs = [model(torch.from_numpy(x)).numpy() for x in xs]
    for x, y, r in zip(xs, run_onnx(path, xs), refs, strict=True):
        assert y.shape == x.shape
        assert float(np.abs(y - r).max()) <= 1e-4
    man = read_manifest(path)
    assert man["parity"]["passed"] and man["parity"]["max_abs"] <= 1e-4
    assert len(man["parity_inputs"]) == 2 and man["io"]["opset"] >= 17
    assert man["sha256"]["model.onnx"] and man["tools"]["onnx"]


def test_onnx_io_is_dynamic_and_video_form_is_kept(exported) -> None:
    q = onnx_io(exported["quality"][0])
    assert q["inputs"] == {INPUT_NAME: ["batch", 3, "height", "width"]}
    assert list(q["outputs"]) == [OUTPUT_NAME]
    r = onnx_io(exported["realtime"][0])
    assert set(r["inputs"]) == {INPUT_NAME, STATE_NAME, ALPHA_NAME}
    assert set(r["outputs"]) == {OUTPUT_NAME, STATE_OUT_NAME}
    assert r["inputs"][STATE_NAME][1:] == [5, 32, 32]


def test_realtime_zero_state_feed_is_single_image(exported) -> None:
    path, _ = exported["realtime"]
    feed = graph_feed(path)(np.zeros((2, 3, 16, 24), np.float32))
    assert feed[STATE_NAME].shape == (2, 5, 32, 32) and not feed[STATE_NAME].any()
    assert feed[ALPHA_NAME].shape == (1,)


def test_metadata_round_trip(exported, tiny_weights) -> None:
    from lle.models.checkpoint import load_card

    for preset in PRESETS:
        meta = read_onnx_metadata(exported[preset][0])
        card = load_card(tiny_weights[preset])
        assert meta["lle.preset"] == preset
        assert meta["lle.size_multiple"] == str(card.size_multiple)
        assert "[0, 1]" in meta["lle.normalisation"]
        assert json.loads(meta["lle.model_card"])["arch"] == card.arch
    assert read_onnx_metadata(exported["quality"][0])["lle.exposure_cap"] == "0.2,0.4,0.25,0.4,0.7,0.7"
    assert "lle.exposure_cap" not in read_onnx_metadata(exported["realtime"][0])


@pytest.mark.parametrize("backend", ["ort", "openvino", "torch"])
def test_backends_report_the_exposure_cap_for_tiling(exported, tiny_weights, backend) -> None:
    """Every local backend tells the Enhancer the quality card's exposure cap (so tiles keep the whole image's
    exposure); make_enhancer passes it on."""
    from lle.backends.registry import load_backend
    from lle.enhance import make_enhancer

    pytest.importorskip({"ort": "onnxruntime", "openvino": "openvino", "torch": "torch"}[backend])
    path = tiny_weights["quality"] if backend == "torch" else exported["quality"][0]
    with load_backend(backend, path) as b:
        assert b.input_spec.exposure_cap == (0.2, 0.4, 0.25, 0.4, 0.7, 0.7)
        assert make_enhancer(b).exposure_cap == (0.2, 0.4, 0.25, 0.4, 0.7, 0.7)
    with load_backend(backend, tiny_weights["realtime"] if backend == "torch" else exported["realtime"][0]) as b:
        assert b.input_spec.exposure_cap is None


def test_reference_has_random_and_held_out_inputs(exported) -> None:
    ref = load_reference(exported["quality"][0])
    assert len(ref["rand_x"]) == len(ref["rand_y"]) == 2
    assert len(ref["hold_x"]) == 4 and ref["hold_x"][0].shape == (1, 3, 64, 96)


def test_fp16_autocast_keeps_fp32_io_and_matches(exported, export_cfg, tmp_path) -> None:
    import onnx

    from lle.export.onnx_fp16 import to_onnx_fp16

    for preset in PRESETS:
        src, _ = exported[preset]
        (tmp_path / preset).mkdir()
        # Steps read the reference beside their source, so work on a copy in its own folder.
        for f in src.parent.iterdir():
            (tmp_path / preset / f.name).write_bytes(f.read_bytes())
        path = to_onnx_fp16(tmp_path / preset / src.name, tmp_path / preset, export_cfg, None)
        m = onnx.load(str(path))
        io_types = {v.name: v.type.tensor_type.elem_type for v in [*m.graph.input, *m.graph.output]}
        assert set(io_types.values()) == {onnx.TensorProto.FLOAT}
        inits = {t.name: t.data_type for t in m.graph.initializer}
        conv_w = [inits[n.input[1]] for n in m.graph.node if n.op_type == "Conv" and n.input[1] in inits]
        assert conv_w and set(conv_w) == {onnx.TensorProto.FLOAT16}
        assert read_manifest(path)["parity"]["max_abs"] <= 1e-2
