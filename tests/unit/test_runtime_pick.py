"""lle.runtime_pick: the fastest runtime by median (fixed tie-break), measured once and cached per machine."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from lle.backends.base import TensorSpec
from lle.runtime_pick import ORDER, Choice, Setup, choose_runtime, pick, sample_input

RUNTIMES: tuple[str, ...] = ("onnxruntime", "openvino")


class FakeTimer:
    """Returns fixed times per runtime and counts its calls; a runtime mapped to an exception raises it."""

    def __init__(self, times: dict[str, list[float] | Exception]) -> None:
        self.times = times
        self.calls: list[tuple[str, Setup]] = []

    def __call__(self, name: str, artifact: Path, setup: Setup) -> Sequence[float]:
        self.calls.append((name, setup))
        t = self.times[name]
        if isinstance(t, Exception):
            raise t
        return t


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    path = tmp_path / "realtime-abc-i420" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(b"graph bytes")
    return path


def _setup(size: tuple[int, int] = (1920, 1080), threads: int = 1) -> Setup:
    return Setup(size, {n: {"threads": threads} for n in RUNTIMES})


# -- the decision --------------------------------------------------------------------------------------------------
def test_pick_takes_the_lowest_median_not_the_mean_or_the_best_run() -> None:
    # openvino: median 41 (one 200 ms outlier); onnxruntime: median 55 but the single fastest run (10 ms)
    ms = {"onnxruntime": [55.0, 10.0, 56.0, 54.0, 57.0], "openvino": [41.0, 40.0, 200.0, 42.0, 39.0]}
    assert pick(ms) == "openvino"
    assert pick(dict(reversed(ms.items()))) == "openvino"  # the dict's order does not matter


@pytest.mark.parametrize("order", [RUNTIMES, tuple(reversed(RUNTIMES))])
def test_a_tie_goes_to_the_fixed_order_whatever_the_input_order(order: tuple[str, ...]) -> None:
    ms = {name: [5.0, 7.0, 6.0] for name in order}
    assert pick(ms) == ORDER[0] == "onnxruntime"
    assert pick({"zeta": [6.0], "openvino": [6.0], "alpha": [6.0]}) == "openvino"  # unlisted names: after, by name
    assert pick({"zeta": [6.0], "alpha": [6.0]}) == "alpha"


def test_pick_skips_runtimes_without_times_and_refuses_none() -> None:
    assert pick({"onnxruntime": [], "openvino": [90.0]}) == "openvino"
    with pytest.raises(ValueError, match="no runtime"):
        pick({"onnxruntime": []})


def test_choice_says_what_was_measured() -> None:
    c = Choice("openvino", "measured", {"onnxruntime": [55.0, 54.0, 56.0], "openvino": [41.0, 40.0, 42.0]},
               (1920, 1080), 1)
    assert c.describe() == "measured: openvino 41.0 ms, onnxruntime 55.0 ms at 1920x1080, 1 thread"
    assert "default threads" in Choice("openvino", "cached", {"openvino": [1.0]}, (8, 8), 0).describe()
    assert Choice("onnxruntime", "only").describe() == "the only runtime installed for it"


# -- measuring and the cache ---------------------------------------------------------------------------------------
def test_measures_each_runtime_with_the_run_settings_and_caches_the_pick(graph: Path, tmp_path: Path) -> None:
    timer = FakeTimer({"onnxruntime": [55.0, 54.0, 56.0], "openvino": [41.0, 40.0, 42.0]})
    c = choose_runtime(graph, RUNTIMES, _setup(), timer=timer, folder=tmp_path / "picks")
    assert (c.backend, c.how) == ("openvino", "measured")
    assert [n for n, _ in timer.calls] == ["onnxruntime", "openvino"]
    assert all(s.size == (1920, 1080) and s.options[n]["threads"] == 1 for n, s in timer.calls)
    files = list((tmp_path / "picks").glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["backend"] == "openvino" and data["ms"]["onnxruntime"] == [55.0, 54.0, 56.0]
    key = data["key"]
    assert key["size"] == [1920, 1080] and key["threads"] == 1 and key["artifact"] == "realtime-abc-i420/model.onnx"
    assert {"cpu", "isa", "runtimes", "graph_sha256"} <= key.keys() and set(key["runtimes"]) == set(RUNTIMES)
    assert not [p for p in (tmp_path / "picks").iterdir() if p.name.startswith(".")]  # no temp file left


def test_a_cached_pick_is_reused_without_measuring(graph: Path, tmp_path: Path) -> None:
    folder = tmp_path / "picks"
    choose_runtime(graph, RUNTIMES, _setup(), timer=FakeTimer({"onnxruntime": [9.0], "openvino": [3.0]}),
                   folder=folder)
    again = FakeTimer({"onnxruntime": [1.0], "openvino": [99.0]})  # would pick onnxruntime if it were asked
    c = choose_runtime(graph, ("openvino", "onnxruntime"), _setup(), timer=again, folder=folder)
    assert (c.backend, c.how, again.calls) == ("openvino", "cached", [])
    assert c.describe() == "cached: openvino 3.0 ms, onnxruntime 9.0 ms at 1920x1080, 1 thread"


@pytest.mark.parametrize("change", ["size", "threads", "graph", "runtimes"])
def test_the_cache_is_keyed_by_size_threads_graph_and_runtimes(graph: Path, tmp_path: Path, change: str) -> None:
    folder = tmp_path / "picks"
    choose_runtime(graph, RUNTIMES, _setup(), timer=FakeTimer({"onnxruntime": [9.0], "openvino": [3.0]}),
                   folder=folder)
    setup, names = _setup(), tuple(RUNTIMES)
    if change == "size":
        setup = _setup(size=(1280, 720))
    elif change == "threads":
        setup = _setup(threads=2)
    elif change == "graph":
        graph.write_bytes(b"another graph")
    else:
        names = ("onnxruntime", "openvino", "tensorrt")
    timer = FakeTimer({"onnxruntime": [1.0], "openvino": [2.0], "tensorrt": [3.0]})
    c = choose_runtime(graph, names, setup, timer=timer, folder=folder)
    assert (c.backend, c.how) == ("onnxruntime", "measured")
    assert len(timer.calls) == len(names)
    assert len(list(folder.glob("*.json"))) == 2  # the first decision stays for its own setting


@pytest.mark.parametrize("content", ["{not json", '{"backend": "tensorrt", "ms": {}, "key": {}}', "[]", ""])
def test_a_corrupt_cache_is_ignored_with_a_warning_and_rewritten(
    graph: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    folder = tmp_path / "picks"
    choose_runtime(graph, RUNTIMES, _setup(), timer=FakeTimer({"onnxruntime": [9.0], "openvino": [3.0]}),
                   folder=folder)
    [path] = folder.glob("*.json")
    path.write_text(content)
    timer = FakeTimer({"onnxruntime": [9.0], "openvino": [3.0]})
    with caplog.at_level(logging.WARNING, logger="lle.runtime_pick"):
        c = choose_runtime(graph, RUNTIMES, _setup(), timer=timer, folder=folder)
    assert (c.backend, c.how, len(timer.calls)) == ("openvino", "measured", 2)
    assert "corrupt runtime-pick cache" in caplog.text and str(path) in caplog.text
    assert json.loads(path.read_text())["backend"] == "openvino"
    assert choose_runtime(graph, RUNTIMES, _setup(), timer=FakeTimer({}), folder=folder).how == "cached"


def test_a_runtime_that_fails_is_left_out_and_nothing_is_cached(
    graph: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from lle.errors import BackendError

    folder = tmp_path / "picks"
    timer = FakeTimer({"onnxruntime": [9.0], "openvino": BackendError("openvino cannot compile model.onnx")})
    with caplog.at_level(logging.WARNING, logger="lle.runtime_pick"):
        c = choose_runtime(graph, RUNTIMES, _setup(), timer=timer, folder=folder)
    assert (c.backend, c.how) == ("onnxruntime", "measured")
    assert "cannot measure openvino" in caplog.text
    assert not folder.exists() or not list(folder.glob("*.json"))  # measured again next time
    both = FakeTimer({n: RuntimeError("boom") for n in RUNTIMES})
    c = choose_runtime(graph, RUNTIMES, _setup(), timer=both, folder=folder)
    assert (c.backend, c.how) == ("onnxruntime", "unmeasured") and "no runtime could run" in c.describe()


def test_one_candidate_is_not_measured(graph: Path, tmp_path: Path) -> None:
    timer = FakeTimer({})
    c = choose_runtime(graph, ("openvino",), _setup(), timer=timer, folder=tmp_path / "picks")
    assert (c.backend, c.how, timer.calls) == ("openvino", "only", [])
    assert not (tmp_path / "picks").exists()


def test_an_unwritable_cache_warns_and_still_picks(
    graph: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="lle.runtime_pick"):
        c = choose_runtime(graph, RUNTIMES, _setup(), timer=FakeTimer({"onnxruntime": [2.0], "openvino": [1.0]}),
                           folder=blocker / "picks")
    assert c.backend == "openvino" and "cannot cache the runtime pick" in caplog.text


def test_the_default_folder_is_in_the_lle_cache(graph: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LLE_CACHE", str(tmp_path / "cache"))
    choose_runtime(graph, RUNTIMES, _setup(), timer=FakeTimer({"onnxruntime": [2.0], "openvino": [1.0]}))
    assert len(list((tmp_path / "cache" / "runtime-pick").glob("*.json"))) == 1


# -- the synthetic input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "shape", "dtype"),
    [
        (TensorSpec.for_i420(), (1, 34 * 3 // 2, 48), np.uint8),  # odd 47x33 padded to 48x34
        (TensorSpec.for_frames(), (1, 33, 47, 3), np.uint8),
        (TensorSpec(size_multiple=16), (1, 3, 48, 48), np.float32),
    ],
)
def test_sample_input_has_the_graph_io_at_the_frame_size(spec: TensorSpec, shape: tuple[int, ...], dtype) -> None:
    x = sample_input(spec, (47, 33))
    assert x.shape == shape and x.dtype == dtype
    assert np.array_equal(x, sample_input(spec, (47, 33)))  # seeded


def test_a_close_call_on_a_busy_cpu_is_used_but_not_cached(graph: Path, tmp_path: Path) -> None:
    """Timings that jumped around (something else loaded the CPU) and stayed close pick for this run only; the next
    run measures again and caches once the machine is quiet."""
    folder = tmp_path / "picks"
    busy = FakeTimer({"onnxruntime": [60.0, 89.6, 120.0], "openvino": [70.0, 92.6, 95.0]})
    c = choose_runtime(graph, RUNTIMES, _setup(), timer=busy, folder=folder)
    assert (c.backend, c.how) == ("onnxruntime", "measured")
    assert not folder.exists() or not list(folder.glob("*.json"))
    quiet = FakeTimer({"onnxruntime": [37.0, 37.3, 37.5], "openvino": [23.5, 23.7, 23.9]})
    c = choose_runtime(graph, RUNTIMES, _setup(), timer=quiet, folder=folder)
    assert (c.backend, c.how, len(quiet.calls)) == ("openvino", "measured", 2)
    assert len(list(folder.glob("*.json"))) == 1
    c = choose_runtime(graph, RUNTIMES, _setup(), timer=busy, folder=folder)
    assert (c.backend, c.how, len(busy.calls)) == ("openvino", "cached", 2)
