"""``lle enhance --ray`` on a local 2-CPU Ray cluster: same outputs as the local path, resume after a kill, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lle.cli.app import app
from lle.enhance import plan_outputs
from lle.scale.jobs import plan_jobs
from lle.scale.ray_batch import RayConfig, enhance_on_ray
from lle.scale.worker import WorkerConfig
from tests.scale.conftest import hidden_files, local_images, local_video, make_library

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local cluster for the module (starting Ray takes seconds); yields its address for other drivers."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_cli_matches_the_local_path_and_reports_failures(cluster, tmp_path, tiny_weights, library) -> None:
    w = tiny_weights["realtime"]
    out, report = tmp_path / "out", tmp_path / "report.json"
    res = CliRunner().invoke(
        app, ["enhance", str(library), "-o", str(out), "--ray", "--weights", str(w), "--report", str(report)]
    )
    assert res.exit_code == 1, res.output  # two corrupt files: reported, the rest done
    assert "Traceback" not in res.output
    assert "broken.png: not a readable image" in res.output
    data = json.loads(report.read_text())
    assert data["written"] == 4 and data["skipped"] == 0 and data["workers"] == 2
    assert sorted(Path(f["src"]).name for f in data["failed"]) == ["broken.mp4", "broken.png"]
    ref = tmp_path / "ref"
    local_images(w, [(s, ref / s.name) for s in sorted(library.glob("im_*.png"))])
    local_video(w, library / "clip.mp4", ref / "clip.mp4")
    assert sorted(os.listdir(out)) == sorted(os.listdir(ref))  # nothing for the failures, no temp files
    for p in sorted(ref.iterdir()):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name

    again = CliRunner().invoke(app, ["enhance", str(library), "-o", str(out), "--ray", "--weights", str(w)])
    assert again.exit_code == 1 and "skipped 4 already finished, 2 failed" in again.output, again.output


_DRIVER = """
import sys
from pathlib import Path
import ray
from lle.scale.jobs import plan_jobs
from lle.scale.ray_batch import RayConfig, enhance_on_ray
from lle.scale.worker import WorkerConfig
ray.init(address=sys.argv[1], log_to_driver=False)
jobs = plan_jobs([Path(sys.argv[2])], Path(sys.argv[3]))
enhance_on_ray(jobs, WorkerConfig(Path(sys.argv[4])), RayConfig(concurrency=1))
"""


def test_resume_after_the_driver_is_killed(cluster, tmp_path, tiny_weights) -> None:
    w = tiny_weights["quality"]
    lib = make_library(tmp_path / "lib", 60, size=(48, 64))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, cluster, str(lib), str(out), str(w)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and len([p for p in out.iterdir() if not p.name.startswith(".")]) >= 3:
                break
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 60  # the dead driver's actor is ended by Ray; wait until its CPU is free again
    while time.monotonic() < deadline and ray.available_resources().get("CPU", 0) < 2:
        time.sleep(0.1)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir() if not p.name.startswith(".")}
    assert 3 <= len(before) < 60, "the job was not killed mid-run"
    (out / ".im_0059.0123abcd.part.png").write_bytes(b"half a file from the crash")

    jobs = plan_jobs([lib], out)
    result = enhance_on_ray(jobs, WorkerConfig(w), RayConfig())
    assert result.ok, result.failed
    assert sorted(p.name for p in result.skipped) == sorted(before)
    assert len(result.written) == 60 - len(before)
    assert hidden_files(out) == []
    for name, stamp in before.items():
        p = out / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp, f"{name} was rewritten"
    ref = tmp_path / "ref"
    local_images(w, plan_outputs([lib], ref))
    for p in sorted(ref.iterdir()):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
