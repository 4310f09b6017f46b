"""Python API: enhance images held in memory (numpy arrays or PIL images) in three lines.

    >>> import lle                                          # doctest: +SKIP
    >>> with lle.ImageEnhancer("quality") as enhance:       # doctest: +SKIP
    ...     bright = enhance(dark)                          # (H, W, 3) uint8 RGB in, the same out

What ``lle enhance`` does to a file, done to an array: padding to the model's size multiple, tiling of large images
with the whole image's exposure kept, clipping and rounding; greyscale stays greyscale, alpha is kept, uint8 and
uint16 stay what they are, float images (in [0, 1]) come back as float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle.errors import InputError

if TYPE_CHECKING:
    from lle.backends.base import Backend
    from lle.pipeline import Enhancer

__all__ = ["ImageEnhancer"]

_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _is_pil(image: object) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "mode")


class ImageEnhancer:
    """A loaded model that enhances images in memory; thread-compatible, not thread-safe (one per thread).

    Args:
        model: a preset name (``"quality"``, ``"realtime"``: the bundled weights), a ``.safetensors`` weights file, or
            an exported float-I/O artifact (``.onnx``, ``.xml``) run by ``backend``.
        backend: ``"torch"`` for weights and presets (the default), or any ``lle`` backend name for an artifact
            (``"auto"`` picks the best installed).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (torch backend).
        tile: tile size in px for large images (0: automatic, as ``lle enhance``).

    Raises:
        InputError: unknown preset, missing file, or an artifact that takes video frames instead of float images.
        MissingDependencyError: the backend's runtime is not installed (names the extra).

    Example:
        >>> import numpy as np, lle                                   # doctest: +SKIP
        >>> out = lle.ImageEnhancer()(np.full((64, 96, 3), 20, np.uint8))  # doctest: +SKIP
        >>> out.shape, out.dtype, int(out.mean()) > 20                 # doctest: +SKIP
        ((64, 96, 3), dtype('uint8'), True)
    """

    def __init__(self, model: str | Path = "quality", *, backend: str = "torch", device: str = "auto",
                 tile: int = 0) -> None:  # fmt: skip
        self.model, self.backend_name, self.device, self.tile = model, backend, device, tile
        self._backend: Backend | None = None
        self._enhancer: Enhancer | None = None

    def load(self) -> ImageEnhancer:
        """Load the model now (otherwise the first call does); returns self."""
        if self._enhancer is not None:
            return self
        from lle.backends.registry import load_backend
        from lle.enhance import make_enhancer
        from lle.presets import bundled_weights, is_preset_name

        path = bundled_weights(str(self.model)) if is_preset_name(self.model) else Path(self.model)
        if not path.is_file():
            raise InputError(f"model file not found: {path}", hint="pass a preset name, weights or an artifact")
        opts: dict[str, Any] = {"device": self.device} if self.backend_name == "torch" else {}
        backend = load_backend(self.backend_name, path, **opts)
        spec = backend.input_spec
        if spec.dtype != "float32" or spec.layout != "NCHW":
            backend.close()
            raise InputError(f"{path} takes {spec.layout} {spec.dtype} video frames, not float images",
                             hint="export with --io float32, or use the weights / a preset name")  # fmt: skip
        self._backend, self._enhancer = backend, make_enhancer(backend, self.tile)
        return self

    def close(self) -> None:
        """Release the model (idempotent)."""
        if self._backend is not None:
            self._backend.close()
        self._backend, self._enhancer = None, None

    def __enter__(self) -> ImageEnhancer:
        return self.load()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, image: Any) -> Any:
        """Enhance one image; returns the same kind (numpy dtype and shape, or a PIL image of the same mode).

        ``image``: (H, W, 3) RGB, (H, W, 4) RGBA (alpha kept) or (H, W) greyscale, as uint8, uint16 or float in
        [0, 1]; or a PIL image (RGB, RGBA, L, LA; other modes are converted to RGB).

        Raises:
            InputError: another shape or dtype, float values outside [0, 1], NaN, or an empty image.
        """
        if _is_pil(image):
            return self._pil(image)
        arr = np.asarray(image)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape[:2]:
            raise InputError(f"image of shape {arr.shape} is not (H, W), (H, W, 3) or (H, W, 4)",
                             hint="pass RGB, RGBA or greyscale pixels")  # fmt: skip
        if arr.dtype in _SCALE:
            scale = _SCALE[arr.dtype]
            x = arr.astype(np.float32) * np.float32(1.0 / scale)
        elif arr.dtype.kind == "f":
            x = arr.astype(np.float32)
            if not np.isfinite(x).all() or float(x.min()) < 0.0 or float(x.max()) > 1.0:
                raise InputError(f"float image values must be finite and in [0, 1], got [{x.min():.3g}, "
                                 f"{x.max():.3g}]", hint="divide 8-bit values by 255")  # fmt: skip
        else:
            raise InputError(f"image dtype {arr.dtype} is not supported", hint="use uint8, uint16 or float in [0, 1]")
        grey = x.ndim == 2
        rgb = np.repeat(x[..., None], 3, axis=2) if grey else x[..., :3]
        y = self._rgb(rgb)
        if grey:
            y = y @ np.array([0.299, 0.587, 0.114], np.float32)
        elif x.shape[2] == 4:
            y = np.concatenate([y, x[..., 3:]], axis=2)
        if arr.dtype in _SCALE:
            return (y * np.float32(_SCALE[arr.dtype]) + 0.5).astype(arr.dtype)
        return y

    def _rgb(self, rgb: np.ndarray) -> np.ndarray:
        enhancer = self.load()._enhancer
        assert enhancer is not None  # load() sets it or raises
        out = enhancer(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]))
        return np.ascontiguousarray(out[0].transpose(1, 2, 0))

    def _pil(self, image: Any) -> Any:
        from PIL import Image

        mode = image.mode if image.mode in ("RGB", "RGBA", "L") else "RGB"
        if image.mode == "LA":
            mode = "RGBA"
        out = self(np.asarray(image.convert(mode)))
        result = Image.fromarray(out)
        return result.convert("LA") if image.mode == "LA" else result
