"""``lle enhance --ray``: a photo/video library as a Ray Data job, one backend per actor, resumable.

Every image and every whole video is one row; an actor pool of :class:`~lle.scale.worker.EnhanceWorker` (one
backend loaded per actor, not per item) maps them. Outputs are written atomically under the names ``lle enhance``
gives, finished outputs are skipped (a crashed job is resumed by running it again), and a file that fails is
reported instead of ending the job. Workers read inputs and write outputs by path, so on a multi-node cluster the
input, output and weights paths must be the same shared filesystem on every node.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lle._lazy import require
from lle.errors import BackendError, ConfigError, InputError, LLEError
from lle.scale.jobs import BatchResult, Failure, Job, pending
from lle.scale.worker import EnhanceWorker, WorkerConfig

__all__ = ["RayConfig", "check_address", "enhance_on_ray"]

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


def check_address(address: str | None) -> str | None:
    """``address`` if it is one Ray connects to; "" becomes None (Ray's default).

    Accepted: None, "", ``auto``, ``local``, ``HOST:PORT`` and ``ray://HOST:PORT``.

    Example:
        >>> check_address("10.0.0.5:6379"), check_address(""), check_address("auto")
        ('10.0.0.5:6379', None, 'auto')

    Raises:
        InputError: anything else (also the likely slip of an input folder taken as the address).
    """
    if not address:
        return None
    if address in {"auto", "local"} or _ADDRESS.match(address):
        return address
    looks_like_input = Path(address).exists()
    raise InputError(
        f"--ray {address!r} is not a Ray address" + (" (it is a file or folder)" if looks_like_input else ""),
        hint="give auto, local, HOST:PORT or ray://HOST:PORT, or put a bare --ray after the inputs",
    )


@dataclass(frozen=True, slots=True)
class RayConfig:
    """Where and how wide a batch job runs.

    ``address``: see :func:`check_address`; None uses ``ray.init()``'s default (``RAY_ADDRESS``, else the latest
    cluster started on this machine, else a new local one). An already connected driver (``ray.init`` called by
    the caller) is used as it is. ``concurrency``: actors (0: as many as the cluster's CPUs, or GPUs when
    ``num_gpus`` > 0, allow). ``num_cpus`` / ``num_gpus``: reserved per actor. ``batch_size``: rows per actor call.
    """

    address: str | None = None
    concurrency: int = 0
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 0 or self.batch_size < 1:
            raise ConfigError(f"concurrency must be >= 0 and batch_size >= 1, got {self.concurrency} and "
                              f"{self.batch_size}")  # fmt: skip
        if self.num_cpus <= 0 or self.num_gpus < 0:
            raise ConfigError(f"num_cpus must be > 0 and num_gpus >= 0, got {self.num_cpus} and {self.num_gpus}")
        object.__setattr__(self, "address", check_address(self.address))


def _pool_size(ray: Any, cfg: RayConfig, jobs: int) -> int:
    if cfg.concurrency:
        return min(cfg.concurrency, jobs)
    res = ray.cluster_resources()
    have, per = (res.get("GPU", 0.0), cfg.num_gpus) if cfg.num_gpus > 0 else (res.get("CPU", 0.0), cfg.num_cpus)
    n = int(math.floor(have / per + 1e-9))
    if n < 1:
        kind = "GPU" if cfg.num_gpus > 0 else "CPU"
        raise ConfigError(f"the Ray cluster has {have:g} {kind}(s), one actor needs {per:g}",
                          hint=f"lower --num-{kind.lower()}s or add nodes")  # fmt: skip
    return min(n, jobs)


_RAISED = re.compile(r"^lle\.errors\.(?P<cls>\w+): (?P<msg>.+)$", re.MULTILINE)


def _ray_error(err: Exception) -> LLEError:
    """The user-facing error inside a Ray failure.

    An LLEError raised by a worker comes back as the cause, or (when the actor failed to start) only as text in the
    error message; its last ``lle.errors.X: message`` line becomes that error again.
    """
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, LLEError):
            return cause
        cause = getattr(cause, "cause", None) or cause.__cause__
    found = list(_RAISED.finditer(str(getattr(err, "error_msg", "") or err)))
    if found:
        cls = {c.__name__: c for c in (ConfigError, InputError, BackendError)}.get(found[-1]["cls"], LLEError)
        return cls(f"a Ray worker could not start: {found[-1]['msg'].strip()}")
    first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return BackendError(f"the Ray job failed: {first[:300]}", hint="see the Ray logs (/tmp/ray/session_latest/logs)")


def _check_weights(weights: Path) -> None:
    """Fail before any cluster starts on weights that are missing, card-less or not safetensors (no torch needed)."""
    from safetensors import safe_open

    from lle.models.checkpoint import load_card

    load_card(weights)
    try:
        with safe_open(str(weights), framework="numpy") as f:
            f.keys()
    except Exception as err:  # noqa: BLE001  (safetensors raises its own SafetensorError)
        raise InputError(f"{weights} is not a safetensors weights file: {str(err).splitlines()[0]}",
                         hint="pass --weights PATH to a .safetensors file saved by lle") from err  # fmt: skip


def enhance_on_ray(
    jobs: Sequence[Job], worker: WorkerConfig, ray_config: RayConfig | None = None, *,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:  # fmt: skip
    """Run ``jobs`` (from :func:`lle.scale.jobs.plan_jobs`) on a Ray cluster with Ray Data.

    Finished outputs are skipped and temporary files of an interrupted run removed first. ``progress(done, total)``
    is called as rows finish (``total`` counts the jobs still to do). Rows whose worker died (after Ray's retries)
    are reported as failures too; their outputs are absent, so running again retries them.

    Raises:
        MissingDependencyError: Ray Data is not installed (``pip install 'lle[ray]'``).
        ConfigError / InputError: bad options or weights.
        BackendError: the job could not run (e.g. the cluster cannot be reached).
    """
    cfg = ray_config or RayConfig()
    _check_weights(Path(worker.weights))
    t0 = time.perf_counter()
    todo, done = pending(jobs)
    skipped = [j.dst for j in done]
    if skipped:
        log.info("%d output(s) already finished, skipped", len(skipped))
    if not todo:
        return BatchResult([], skipped, [], time.perf_counter() - t0)
    ray = require("ray", extra="ray")
    rd = require("ray.data", extra="ray")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=cfg.address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise BackendError(f"cannot connect to the Ray cluster at {cfg.address or 'the default address'}: {err}",
                               hint="start one with `ray start --head`, or pass --ray ADDRESS") from err  # fmt: skip
    elif cfg.address:
        log.info("Ray is already initialised in this process; using that connection, not %s", cfg.address)
    ctx = rd.DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "max_errored_blocks", "print_on_execution_start")
             if hasattr(ctx, k)}  # fmt: skip
    written: list[Path] = []
    failed: list[Failure] = []
    seen: set[str] = set()
    workers = 0
    try:
        workers = _pool_size(ray, cfg, len(todo))
        # Our own progress bar replaces Ray's; a row lost to a dead worker becomes a failure, not a failed job.
        ctx.enable_progress_bars = False
        ctx.max_errored_blocks = -1
        if hasattr(ctx, "print_on_execution_start"):
            ctx.print_on_execution_start = False
        rows = [{"src": str(j.src), "dst": str(j.dst), "kind": j.kind} for j in todo]
        ds = rd.from_items(rows, override_num_blocks=math.ceil(len(rows) / cfg.batch_size)).map_batches(
            EnhanceWorker, fn_constructor_kwargs={"config": worker}, batch_size=cfg.batch_size,
            batch_format="numpy", compute=rd.ActorPoolStrategy(size=workers), num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus or None,
        )  # fmt: skip
        for row in ds.iter_rows():
            seen.add(str(row["src"]))
            if bool(row["ok"]):
                written.append(Path(str(row["dst"])))
            else:
                failed.append(Failure(Path(str(row["src"])), str(row["error"])))
            if progress is not None:
                progress(len(seen), len(todo))
    except ray.exceptions.RayError as err:
        raise _ray_error(err) from err
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)
        if started:
            ray.shutdown()
    failed += [Failure(j.src, "lost: its worker died (see the Ray logs); run again to retry")
               for j in todo if str(j.src) not in seen]  # fmt: skip
    return BatchResult(written, skipped, failed, time.perf_counter() - t0, workers)
