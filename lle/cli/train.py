"""``lle train``: train a preset from a YAML recipe with CLI overrides."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from lle.cli._common import cli_errors, err_console, out_console, progress_bar

__all__ = ["register"]


@cli_errors
def train(
    config: Annotated[
        Path | None, typer.Option("-c", "--config", help="Recipe YAML, e.g. training/configs/quality.yaml.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a field: --set steps=5000 --set data.crop=96.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT_DIR/last.pt.")] = False,
) -> None:
    """Train a preset. Writes best.safetensors (+ .json card), last.pt, train.csv and val.csv to out_dir.

    Runs under torchrun for multi-GPU / multi-node (DDP).
    """
    from lle.config import load_config
    from lle.training.config import TrainConfig

    if config is not None and not config.is_file():
        from lle.errors import ConfigError

        raise ConfigError(f"config not found: {config}", hint="see training/configs/")
    cfg = load_config(TrainConfig, config, overrides or [])
    from lle.training.loop import train as run_training

    with progress_bar(f"train {cfg.model.preset}", cfg.steps) as bar:

        def on_step(step: int, total: int, info: Mapping[str, float]) -> None:
            bar.update(bar.task_ids[0], completed=step, info=f"loss {info['loss']:.4f}  {info['it/s']:.2f} it/s")

        result = run_training(
            cfg, resume=resume, progress=on_step, note=lambda s: err_console.print(s, highlight=False)
        )
    out_console.print(
        f"best weights: {result.best}  (val PSNR {result.best_score:.2f} dB, {result.step} steps, "
        f"{result.minutes:.1f} min)"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
