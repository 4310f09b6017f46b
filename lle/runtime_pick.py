"""Which installed runtime runs a graph fastest here: measured on the graph at the frame size, cached per machine.

``lle run PRESET --backend auto`` exports the bundled weights to ONNX, which onnxruntime and OpenVINO both run. Which
one is faster depends on the CPU (on a 2-core Xeon with AVX-512 the realtime I420 graph at 1080p takes about 40 ms
in OpenVINO and 54 ms in onnxruntime, one thread), so it is measured rather than assumed: each candidate runs the
actual graph on a synthetic input of the source's frame size, with the options (threads, hints) the run itself will
use, a few warm-up runs and then :data:`RUNS` timed ones. The fastest median wins; equal medians go to the earlier
name of :data:`ORDER`. The decision is kept as a small JSON file in ``cache_dir()/runtime-pick``, keyed by the CPU
model and ISA flags, the CPU count, the runtime versions, the graph's sha256 and name, the frame size, the device,
the precision and the backend options (threads), so it is measured once per machine and setting and reused after.
A measurement taken while something else loaded the CPU is not kept when it cannot tell the runtimes apart (see
:func:`settled`): that run uses its pick, and the next run measures again.

Example:
    >>> pick({"onnxruntime": [55.0, 54.0, 56.0], "openvino": [41.0, 40.0, 90.0]})
    'openvino'
    >>> pick({"openvino": [5.0], "onnxruntime": [5.0]})  # a tie: the earlier name of ORDER
    'onnxruntime'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lle.presets import AUTO_RUNTIMES, cache_dir

if TYPE_CHECKING:
    from lle.backends.base import Precision

__all__ = [
    "CACHE_FOLDER", "CLEAR", "ORDER", "RUNS", "STEADY", "WARMUP", "Choice", "Setup", "Timer", "cache_key",
    "choose_runtime", "pick", "sample_input", "settled", "time_runtime",
]  # fmt: skip

log = logging.getLogger(__name__)

ORDER = tuple(name for name, _ in AUTO_RUNTIMES)
"""Candidates in measuring order; on equal medians the earlier name wins (names not listed come after, by name)."""

WARMUP = 2
"""Untimed runs per candidate (the first run allocates; OpenVINO compiles a static shape on it)."""

RUNS = 5
"""Timed runs per candidate; their median decides."""

CACHE_FOLDER = "runtime-pick"
"""Folder of the decisions inside :func:`lle.presets.cache_dir`."""

_CACHE_VERSION = 1

STEADY = 1.25
"""A candidate whose median run is more than this many times its fastest was measured on a busy CPU."""

CLEAR = 0.85
"""The winner's median at or under this share of every other candidate's fastest run is a clear win, busy or not."""

Timer = Callable[[str, Path, "Setup"], Sequence[float]]
"""``timer(backend, artifact, setup) -> per-run milliseconds``; :func:`time_runtime` is the real one."""

How = Literal["measured", "cached", "only", "unmeasured"]


@dataclass(frozen=True, slots=True)
class Setup:
    """What a measurement runs: the frame size and the backend settings the run will use.

    Attributes:
        size: (width, height) of the source's frames.
        options: backend name -> the constructor options of the run (``threads``, OpenVINO's ``hint``, ...).
        device: the run's ``--device``.
        precision: the run's ``--precision``.
    """

    size: tuple[int, int]
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    device: str = "auto"
    precision: Precision = "fp32"

    @property
    def threads(self) -> int:
        """The ``threads`` option of the run (0 = each runtime's default)."""
        return max((int(o.get("threads", 0) or 0) for o in self.options.values()), default=0)


@dataclass(frozen=True, slots=True)
class Choice:
    """The runtime picked and why.

    Attributes:
        backend: the backend name that runs.
        how: ``measured`` (now), ``cached`` (an earlier measurement here), ``only`` (a single candidate) or
            ``unmeasured`` (no measurement possible: see ``note``).
        ms: candidate -> the timed runs, milliseconds (empty unless measured or cached).
        size: (width, height) measured at, when known.
        threads: the ``threads`` setting measured with (0 = the runtimes' defaults).
        note: why nothing was measured (``how == "unmeasured"``).
    """

    backend: str
    how: How
    ms: Mapping[str, Sequence[float]] = field(default_factory=dict)
    size: tuple[int, int] | None = None
    threads: int = 0
    note: str = ""

    @property
    def medians(self) -> dict[str, float]:
        """Candidate -> median milliseconds, fastest first (equal medians in :data:`ORDER`)."""
        med = {k: float(statistics.median(v)) for k, v in self.ms.items() if len(v)}
        return dict(sorted(med.items(), key=lambda kv: (kv[1], *_rank(kv[0]))))

    def describe(self) -> str:
        """One line: ``measured: openvino 41.0 ms, onnxruntime 55.0 ms at 1920x1080, 1 thread``."""
        if self.how == "only":
            return "the only runtime installed for it"
        if self.how == "unmeasured":
            return f"not measured ({self.note})"
        times = ", ".join(f"{k} {v:.1f} ms" for k, v in self.medians.items())
        where = f" at {self.size[0]}x{self.size[1]}" if self.size else ""
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}" if self.threads else "default threads"
        return f"{self.how}: {times}{where}, {threads}"


def _rank(name: str) -> tuple[int, str]:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def pick(measurements: Mapping[str, Sequence[float]]) -> str:
    """The runtime with the lowest median time; equal medians go to the earlier name of :data:`ORDER`.

    Args:
        measurements: runtime -> per-run milliseconds. Runtimes without a time are skipped.

    Raises:
        ValueError: no runtime has a time.
    """
    usable = {k: v for k, v in measurements.items() if len(v)}
    if not usable:
        raise ValueError("no runtime was measured")
    return min(usable, key=lambda k: (float(statistics.median(usable[k])), *_rank(k)))


def settled(measurements: Mapping[str, Sequence[float]]) -> bool:
    """Whether a decision from ``measurements`` is worth caching.

    It is when every candidate ran steadily (median within :data:`STEADY` of its fastest run), or when the winner
    is clearly faster (its median under :data:`CLEAR` of every other candidate's fastest run). A close call on a busy
    CPU (a training or an encode beside it) is not.

        >>> settled({"onnxruntime": [55.0, 54.0, 56.0], "openvino": [41.0, 40.0, 42.0]})
        True
        >>> settled({"onnxruntime": [60.0, 89.6, 120.0], "openvino": [70.0, 92.6, 95.0]})  # busy and close
        False
        >>> settled({"onnxruntime": [60.0, 89.6, 120.0], "openvino": [21.0, 30.0, 45.0]})  # busy, but clear
        True
    """
    usable = {k: sorted(v) for k, v in measurements.items() if len(v)}
    if len(usable) < 2:
        return True
    if all(statistics.median(v) <= STEADY * v[0] for v in usable.values()):
        return True
    best = pick(usable)
    return all(statistics.median(usable[best]) <= CLEAR * v[0] for k, v in usable.items() if k != best)


def sample_input(spec: Any, size: tuple[int, int]) -> np.ndarray:
    """A synthetic batch of one frame of ``size`` (width, height) as the graph of ``spec`` takes it.

    I420 graphs get (1, H*3/2, W) uint8 (odd sizes padded to even, as :func:`lle.io.frames.bgr_to_i420` does), frame
    graphs (1, H, W, 3) uint8, tensor graphs (1, 3, H, W) float32 padded to the graph's size multiple (as
    :class:`lle.pipeline.Enhancer` does). The content is seeded noise: these graphs take the same time for any.
    """
    w, h = size
    rng = np.random.default_rng(0)
    if spec.i420:
        w, h = w + w % 2, h + h % 2
        return rng.integers(0, 256, (1, h * 3 // 2, w), dtype=np.uint8)
    if spec.frames:
        return rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    m = max(1, int(spec.size_multiple))
    return rng.random((1, 3, -(-h // m) * m, -(-w // m) * m), dtype=np.float32)


def time_runtime(name: str, artifact: Path, setup: Setup, *, warmup: int = WARMUP, runs: int = RUNS) -> list[float]:
    """Milliseconds of ``runs`` runs of ``artifact`` in backend ``name`` (after ``warmup`` untimed ones).

    The backend is built as the run builds it (``setup``'s device, precision and options for ``name``) and runs a
    :func:`sample_input` of ``setup.size``; temporal graphs run their stateful step, as video does.

    Raises:
        LLEError: the backend cannot load or run the artifact.
    """
    from lle.backends.registry import backend_class

    be = backend_class(name)(artifact, device=setup.device, precision=setup.precision, **setup.options.get(name, {}))
    with be:
        x = sample_input(be.input_spec, setup.size)
        state = be.zero_state(x.shape[0]) if be.stateful else None

        def once() -> None:
            if state is None:
                be.infer(x)
            else:
                be.infer_stateful(x, state, 0.85)

        for _ in range(warmup):
            once()
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            once()
            out.append((time.perf_counter() - t0) * 1000.0)
        return out


def cache_key(artifact: Path, candidates: Sequence[str], setup: Setup) -> dict[str, Any]:
    """What a decision depends on: CPU model, ISA flags and count, runtime versions, graph, size, device, options."""
    from lle.backends.registry import RUNTIME_MODULES
    from lle.export.manifest import sha256_file
    from lle.host import cpu_features, dist_version

    cpu, isa = cpu_features()
    return {
        "version": _CACHE_VERSION,
        "cpu": cpu,
        "isa": isa,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "runtimes": {n: dist_version(RUNTIME_MODULES.get(n, n)) or "unknown" for n in candidates},
        "artifact": _label(artifact),
        "graph_sha256": sha256_file(artifact),
        "size": list(setup.size),
        "threads": setup.threads,
        "device": setup.device,
        "precision": setup.precision,
        "options": {n: {k: str(v) for k, v in sorted(setup.options.get(n, {}).items())} for n in candidates},
    }


def choose_runtime(
    artifact: Path, candidates: Sequence[str], setup: Setup, *, timer: Timer | None = None,
    folder: Path | None = None,
) -> Choice:  # fmt: skip
    """The fastest of ``candidates`` for ``artifact`` under ``setup``: cached when measured before, else measured.

    Candidates are measured in :data:`ORDER`. One that fails to load or run is left out (with a warning); a decision
    is cached only when every candidate was measured. A cache file that cannot be read is ignored with a warning and
    rewritten; one that cannot be written is skipped with a warning.

    Args:
        artifact: the graph every candidate runs.
        candidates: backend names (at least one).
        setup: frame size and the run's backend settings.
        timer: measures one candidate (default :func:`time_runtime`); tests pass a fake.
        folder: where decisions are cached (default ``lle.presets.cache_dir() / CACHE_FOLDER``).

    Raises:
        ValueError: no candidates.
    """
    names = sorted(dict.fromkeys(candidates), key=_rank)
    if not names:
        raise ValueError("no candidate runtimes")
    if len(names) == 1:
        log.info("runtime for %s: %s (the only one installed)", _label(artifact), names[0])
        return Choice(names[0], "only", size=setup.size, threads=setup.threads)
    folder = cache_dir() / CACHE_FOLDER if folder is None else folder
    key = cache_key(artifact, names, setup)
    path = folder / (hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16] + ".json")
    cached = _read(path, key, names)
    if cached is not None:
        choice = Choice(cached[0], "cached", cached[1], setup.size, setup.threads)
        log.info("runtime for %s: %s (%s; %s)", _label(artifact), choice.backend, choice.describe(), path)
        return choice
    timer = timer or time_runtime
    ms: dict[str, list[float]] = {}
    for name in names:
        try:
            ms[name] = [float(t) for t in timer(name, artifact, setup)]
        except Exception as err:  # noqa: BLE001  (a runtime that cannot run the graph is not a candidate)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            log.warning("cannot measure %s on %s: %s", name, _label(artifact), first)
    if not any(ms.values()):
        note = f"no runtime could run the graph; trying {names[0]}"
        return Choice(names[0], "unmeasured", size=setup.size, threads=setup.threads, note=note)
    choice = Choice(pick(ms), "measured", ms, setup.size, setup.threads)
    log.info("runtime for %s: %s (%s)", _label(artifact), choice.backend, choice.describe())
    if not settled(ms):
        log.info("runtime timings varied (a busy CPU?) and were close: not cached, the next run measures again")
    elif all(ms.get(n) for n in names):
        _write(path, key, choice)
    return choice


def _label(artifact: Path) -> str:
    """``folder/file`` of an artifact (cached exports are all ``model.onnx``; their folder names the graph)."""
    return f"{artifact.parent.name}/{artifact.name}"


def _read(path: Path, key: Mapping[str, Any], names: Sequence[str]) -> tuple[str, dict[str, list[float]]] | None:
    """``(backend, ms)`` of the decision cached at ``path`` for ``key``; None when absent, stale or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("ignoring the runtime-pick cache %s: %s", path, err.strerror or err)
        return None
    try:
        data = json.loads(text)
        backend, raw = data["backend"], data["ms"]
        ms = {str(k): [float(t) for t in v] for k, v in raw.items()}
        if backend not in names or not all(ms.get(n) for n in names):
            raise ValueError(f"backend {backend!r} or times do not fit {list(names)}")
        stored_key = data["key"]
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        log.warning("ignoring the corrupt runtime-pick cache %s (%s: %s); measuring again", path,
                    type(err).__name__, err)
        return None
    if stored_key != key:  # a hash collision or a hand-edited file: measure again
        log.debug("runtime-pick cache %s is for another setting", path)
        return None
    return backend, ms


def _write(path: Path, key: Mapping[str, Any], choice: Choice) -> None:
    from lle._atomic import atomic_write_bytes

    data = {
        "backend": choice.backend,
        "ms": {k: [round(t, 4) for t in v] for k, v in choice.ms.items()},
        "summary": choice.describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "key": key,
    }
    try:
        atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
    except OSError as err:
        log.warning("cannot cache the runtime pick in %s: %s", path.parent, err.strerror or err)
