"""Images/s of `lle enhance --ray` on a local Ray cluster against plain `lle enhance`, same weights, same runtime.

    python benchmarks/ray_images.py [--count 200] [--preset quality] [--source DIR]

A folder of COUNT real low-light photos (the first COUNT of --source, default the SICE low-exposure frames in
../shared/data, 512x512 JPEG) is enhanced by each command below, each in a fresh process, timed end to end from
the command's start to its exit (Python start, Ray start, model load and all writes included):

- `lle enhance IN -o OUT` (torch, all cores);
- `lle enhance IN -o OUT --ray --ray-address local` (a new local cluster: one worker per CPU, 1 torch thread each);
- the same with `--concurrency 1 --num-cpus 2` (one worker, 2 torch threads);
- the first Ray command again on its finished output (the resume check: everything skipped).

Every Ray output is compared byte for byte with the local one. Writes benchmarks/results/<machine>/ray-images.md and
.json with `lle info`, versions, commands and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "sice_pairs" / "low"


def run(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"})
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return dt, (res.stdout + res.stderr).strip().splitlines()[-1]


def identical(a: Path, b: Path) -> tuple[int, int]:
    names = sorted(p.name for p in a.iterdir() if not p.name.startswith("."))
    same = sum((a / n).read_bytes() == (b / n).read_bytes() for n in names if (b / n).is_file())
    return same, len(names)


def main() -> None:
    from lle.bench.report import collect_host

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--preset", default="quality", choices=["quality", "realtime"])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results/<machine>)")
    a = ap.parse_args()
    from lle.io.image import find_images

    photos = find_images(a.source)[: a.count]
    if len(photos) < a.count:
        raise SystemExit(f"{a.source} has {len(photos)} images, {a.count} asked for")
    lle = [sys.executable, "-m", "lle.cli.app"] if not shutil.which("lle") else [shutil.which("lle") or "lle"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lle-ray-bench-") as tmp:
        src = Path(tmp) / "photos"
        src.mkdir()
        for p in photos:
            (src / p.name).symlink_to(p.resolve())
        base = [*lle, "enhance", str(src), "--preset", a.preset]
        ray_local = ["--ray", "--ray-address", "local"]
        runs = [
            ("plain `lle enhance` (torch, 2 threads)", "local", []),
            ("`--ray`: 2 workers x 1 CPU (1 torch thread each)", "ray2", ray_local),
            ("`--ray --concurrency 1 --num-cpus 2`: 1 worker x 2 threads", "ray1", [*ray_local, "--concurrency", "1",
                                                                                     "--num-cpus", "2"]),
            ("`--ray` again on the finished output (resume: all skipped)", "ray2", ray_local),
        ]  # fmt: skip
        for label, out_name, extra in runs:
            cmd = [*base, "-o", str(Path(tmp) / out_name), *extra]
            seconds, last = run(cmd)
            shown = " ".join(["lle", *cmd[len(lle) :]]).replace(str(src), "IN").replace(f"{tmp}/", "")
            row: dict[str, Any] = {"run": label, "command": shown, "seconds": seconds,
                                   "images_per_s": a.count / seconds, "said": last.replace(f"{tmp}/", "")}  # fmt: skip
            if out_name != "local":
                same, n = identical(Path(tmp) / "local", Path(tmp) / out_name)
                row["identical"] = f"{same}/{n}"
            rows.append(row)
            print(f"{label}: {seconds:.1f} s, {a.count / seconds:.2f} images/s  [{last}]", flush=True)
    host = collect_host(" ".join(sys.argv))
    info = subprocess.run([*lle, "info"], capture_output=True, text=True, check=False, env={**os.environ,
                          "COLUMNS": "100"}).stdout.rstrip()  # fmt: skip
    out = a.out or ROOT / "benchmarks" / "results" / host.slug
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    local_s = rows[0]["seconds"]
    libs = ", ".join(f"{k} {v}" for k, v in host.libraries.items())
    try:
        from importlib.metadata import version

        libs += f", ray {version('ray')}, pyarrow {version('pyarrow')}"
    except Exception:  # noqa: BLE001  (ray is optional here)
        pass
    shown_source = (
        a.source.resolve().relative_to(ROOT.parent) if a.source.resolve().is_relative_to(ROOT.parent) else a.source
    )
    lines = [
        f"# `lle enhance --ray` vs `lle enhance`: {a.count} photos, {a.preset} preset, local 2-CPU Ray cluster",
        "",
        f"- date: {host.date}, git {host.git_sha}",
        f"- machine: {host.cpu}, {host.cores} logical cores, {host.os}; load average at the end {load[0]:.1f} / "
        f"{load[1]:.1f} (other work shared the machine: compare rows of one run only)",
        f"- versions: {libs}",
        f"- command: `python benchmarks/ray_images.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- photos: the first {a.count} of `{shown_source}` (real low-light JPEGs), outputs JPEG q95",
        f"- model: bundled `{a.preset}` weights, torch fp32 CPU in every run (same weights, same runtime)",
        "- timing: wall time of the whole command in a fresh process (Python and Ray start, model load, every read and"
        " write)",
        "",
        "| run | seconds | images/s | vs plain | outputs identical to plain |",
        "|---|---:|---:|---:|---|",
    ]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['run']} | {r['seconds']:.1f} | {r['images_per_s']:.2f} | {local_s / r['seconds']:.2f}x | "
                     f"{r.get('identical', '(reference)')} |")  # fmt: skip
    lines += ["", "Commands (IN is a folder of symlinks to the photos):", ""]
    lines += [f"- {r['run']}: `{r['command']}` -> {r['said']}" for r in rows]
    lines += ["", "`lle info` on this machine:", "", "```", info, "```", ""]
    (out / "ray-images.md").write_text("\n".join(lines))
    (out / "ray-images.json").write_text(json.dumps({"host": asdict(host), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out / 'ray-images.md'}")


if __name__ == "__main__":
    main()
