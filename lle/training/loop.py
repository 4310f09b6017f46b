"""The training loop: AdamW + warmup/cosine, EMA, bf16/fp16 autocast, periodic validation, resumable checkpoints.

Runs single-process or under ``torchrun`` (DDP: gloo on CPU, nccl on CUDA; each rank gets a DistributedSampler shard).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from lle._atomic import atomic_path
from lle.config import dump_config, to_dict
from lle.data.datasets import Pair
from lle.errors import ConfigError
from lle.models.checkpoint import ModelCard, load_card, save_model
from lle.models.registry import create_model
from lle.pipeline import pad_to_multiple
from lle.training.config import TrainConfig
from lle.training.data import PairedTrainSet, build_data
from lle.training.losses import CompositeLoss
from lle.training.metrics import psnr, psnr_gt_mean, ssim

__all__ = ["TrainResult", "evaluate_pairs", "lr_factor", "train"]

log = logging.getLogger(__name__)

StepProgress = Callable[[int, int, Mapping[str, float]], None]


@dataclass(slots=True)
class TrainResult:
    out_dir: Path
    best: Path
    last: Path
    step: int
    best_score: float
    val: dict[str, dict[str, float]] = field(default_factory=dict)
    minutes: float = 0.0


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "none":
        return None
    if amp == "auto":
        if device.type == "cpu":
            # bf16 autocast is only a win with native bf16 units (AVX512-BF16/AMX); emulated it is ~25x slower.
            return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
        return torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


@torch.no_grad()
def evaluate_pairs(model: nn.Module, pairs: list[Pair], device: torch.device) -> dict[str, float]:
    """Mean PSNR, GT-mean PSNR and SSIM of ``model`` over full images (padded to the model's multiple)."""
    model.eval()
    mult = int(getattr(model, "size_multiple", 16))
    rows = []
    for p in pairs:
        low, hw = pad_to_multiple(p.low.transpose(2, 0, 1)[None], mult)
        y = model(torch.from_numpy(np.ascontiguousarray(low)).to(device)).float().clamp(0, 1)
        y = y[..., : hw[0], : hw[1]].cpu()
        ref = torch.from_numpy(p.ref.transpose(2, 0, 1)[None].copy())
        rows.append((float(psnr(y, ref)), float(psnr_gt_mean(y, ref)), float(ssim(y, ref))))
    if not rows:
        raise ValueError("evaluate_pairs needs at least one pair")
    a = np.array(rows, dtype=np.float64)
    return {"psnr": float(a[:, 0].mean()), "psnr_gt_mean": float(a[:, 1].mean()), "ssim": float(a[:, 2].mean())}


def _warm_start_state(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """Weights of ``path`` mapped onto ``model`` (a model may convert an older layout with ``adapt_state_dict``).

    The preset is checked by the caller against ``cfg.model.preset``.

    Raises:
        ConfigError: the weights do not fit even after adaptation.
    """
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(path)).items()}
    adapt = getattr(model, "adapt_state_dict", None)
    if callable(adapt):
        state = adapt(state)
    own = model.state_dict()
    bad = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
    if bad:
        raise ConfigError(
            f"init_weights {path} do not fit this model: "
            f"{len(bad)} tensors missing or of another shape, e.g. {bad[:3]}",
            hint="warm-start from weights of the same preset",
        )
    return {k: state[k] for k in own}


def lr_factor(cfg: TrainConfig, step: int, minutes: float) -> float:
    """Linear warm-up, then cosine decay over whichever budget runs out first: steps or ``max_minutes``."""
    o = cfg.optim
    if step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    t = (step - o.warmup_steps) / max(1, cfg.steps - o.warmup_steps)
    if cfg.max_minutes > 0:
        t = max(t, minutes / cfg.max_minutes)
    t = min(1.0, t)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Make SIGTERM (cluster pre-emption, ``kill``) unwind like Ctrl-C, so ``last.pt`` is saved on the way out."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _EpochSampler(Sampler[int]):
    """The epoch's seeded permutation of the training set, from position ``skip`` on.

    A resumed run skips the items the interrupted one already consumed in that epoch, so it sees the same batches
    in the same order as an uninterrupted run (items themselves are seeded by ``(seed, epoch, index)``).
    """

    def __init__(self, n: int, seed: int, skip: int = 0) -> None:
        self.order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()[skip:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def _drop_rows_after(path: Path, step: int) -> None:
    """Remove CSV log rows of steps after ``step`` (written after the checkpoint a resumed run restarts from)."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    keep = [r for r in rows if r and r[0].isdigit() and int(r[0]) <= step]
    if len(keep) != len(rows):
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            csv.writer(f).writerows(keep)


def _tensorboard(out: Path) -> Any:
    """A TensorBoard writer when the tensorboard package is installed, else None (CSV logs are always written)."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tb"))


def _score(val: dict[str, dict[str, float]]) -> float:
    return float(np.mean([v["psnr"] for v in val.values()])) if val else -math.inf


def _card(cfg: TrainConfig, model: nn.Module, step: int, val: dict[str, Any], minutes: float) -> ModelCard:
    return ModelCard(
        preset=cfg.model.preset,
        arch=dict(cfg.model.arch),
        size_multiple=int(getattr(model, "size_multiple", 16)),
        training={
            "steps": step,
            "batch": cfg.batch,
            "crop": cfg.data.crop,
            "data": {"pairs": cfg.data.pairs, "clean": cfg.data.clean, "synth": to_dict(cfg.data.synth)},
            "loss": to_dict(cfg.loss),
            "minutes": round(minutes, 1),
            "init_weights": cfg.init_weights,
            "device": str(torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"),
            "torch": torch.__version__,
        },
        metrics={"validation": val},
    )


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: StepProgress | None = None,
    note: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``cfg.model.preset``; write ``best.safetensors`` (EMA weights + card), ``last.pt`` and CSV logs to out_dir.

    Args:
        resume: continue from ``out_dir/last.pt`` (model, optimiser, scheduler, EMA, RNG, step).
        progress: called as ``progress(step, total, {"loss": ..., "lr": ..., "it/s": ...})``.
        note: receives human-readable status lines (data loading, validation results).
    """
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    device = _device(cfg.device)
    if ddp:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    main = rank == 0
    say = note if (note and main) else (lambda s: log.info(s) if main else None)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)
    out = Path(cfg.out_dir)
    last_path, best_path = out / "last.pt", out / "best.safetensors"
    if resume and not last_path.is_file():
        raise ConfigError(f"--resume: no checkpoint at {last_path}", hint="start without --resume")
    out.mkdir(parents=True, exist_ok=True)
    if main:
        dump_config(cfg, out / "config.resolved.yaml")

    data = build_data(cfg.data, cfg.seed, progress=say)
    dataset = PairedTrainSet(data, cfg.data, cfg.seed)
    sampler: Any = DistributedSampler(dataset, seed=cfg.seed) if ddp else None
    if len(dataset) < cfg.batch:
        raise ConfigError(
            f"batch={cfg.batch} is larger than the training set ({len(dataset)} items)",
            hint="lower batch, raise data.real_repeat or add data",
        )
    say(
        f"training on {len(data.real)} real pairs + {len(data.clean)} clean photos; val sets: "
        + (", ".join(f"{k} ({len(v)})" for k, v in data.val.items()) or "none (best.safetensors is the latest step)")
    )

    model = create_model(cfg.model.preset, **cfg.model.arch).to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    if cfg.init_weights and not resume:
        init_card = load_card(Path(cfg.init_weights))
        if init_card.preset != cfg.model.preset:
            raise ConfigError(
                f"init_weights {cfg.init_weights} are preset {init_card.preset!r}, not {cfg.model.preset!r}",
                hint="warm-start from weights of the same preset",
            )
        model.load_state_dict(_warm_start_state(model, Path(cfg.init_weights)))
        say(f"warm start from {cfg.init_weights}")
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if ddp else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    loss_fn = CompositeLoss(cfg.loss).to(device)
    amp = _amp_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)

    step, epoch, done_in_epoch, best, val, elapsed0 = 0, 0, 0, -math.inf, {}, 0.0
    if resume:
        st = torch.load(last_path, map_location=device, weights_only=True)
        model.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        step, epoch, best, elapsed0 = st["step"], st["epoch"], st["best"], st.get("minutes", 0.0)
        done_in_epoch = int(st.get("batches_in_epoch", 0))
        torch.set_rng_state(st["rng"])
        if main:  # rows a killed run logged after its last checkpoint would otherwise appear twice
            for name in ("train.csv", "val.csv"):
                _drop_rows_after(out / name, step)
        say(f"resumed at step {step} (best val PSNR {best:.2f})")

    def save_last() -> None:
        if not main:
            return
        st = {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "opt": opt.state_dict(),
            "step": step,
            "epoch": epoch,
            "batches_in_epoch": done_in_epoch,
            "best": best,
            "rng": torch.get_rng_state(),
            "minutes": elapsed0 + (time.time() - t0) / 60,
        }
        with atomic_path(last_path) as tmp:
            torch.save(st, tmp)

    def validate() -> None:
        nonlocal best, val
        if not main:
            return
        val = {k: evaluate_pairs(ema, v, device) for k, v in data.val.items()}
        score = _score(val)
        minutes = elapsed0 + (time.time() - t0) / 60
        with (out / "val.csv").open("a", newline="") as f:
            w = csv.writer(f)
            for k, v in val.items():
                w.writerow([step, k, f"{v['psnr']:.3f}", f"{v['psnr_gt_mean']:.3f}", f"{v['ssim']:.4f}"])
        if score > best or not val:  # without validation data, "best" is simply the latest
            best = max(best, score)
            save_model(ema, best_path, _card(cfg, ema, step, val, minutes))
        save_model(ema, out / "last.safetensors", _card(cfg, ema, step, val, minutes))
        if cfg.keep_val_weights:
            save_model(ema, out / f"val_{step}.safetensors", _card(cfg, ema, step, val, minutes))
        say(
            f"step {step}: "
            + "  ".join(f"{k} {v['psnr']:.2f} dB / {v['ssim']:.3f}" for k, v in val.items())
            + f"  (best {best:.2f})"
        )

    t0 = time.time()
    last_ckpt = time.time()
    stack = contextlib.ExitStack()
    stack.enter_context(_stop_on_sigterm())
    log_f = (out / "train.csv").open("a", newline="") if main else None
    tb = _tensorboard(out) if main else None
    logw = csv.writer(log_f) if log_f else None
    tick, tick_step = time.time(), step
    try:
        while step < cfg.steps:
            dataset.set_epoch(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
            order = sampler or _EpochSampler(len(dataset), cfg.seed * 1000 + epoch, skip=done_in_epoch * cfg.batch)
            loader = DataLoader(dataset, batch_size=cfg.batch, sampler=order, drop_last=True,
                                num_workers=cfg.workers, pin_memory=device.type == "cuda")
            for low, ref in loader:
                net.train()
                low = low.to(device, non_blocking=True, memory_format=torch.channels_last)
                ref = ref.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    pred = net(low)
                loss, parts = loss_fn(pred.float(), ref)
                minutes = elapsed0 + (time.time() - t0) / 60
                for g in opt.param_groups:
                    g["lr"] = cfg.optim.lr * lr_factor(cfg, step, minutes)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                scaler.step(opt)
                scaler.update()
                step += 1
                done_in_epoch += 1
                with torch.no_grad():
                    d = min(cfg.optim.ema_decay, (1 + step) / (10 + step))
                    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                        pe.lerp_(pm.detach(), 1 - d)
                if main and (step % 20 == 0 or step == cfg.steps):
                    now = time.time()
                    ips = (step - tick_step) / max(1e-9, now - tick)
                    tick, tick_step = now, step
                    info = {"loss": float(loss.detach()), "lr": opt.param_groups[0]["lr"], "it/s": ips, **parts}
                    if logw:
                        logw.writerow([step, *(f"{v:.5g}" for v in info.values())])
                        log_f.flush()  # type: ignore[union-attr]
                    if tb is not None:
                        for k, v in info.items():
                            tb.add_scalar(f"train/{k}", v, step)
                    if progress:
                        progress(step, cfg.steps, info)
                if step % cfg.val_every == 0 or step == cfg.steps:
                    validate()
                if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
                    save_last()
                    last_ckpt = time.time()
                over = cfg.max_minutes > 0 and elapsed0 + (time.time() - t0) / 60 > cfg.max_minutes
                if step >= cfg.steps or over:
                    break
            else:  # the epoch ran to its end (a break keeps the position, so a resumed run continues mid-epoch)
                epoch += 1
                done_in_epoch = 0
            if cfg.max_minutes > 0 and elapsed0 + (time.time() - t0) / 60 > cfg.max_minutes:
                say(f"time budget of {cfg.max_minutes} min reached at step {step}")
                if step % cfg.val_every:
                    validate()
                break
    finally:
        save_last()
        stack.close()
        if log_f:
            log_f.close()
        if tb is not None:
            tb.close()
        if ddp:
            torch.distributed.destroy_process_group()
    if main and not best_path.exists():
        validate()
    return TrainResult(out, best_path, last_path, step, best, val, elapsed0 + (time.time() - t0) / 60)
