"""Import optional dependencies on first use, with an error that names the extra to install.

:func:`require` is the one way lle imports OpenVINO and NNCF, so it turns their usage telemetry off first
(:func:`quiet_openvino_telemetry`).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from lle.errors import MissingDependencyError

__all__ = ["TELEMETRY_ENV", "quiet_openvino_telemetry", "require"]

TELEMETRY_ENV = "LLE_OPENVINO_TELEMETRY"
"""``1``: leave OpenVINO's and NNCF's usage telemetry to their own consent file; ``0``: off even if that consents.
Unset: off, unless ``opt_in_out --opt_in`` wrote ``1`` into the consent file."""

_TELEMETRY_SENDERS = frozenset({"openvino", "nncf"})


def _consent_file() -> Path:
    """Where ``opt_in_out --opt_in``/``--opt_out`` records the choice (``openvino_telemetry`` 2023-2025 layout)."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", "")) / "Intel Corporation" / "openvino_telemetry"
    return Path.home() / "intel" / "openvino_telemetry"


def _opted_in() -> bool:
    choice = os.environ.get(TELEMETRY_ENV, "").strip().lower()
    if choice:
        return choice in {"1", "true", "yes", "on"}
    try:
        return _consent_file().read_text().strip() == "1"
    except (OSError, RuntimeError, UnicodeDecodeError):  # no file, no home folder
        return False


@functools.cache
def quiet_openvino_telemetry() -> None:
    """Keep OpenVINO and NNCF from sending usage telemetry from this process; runs once, before either is imported.

    ``import openvino`` sends an event (through ``openvino.tools.ovc``) and NNCF sends its own unless the user ran
    ``opt_in_out --opt_out``; each event forks a process that, offline, can outlive its 3 s timeout and keep the
    interpreter from exiting. Neither package has an environment switch beyond CI detection (``CI=true``), and both
    fall back to a no-op stub when the ``openvino_telemetry`` package cannot be imported, so it is made unimportable
    here (a ``None`` entry in ``sys.modules``, unless something imported it already) and ``NNCF_CI``, NNCF's own
    switch, is set with ``os.environ.setdefault``. Nothing is written to the user's consent file.

    The user's explicit choice wins: ``LLE_OPENVINO_TELEMETRY=1`` (or ``opt_in_out --opt_in``, unless
    ``LLE_OPENVINO_TELEMETRY=0``) leaves both packages as they are.

    Example:
        >>> quiet_openvino_telemetry()  # idempotent; lle's require("openvino"/"nncf") calls it first
    """
    if _opted_in():
        return
    os.environ.setdefault("NNCF_CI", "1")
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]  # None: import raises ImportError


def require(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install 'lle[extra]'``.

    OpenVINO and NNCF (``openvino``, ``nncf`` and their submodules) are imported with their telemetry off
    (:func:`quiet_openvino_telemetry`).

    Example:
        >>> require("json", extra="core").__name__
        'json'
    """
    if module.partition(".")[0] in _TELEMETRY_SENDERS:
        quiet_openvino_telemetry()
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{module} is not installed (needed for this command)",
            hint=f"pip install 'lle[{extra}]'",
        ) from err
