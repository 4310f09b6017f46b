"""Typed configuration: frozen dataclass trees loaded from YAML, with ``a.b=v`` overrides cast to the field type."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lle.errors import ConfigError

__all__ = ["dump_config", "from_dict", "load_config", "to_dict"]

T = TypeVar("T")


def _cast(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _cast(a, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: cannot use {value!r} as {tp}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")  # type: ignore[arg-type]
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_cast(inner, v, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    try:
        if tp is bool:
            if isinstance(value, str):
                if value.lower() in {"true", "1", "yes"}:
                    return True
                if value.lower() in {"false", "0", "no"}:
                    return False
                raise ValueError(value)
            return bool(value)
        if tp in (int, float, str):
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return tp(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}") from err
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict. Unknown keys raise :class:`ConfigError` naming the valid ones."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - fields
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{sorted(unknown)[0]}", hint=f"valid keys: {', '.join(sorted(fields))}"
        )
    return cls(**{k: _cast(hints[k], v, prefix + k) for k, v in data.items()})


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain dict/list/scalars (for YAML/JSON)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _set(tree: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {k} is not a section")
    node[keys[-1]] = yaml.safe_load(raw) if raw != "" else ""


def load_config(cls: type[T], path: Path | None = None, overrides: list[str] | None = None) -> T:
    """Load ``cls`` from YAML ``path`` (or defaults) and apply ``key.sub=value`` overrides.

    Raises:
        ConfigError: unreadable YAML, unknown key or a value of the wrong type.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            tree = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read config {path}: {err}") from err
        if not isinstance(tree, dict):
            raise ConfigError(f"config {path} must be a mapping at the top level")
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} is not key=value", hint="e.g. --set train.steps=1000")
        k, v = ov.split("=", 1)
        _set(tree, k.strip(), v.strip())
    return from_dict(cls, tree)


def dump_config(cfg: Any, path: Path) -> None:
    """Write ``cfg`` as YAML (the resolved configuration saved beside every run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
