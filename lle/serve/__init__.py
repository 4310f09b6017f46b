"""Serving on Triton Inference Server: model repositories, the Python-backend model, a local server launcher.

Importing this package imports no runtime and no Triton package; the client backend is
:mod:`lle.backends.triton_backend`.
"""

from __future__ import annotations

__all__: list[str] = []
