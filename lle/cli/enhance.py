"""``lle enhance``: photos and folders in, enhanced images out; ``--ray``: photo and video libraries on a cluster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lle.cli._common import check_preset, cli_errors, default_weights, err_console, progress_bar

__all__ = ["register"]


_RAY = "Ray (batch jobs on a cluster)"


@cli_errors
def enhance(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files and/or folders of images (with --ray also videos and manifests).", show_default=False
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output image (one input) or folder.")],
    preset: Annotated[
        str | None,
        typer.Option(help="Model preset: quality (photos) or realtime (video). Default: the --weights' preset, "
                     "else quality.", show_default=False, callback=check_preset),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(help="Weights (.safetensors with its .json card). Default: the preset's bundled ones."),
    ] = None,
    tile: Annotated[
        int, typer.Option(help="Tile size in px for large images (0 = automatic: tiles of 2048 above that size).")
    ] = 0,
    max_memory: Annotated[
        str | None,
        typer.Option(help="Memory one image may add to the process, e.g. 1.5G or 800M: large images are enhanced "
                     "in smaller tiles, band by band, to stay under it; an image that cannot fit is skipped with the "
                     "size it needs. Default: half the available memory, at most 1G.", show_default=False),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (0 = all cores; with --ray: --num-cpus per worker).")
    ] = 0,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run as a Ray Data job: also takes videos and manifests (.txt, .csv); "
            "skips finished outputs, reports failures.",
            rich_help_panel=_RAY,
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Cluster to join: auto, local, HOST:PORT or ray://HOST:PORT (default: "
            "RAY_ADDRESS, else the latest local cluster, else a new one).",
            rich_help_panel=_RAY,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Workers (one backend each). Default: as many as the cluster's CPUs (GPUs with --num-gpus) allow.",
            rich_help_panel=_RAY,
        ),
    ] = None,
    num_cpus: Annotated[
        float | None, typer.Option(min=0.01, help="CPUs per worker. Default: 1.", rich_help_panel=_RAY)
    ] = None,
    num_gpus: Annotated[
        float | None,
        typer.Option(min=0.0, help="GPUs per worker (fractions share one). Default: 0.", rich_help_panel=_RAY),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write a JSON report (written, skipped, failures) here.", rich_help_panel=_RAY)
    ] = None,
) -> None:
    """Enhance low-light photos with the PyTorch weights. Outputs keep each input's name and format.

    Inputs are never overwritten; every output is written to a temporary file and renamed when complete.

    With --ray the same outputs are made on a Ray cluster, one backend loaded per worker: images, whole videos
    (enhanced as `lle run` does, each by one worker) and manifests listing them. Finished outputs are skipped, so
    running it again resumes a crashed job; a file that fails is reported and the rest are done (exit code 1).
    Examples: `lle enhance photos/ -o out/ --ray`; `lle enhance library.txt -o out/ --ray --ray-address auto
    --num-gpus 0.5 --report report.json`.
    """
    from lle.errors import InputError

    if ray:
        _enhance_on_ray(inputs, output, (preset or "quality"), weights, tile=tile, device=device,
                        threads=threads,
                        address=ray_address, concurrency=concurrency, num_cpus=num_cpus, num_gpus=num_gpus,
                        report=report)  # fmt: skip
        return
    given = [f"--{n.replace('_', '-')}" for n, v in (("ray_address", ray_address), ("concurrency", concurrency),
             ("num_cpus", num_cpus), ("num_gpus", num_gpus), ("report", report)) if v is not None]  # fmt: skip
    from lle.enhance import enhance_files, make_enhancer, parse_memory, plan_outputs

    budget = parse_memory(max_memory) if max_memory is not None else None
    if given:
        raise InputError(f"{', '.join(given)} only apply to Ray jobs", hint="add --ray, or leave them out")

    plan = plan_outputs(inputs, output)
    w = _weights_for(preset, weights)
    from lle.backends.torch_backend import TorchBackend

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    with TorchBackend(w, device=device) as backend:
        enhancer = make_enhancer(backend, tile)
        failed: list[tuple[Path, str]] = []
        with progress_bar("enhancing", len(plan), enabled=len(plan) > 1) as bar:
            written = enhance_files(plan, enhancer, progress=lambda i, n: bar.update(bar.task_ids[0], completed=i),
                                    max_memory=budget, failed=failed if len(plan) > 1 else None)  # fmt: skip
    dt = time.perf_counter() - t0
    for _src, why in failed:
        err_console.print(f"[red]failed:[/red] {escape(why)}", highlight=False, soft_wrap=True)
    msg = f"wrote {len(written)} image(s) to {output} in {dt:.1f} s"
    if failed:
        msg += f", {len(failed)} failed (listed above; their outputs were not written)"
    err_console.print(msg, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def _weights_for(preset: str | None, weights: Path | None) -> Path:
    """The weights to run: ``--weights`` (checked against ``--preset`` when both are given) or the preset's."""
    from lle.errors import InputError

    w = default_weights(preset or "quality", weights)
    if weights is not None and preset is not None:
        from lle.models.checkpoint import load_card

        card = load_card(w)
        if card.preset != preset:
            raise InputError(
                f"{w} holds {card.preset} weights but --preset {preset} was given",
                hint=f"drop --preset (it follows the weights), or pass {preset} weights",
            )
    return w


def _enhance_on_ray(
    inputs: list[Path], output: Path, preset: str, weights: Path | None, *, tile: int, device: str, threads: int,
    address: str | None, concurrency: int | None, num_cpus: float | None, num_gpus: float | None, report: Path | None,
) -> None:  # fmt: skip
    from lle.scale.jobs import plan_jobs
    from lle.scale.ray_batch import RayConfig, enhance_on_ray
    from lle.scale.worker import WorkerConfig

    cfg = RayConfig(address=address, concurrency=concurrency or 0, num_cpus=num_cpus or 1.0, num_gpus=num_gpus or 0.0)
    jobs = plan_jobs(inputs, output)
    worker = WorkerConfig(default_weights(preset, weights), device=device, tile=tile,
                          threads=threads or max(1, int(cfg.num_cpus)))  # fmt: skip
    with progress_bar("enhancing", len(jobs)) as bar:
        task = bar.task_ids[0]
        result = enhance_on_ray(jobs, worker, cfg, progress=lambda i, n: bar.update(task, completed=i, total=n))
    if report is not None:
        result.write_report(report)
    for f in result.failed:
        err_console.print(f"[red]failed:[/red] {escape(str(f.src))}: {escape(f.error)}", highlight=False,
                          soft_wrap=True)  # fmt: skip
    done = len(result.written)
    msg = f"wrote {done} file(s) to {output} in {result.seconds:.1f} s"
    if result.workers:
        msg += f" on {result.workers} Ray worker(s) ({done / max(result.seconds, 1e-9):.2f} files/s)"
    if result.skipped:
        msg += f", skipped {len(result.skipped)} already finished"
    if result.failed:
        msg += f", {len(result.failed)} failed" + (f" (listed in {report})" if report else "")
    err_console.print(msg, highlight=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("enhance")(enhance)
