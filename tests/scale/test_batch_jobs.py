"""Batch jobs without a cluster: planning (names as ``lle enhance``), manifests, resume bookkeeping, the worker."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lle.cli.app import app
from lle.enhance import plan_outputs
from lle.errors import ConfigError, InputError
from lle.scale.jobs import BatchResult, Failure, Job, pending, plan_jobs, read_manifest, remove_stale_parts
from lle.scale.ray_batch import RayConfig, check_address
from lle.scale.worker import EnhanceWorker, WorkerConfig
from tests.scale.conftest import hidden_files, local_images, local_video, make_library


def test_images_get_the_names_lle_enhance_gives(tmp_path) -> None:
    lib = make_library(tmp_path / "lib", 3)
    out = tmp_path / "out"
    jobs = plan_jobs([lib], out)
    assert [(j.src, j.dst) for j in jobs] == plan_outputs([lib], out)
    assert {j.kind for j in jobs} == {"image"}
    one = lib / "im_0000.png"
    assert plan_jobs([one], tmp_path / "x.jpg") == [Job(one, tmp_path / "x.jpg", "image")]


def test_folder_with_videos_and_manifests(tmp_path) -> None:
    lib = make_library(tmp_path / "lib", 2, video=True)
    out = tmp_path / "out"
    jobs = plan_jobs([lib], out)
    assert jobs[0] == Job(lib / "clip.mp4", out / "clip.mp4", "video")  # videos first: the longest tasks
    assert [j.dst.name for j in jobs[1:]] == ["im_0000.png", "im_0001.png"]
    (tmp_path / "list.txt").write_text("# library\nlib/im_0001.png\n\nlib/clip.mp4\n")
    (tmp_path / "list.csv").write_text(f"path,note\n{lib / 'im_0000.png'},abs\nlib/clip.mp4,rel\n")
    assert read_manifest(tmp_path / "list.txt") == [lib / "im_0001.png", lib / "clip.mp4"]
    assert [j.src for j in plan_jobs([tmp_path / "list.csv"], out)] == [lib / "clip.mp4", lib / "im_0000.png"]
    assert plan_jobs([lib / "clip.mp4"], tmp_path / "bright.mp4") == [
        Job(lib / "clip.mp4", tmp_path / "bright.mp4", "video")
    ]


@pytest.mark.parametrize(
    ("manifest", "needle"),
    [
        ("lib/missing.png\n", "line 1: input not found"),
        ("# nothing\n\n", "lists no files"),
        ("lib/notes.md\n", "not an image or video file"),
    ],
)
def test_bad_manifests_name_the_line(tmp_path, manifest: str, needle: str) -> None:
    make_library(tmp_path / "lib", 1)
    (tmp_path / "lib" / "notes.md").write_text("x")
    (tmp_path / "m.txt").write_text(manifest)
    with pytest.raises(InputError, match=needle):
        plan_jobs([tmp_path / "m.txt"], tmp_path / "out")


def test_bad_plans(tmp_path) -> None:
    lib = make_library(tmp_path / "lib", 1, video=True)
    (tmp_path / "c.csv").write_text("file\nlib/clip.mp4\n")
    with pytest.raises(InputError, match="no 'path' column"):
        plan_jobs([tmp_path / "c.csv"], tmp_path / "out")
    with pytest.raises(InputError, match="refusing to overwrite input"):
        plan_jobs([lib], lib)
    with pytest.raises(InputError, match="names one image but videos"):
        plan_jobs([lib / "im_0000.png", lib / "clip.mp4"], tmp_path / "one.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images or videos in folder"):
        plan_jobs([tmp_path / "empty"], tmp_path / "out")
    other = make_library(tmp_path / "other", 1, video=True)
    with pytest.raises(InputError, match="would both write"):
        plan_jobs([lib / "clip.mp4", other / "clip.mp4"], tmp_path / "out")
    with pytest.raises(InputError, match="not a Ray address"):
        check_address(str(lib))
    with pytest.raises(ConfigError, match="num_cpus"):
        RayConfig(num_cpus=0)
    with pytest.raises(InputError, match="too small"):
        WorkerConfig(Path("w.safetensors"), tile=8)


def test_pending_skips_finished_outputs_and_clears_temp_files(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    jobs = [Job(tmp_path / f"{n}.png", out / f"{n}.png", "image") for n in ("a", "b")]
    jobs.append(Job(tmp_path / "v.mp4", out / "v.mp4", "video"))
    (out / "a.png").write_bytes(b"finished")
    stale = [".b.0123abcd.part.png", ".v.part.mp4", "..v.89abcdef.part.part.mp4", ".a.fedcba98.part.png"]
    for name in stale:
        (out / name).write_bytes(b"half")
    keep = [".b.png", ".other.0123abcd.part.png", ".b.0123abcd.part.jpg"]  # not a temp file of these outputs
    for name in keep:
        (out / name).write_bytes(b"mine")
    todo, done = pending(jobs)
    assert [j.dst.name for j in done] == ["a.png"] and [j.dst.name for j in todo] == ["b.png", "v.mp4"]
    assert hidden_files(out) == sorted(keep)
    assert (out / "a.png").read_bytes() == b"finished"
    assert remove_stale_parts(jobs) == []


def test_report(tmp_path) -> None:
    r = BatchResult([tmp_path / "a.png"], [], [Failure(tmp_path / "b.png", "not a readable image")], 2.0, 2)
    path = r.write_report(tmp_path / "r" / "report.json")
    import json

    data = json.loads(path.read_text())
    assert data["written"] == 1 and data["failed"][0]["error"] == "not a readable image" and not r.ok


def test_worker_in_process_matches_the_local_paths(tmp_path, tiny_weights, library) -> None:
    """The worker Ray runs writes exactly what ``lle enhance`` (images) and ``lle run`` (videos) write."""
    w = tiny_weights["realtime"]
    jobs = plan_jobs([library], tmp_path / "out")
    worker = EnhanceWorker(WorkerConfig(w))
    cols = {k: np.array([str(getattr(j, k)) for j in jobs]) for k in ("src", "dst", "kind")}
    res = worker(cols)
    worker.close()
    ok = dict(zip(res["src"], res["ok"], strict=True))
    errors = {Path(s).name: e for s, e in zip(res["src"], res["error"], strict=True) if e}
    assert set(errors) == {"broken.png", "broken.mp4"}, errors
    assert "not a readable image" in errors["broken.png"]
    assert sum(ok.values()) == 4
    ref = tmp_path / "ref"
    local_images(w, [(j.src, ref / j.dst.name) for j in jobs if j.kind == "image" and j.src.name != "broken.png"])
    local_video(w, library / "clip.mp4", ref / "clip.mp4")
    for name in ("im_0000.png", "im_0001.png", "im_0002.png", "clip.mp4"):
        assert (tmp_path / "out" / name).read_bytes() == (ref / name).read_bytes(), name
    assert sorted(os.listdir(tmp_path / "out")) == ["clip.mp4", "im_0000.png", "im_0001.png", "im_0002.png"]


def test_ray_options_need_ray(tmp_path, tiny_weights) -> None:
    lib = make_library(tmp_path / "lib", 1)
    res = CliRunner().invoke(
        app, ["enhance", str(lib), "-o", str(tmp_path / "o"), "--weights", str(tiny_weights["quality"]),
              "--concurrency", "2", "--report", str(tmp_path / "r.json")],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "--concurrency, --report only apply to Ray jobs" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "o").exists()


def test_bad_weights_fail_before_any_cluster_starts(tmp_path, tiny_weights) -> None:
    lib = make_library(tmp_path / "lib", 1)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    bad.with_suffix(".json").write_text(tiny_weights["quality"].with_suffix(".json").read_text())  # a valid card
    res = CliRunner().invoke(app, ["enhance", str(lib), "-o", str(tmp_path / "o"), "--ray", "--weights", str(bad)])
    assert res.exit_code == 1
    assert f"error: {bad} is not a safetensors weights file" in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "o").exists()
