"""Exception hierarchy. Every error a user can cause is an :class:`LLEError` with a one-line message."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigError",
    "DataError",
    "ExportError",
    "InputError",
    "LLEError",
    "MissingDependencyError",
    "ParityError",
]


class LLEError(Exception):
    """Base class. ``hint`` is an optional second line telling the user how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(LLEError):
    """A configuration key or value is invalid."""


class InputError(LLEError):
    """A user-supplied file, folder or stream cannot be used."""


class DataError(LLEError):
    """A training or evaluation data set is malformed."""


class MissingDependencyError(LLEError):
    """An optional dependency is not installed."""


class ExportError(LLEError):
    """An export step failed."""


class BackendError(LLEError):
    """A backend cannot load or run an artifact."""


class ParityError(ExportError):
    """An exported artifact does not match the reference model within tolerance."""
