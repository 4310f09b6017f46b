"""Timing twins of published enhancers (benchmarks/twins.py): shapes, parameter counts, ONNX parity with torch.

Neither twin needs a size multiple: IAT's stride-2 convs pad and its attention takes any token count; the Zero-DCE++
twin resizes its curve map back to the input's own size (the original needs multiples of 12), so sides >= 12 work.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from torch import nn

torch = pytest.importorskip("torch")

TWINS = Path(__file__).resolve().parents[2] / "benchmarks" / "twins.py"
# class name -> (min, max) parameters: IAT about 91 K (BMVC 2022), Zero-DCE++ about 10 K (TPAMI 2021)
PARAMS = {"IATTwin": (70_000, 110_000), "ZeroDCEppTwin": (5_000, 15_000)}
SHAPES = [(1, 3, 48, 64), (1, 3, 50, 70), (2, 3, 37, 45)]


@pytest.fixture(scope="module")
def twins() -> ModuleType:
    """benchmarks/twins.py imported by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("lle_bench_twins", TWINS)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny inputs run fastest on one thread (and do not stall on a CPU that other work keeps busy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _make(twins: ModuleType, name: str) -> nn.Module:
    torch.manual_seed(0)
    return getattr(twins, name)().eval()


@pytest.mark.parametrize("name", list(PARAMS))
def test_param_count_near_published(twins: ModuleType, name: str) -> None:
    lo, hi = PARAMS[name]
    assert lo <= twins.count_params(_make(twins, name)) <= hi


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(PARAMS))
def test_output_shape_any_size(twins: ModuleType, name: str, shape: tuple[int, ...]) -> None:
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = _make(twins, name)(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", list(PARAMS))
def test_onnx_matches_torch(twins: ModuleType, name: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = _make(twins, name)
    path = tmp_path / f"{name}.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 3, 48, 64),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": axes, "output": axes})  # fmt: skip
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for shape in SHAPES:  # other sizes and batch than the export's: H, W and N are dynamic
        x = np.random.default_rng(2).random(shape, dtype=np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        (out,) = sess.run(["output"], {"input": x})
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)
