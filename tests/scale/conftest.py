"""Tiny synthetic photo/video libraries for the batch-job tests, and the local-path reference outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import dark_image


def make_clip(path: Path, n: int = 6, size: tuple[int, int] = (64, 48), rate: int = 10) -> Path:
    """A short dark H.264 clip whose frames drift, so temporal state matters from frame to frame."""
    av = pytest.importorskip("av")
    w, h = size
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=rate)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    for i in range(n):
        img = (dark_image(h, w + 8, seed=i)[:, i : i + w] * 255).astype(np.uint8)
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[..., ::-1]), format="bgr24")
        f.pts = i
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    c.close()
    return path


def make_library(folder: Path, images: int, *, size: tuple[int, int] = (24, 40), video: bool = False,
                 corrupt: bool = False) -> Path:  # fmt: skip
    """``images`` PNGs (odd sizes, so padding is exercised), optionally a clip, a corrupt image and a corrupt clip."""
    from lle.io.image import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        write_image(folder / f"im_{i:04d}.png", dark_image(size[0] + i % 3, size[1] + i % 5, seed=i))
    if video:
        make_clip(folder / "clip.mp4")
    if corrupt:
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
        (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 and then nothing")
    return folder


def local_images(weights: Path, plan: list[tuple[Path, Path]]) -> None:
    """What ``lle enhance`` writes for ``plan``: the same backend, Enhancer and writer as the command."""
    from lle.backends.torch_backend import TorchBackend
    from lle.enhance import enhance_files, make_enhancer

    with TorchBackend(weights) as backend:
        enhance_files(plan, make_enhancer(backend))


def local_video(weights: Path, src: Path, dst: Path) -> None:
    """What ``lle run WEIGHTS --backend torch --source SRC -o DST`` writes."""
    from lle.streaming import run_stream

    run_stream(weights, str(src), dst, backend="torch")


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return make_library(tmp_path / "lib", 3, video=True, corrupt=True)
