"""The rest of the bad-input matrix: huge images under a memory cap, thousands of files, odd names, unwritable and
full output folders, a video with a corrupt middle section."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.robustness.conftest import assert_nothing_partial, assert_one_line_error, invoke, snapshot
from tests.robustness.files import big_png, dark_u8, make_file, tiny_video

pytestmark = pytest.mark.usefixtures("quiet_root")

CAP = 2560 << 20  # address-space limit of the capped subprocess: far below what 200 MP as float32 needs (2.4 GB x 4)


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 14143 x 14143 (200 MP) PNG; small on disk (one grey level), 600 MB decoded, 2.4 GB as float32."""
    return big_png(tmp_path_factory.mktemp("huge") / "huge 200MP.png", 14143, 14143)


def _capped(args: list[str], cap: int = CAP) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
        from lle.cli.app import main
        main({args!r})
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip


def test_200_megapixel_image_is_refused_under_a_memory_cap(huge_png: Path, tiny_weights, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = _capped(["enhance", str(huge_png), "-o", str(out), "--weights", str(tiny_weights["quality"])])
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])  # a refusal, not a MemoryError or an OOM kill (-9)
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and huge_png.name in err[0] and "14143x14143" in err[0] and "GB" in err[0], r.stderr
    assert "--max-memory" in r.stderr
    assert snapshot(out) == {}


def test_200_megapixel_image_with_a_small_explicit_budget(huge_png: Path, tiny_weights, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = invoke("enhance", huge_png, "-o", out, "--weights", tiny_weights["quality"], "--max-memory", "1G")
    text = assert_one_line_error(res, huge_png.name)
    assert "200 MP" in text and "1.0 GB" in text
    assert snapshot(out) == {}


def test_max_memory_must_be_a_size(tmp_path: Path, tiny_weights) -> None:
    img = make_file(tmp_path, "1xN")
    res = invoke("enhance", img, "-o", tmp_path / "o", "--weights", tiny_weights["quality"], "--max-memory", "lots")
    assert "e.g. --max-memory 1.5G" in assert_one_line_error(res, "lots")


def test_large_image_is_streamed_in_bands_under_the_budget(tmp_path: Path, tiny_weights) -> None:
    """A 1600 x 1200 photo under a budget that forces small tiles: written, same as whole-image tiles of that size."""
    src = tmp_path / "big.png"
    cv2.imwrite(str(src), cv2.resize(dark_u8(60, 80), (1600, 1200), interpolation=cv2.INTER_CUBIC))
    from lle.enhance import plan_memory

    # the budget is what enhancing adds, whatever this test process holds already: room for small tiles only
    plan = plan_memory(1200, 1600, budget=150 << 20, tile=2048, size_multiple=16, model_bytes_per_px=160)
    assert plan.tile < 1200
    res = invoke("-v", "enhance", src, "-o", tmp_path / "o.png", "--weights", tiny_weights["quality"],
                 "--max-memory", "150M")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "o.png")).shape == (1200, 1600, 3)


def test_a_process_holding_gigabytes_still_enhances_a_small_photo(huge_png: Path, tiny_weights, tmp_path: Path) -> None:
    """The default budget counts what enhancing adds, not the process: a library caller holding 2 GiB (more than the
    budget's cap) enhances a 3x2 photo, and a 200 MP image is still refused, before it is decoded."""
    from lle.enhance import _available_memory

    if _available_memory() < 3 << 30:
        pytest.skip("needs 3 GiB of free memory for the 2 GiB ballast")
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), dark_u8(2, 3))
    code = textwrap.dedent(f"""
        import numpy as np
        from lle.backends.torch_backend import TorchBackend
        from lle.enhance import DEFAULT_BUDGET_CAP, _rss, default_memory_budget, enhance_file, make_enhancer
        from lle.errors import InputError

        ballast = np.ones(2 << 30, np.uint8)  # written: resident, like a server's caches
        assert _rss() > 2 << 30 > DEFAULT_BUDGET_CAP >= default_memory_budget()
        with TorchBackend({str(tiny_weights["quality"])!r}) as backend:
            enhancer = make_enhancer(backend)
            print("wrote", enhance_file({str(small)!r}, {str(tmp_path / "out.png")!r}, enhancer).name)
            try:
                enhance_file({str(huge_png)!r}, {str(tmp_path / "huge_out.png")!r}, enhancer)
            except InputError as err:
                print("refused", err)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote out.png" in r.stdout, r.stdout
    assert cv2.imread(str(tmp_path / "out.png")).shape == (2, 3, 3)
    refused = [ln for ln in r.stdout.splitlines() if ln.startswith("refused")]
    assert len(refused) == 1 and "14143x14143" in refused[0] and "memory budget" in refused[0], r.stdout
    assert not (tmp_path / "huge_out.png").exists()


def test_a_folder_of_thousands_of_files(tmp_path: Path, tiny_weights) -> None:
    """2200 files: 200 photos (one of them broken) among sidecars; planning stays linear, the broken one is reported."""
    src = tmp_path / "DCIM"
    src.mkdir()
    ok, png = cv2.imencode(".png", dark_u8(2, 3))
    for i in range(200):
        (src / f"IMG_{i:05d}.png").write_bytes(png.tobytes())
    for i in range(2000):
        (src / f"IMG_{i:05d}.xmp").write_text("<x:xmpmeta/>")  # sidecars and other files that are not images
    (src / ".DS_Store").write_bytes(b"\0" * 10)
    (src / "IMG_00042.png").write_bytes(b"")  # one broken file among them
    out = tmp_path / "out"
    # the default budget: what the suite's earlier tests left in this process does not count against it
    res = invoke("enhance", src, "-o", out, "--weights", tiny_weights["quality"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "IMG_00042.png" in res.output and "1 failed" in res.output and "wrote 199 image(s)" in res.output
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 199 and "IMG_00042.png" not in written and "IMG_00199.png" in written
    assert_nothing_partial(out)
    r = invoke("run", tiny_weights["realtime"], "--source", src, "-o", tmp_path / "run")
    assert_one_line_error(r, "IMG_00042.png")  # lle run stops at the broken one, keeping what came before
    assert_nothing_partial(tmp_path / "run")


NAMES = ["photo with spaces.png", "nuit à Paris 夜景.jpg", "ночь (1).png", "emoji 🌙.png"]


@pytest.mark.parametrize("name", NAMES)
def test_names_with_spaces_and_unicode(tmp_path: Path, tiny_weights, name: str) -> None:
    folder = tmp_path / "мои фото ü"
    folder.mkdir()
    src = folder / name
    ok, buf = cv2.imencode(Path(name).suffix, dark_u8(9, 7))
    src.write_bytes(buf.tobytes())
    out = tmp_path / "выход out"
    assert invoke("enhance", src, "-o", out, "--weights", tiny_weights["quality"]).exit_code == 0
    assert cv2.imdecode(np.fromfile(out / name, np.uint8), cv2.IMREAD_COLOR).shape == (9, 7, 3)
    r = invoke("run", tiny_weights["realtime"], "--source", folder, "-o", out / "run")
    assert r.exit_code == 0, r.output
    assert (out / "run" / name).is_file()
    r = invoke("calib", "build", folder, "-o", out / "calib", "--n", "1")
    assert r.exit_code == 0 and len(list((out / "calib").iterdir())) == 1, r.output


def test_output_inside_a_missing_folder_is_created(tmp_path: Path, tiny_weights) -> None:
    img = make_file(tmp_path, "1xN")
    deep = tmp_path / "a" / "b" / "c"
    assert invoke("enhance", img, "-o", deep / "o.png", "--weights", tiny_weights["quality"]).exit_code == 0
    assert invoke("run", tiny_weights["realtime"], "--source", img, "-o", deep / "r.png").exit_code == 0
    clip = tiny_video(tmp_path / "clip.mp4")
    assert invoke("run", tiny_weights["realtime"], "--source", clip, "-o", deep / "v.mp4").exit_code == 0
    assert {p.name for p in deep.iterdir()} == {"o.png", "r.png", "v.mp4"}


def _commands(img: Path, clip: Path, out: Path, w: dict[str, Path]) -> dict[str, list[object]]:
    return {
        "enhance": ["enhance", img, "-o", out / "o.png", "--weights", w["quality"]],
        "run image": ["run", w["realtime"], "--source", img, "-o", out / "r.png"],
        "run video": ["run", w["realtime"], "--source", clip, "-o", out / "v.mp4"],
        "calib": ["calib", "build", img.parent, "-o", out / "calib", "--n", "1"],
    }


@pytest.mark.parametrize("command", ["enhance", "run image", "run video", "calib"])
def test_output_under_a_file_instead_of_a_folder(tmp_path: Path, tiny_weights, command: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    img, clip = make_file(src, "1xN"), tiny_video(tmp_path / "clip.mp4")
    blocker = tmp_path / "not a folder"
    blocker.write_text("a file where a folder is expected")
    res = invoke(*_commands(img, clip, blocker, tiny_weights)[command])
    assert_one_line_error(res, str(blocker))
    assert blocker.read_text().startswith("a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
@pytest.mark.parametrize("command", ["enhance", "run image", "run video", "calib"])
def test_read_only_output_folder(tmp_path: Path, tiny_weights, command: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    img, clip = make_file(src, "1xN"), tiny_video(tmp_path / "clip.mp4")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = invoke(*_commands(img, clip, ro, tiny_weights)[command])
        assert_one_line_error(res, str(ro))
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Writes of files under the returned folder fail with ENOSPC, as on a full disk (the temp file is created)."""
    full = tmp_path / "full"
    full.mkdir()
    real = os.fdopen

    class _Full:
        def __init__(self, f: object) -> None:
            self._f = f

        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> object:
            return getattr(self._f, name)

        def __enter__(self) -> _Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self._f.close()  # type: ignore[attr-defined]

    def fdopen(fd: int, *args: object, **kwargs: object) -> object:
        f = real(fd, *args, **kwargs)  # type: ignore[arg-type]
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return f
        return _Full(f) if target.startswith(str(full)) else f

    monkeypatch.setattr(os, "fdopen", fdopen)
    return full


@pytest.mark.parametrize("command", ["enhance", "run image", "calib"])
def test_output_disk_full(tmp_path: Path, tiny_weights, full_disk: Path, command: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        make_file(src, "1xN", f"img{i}")
    img = src / "img0.png"
    cmd = _commands(img, img, full_disk, tiny_weights)[command]
    if command == "enhance":
        cmd[1] = src  # a folder: the first failed write stops the run (every other one would fail too)
        cmd[3] = full_disk / "out"
    text = assert_one_line_error(invoke(*cmd), str(full_disk))
    assert "No space left on device" in text and "full" in text
    assert_nothing_partial(full_disk)
    assert not [p for p in full_disk.rglob("*") if p.is_file()]
    assert sorted(p.name for p in src.iterdir()) == ["img0.png", "img1.png", "img2.png"]


def test_video_with_a_corrupt_middle_section(tmp_path: Path, tiny_weights) -> None:
    """Bad packets are skipped and counted, the frames around them are kept and the output is playable."""
    pytest.importorskip("av")
    import av

    clip = tmp_path / "clip.mkv"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 160, 128, "yuv420p"
        s.options = {"preset": "ultrafast", "g": "5"}
        rng = np.random.default_rng(0)
        for i in range(40):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (128, 160, 3), np.uint8), format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 30000] = bytes(30000)
    bad = tmp_path / "damaged clip.mkv"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    res = invoke("run", tiny_weights["realtime"], "--source", bad, "-o", out)
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "corrupt" in res.output
    with av.open(str(out)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert 0 < n < 40
    assert f"{n} frame(s)" in res.output


def test_rlimit_is_part_of_the_default_budget() -> None:
    """Under an address-space limit the default budget is half the room left under it: the limit less what the
    process has mapped already."""
    from lle.enhance import DEFAULT_BUDGET_CAP, default_memory_budget

    assert 0 < default_memory_budget() <= DEFAULT_BUDGET_CAP == 1 << 30
    code = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));" \
           "from lle.enhance import _mapped, default_memory_budget as b; m = _mapped()[0]; print(m, b())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    mapped, budget = map(int, r.stdout.split())
    assert 0 < mapped < 1 << 30
    assert ((1 << 30) - mapped) // 2 - (16 << 20) <= budget <= ((1 << 30) - mapped) // 2 < 1 << 29
