"""Helpers of the bad-input matrix: run a command like a user, then check its one-line error and its output folder."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lle.cli._common import STATE


@dataclass
class Outcome:
    exit_code: int
    output: str
    exception: BaseException | None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("error:")]


def invoke(*args: object) -> Outcome:
    """``lle ARGS`` in-process, as the console script runs it (stdout and stderr together)."""
    from lle.cli.app import app

    STATE["debug"] = False
    r = CliRunner().invoke(app, [str(a) for a in args])
    exc = r.exception if r.exception is not None and not isinstance(r.exception, SystemExit) else None
    return Outcome(r.exit_code, r.output, exc)


def assert_one_line_error(res: Outcome, *names: str) -> str:
    """Exit code != 0, no traceback, exactly one ``error:`` line, naming one of ``names`` (with its hint)."""
    assert res.exception is None, f"uncaught {res.exception!r}\n{res.output}"
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output, res.output
    assert len(res.error_lines) == 1, res.output
    text = res.error_lines[0] + "\n" + "\n".join(ln for ln in res.output.splitlines() if ln.startswith("hint:"))
    assert not names or any(n in text for n in names), f"{names} not named in: {text}"
    return text


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder`` (hidden ones too)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def assert_nothing_partial(folder: Path) -> None:
    """No hidden temp files and no empty files were left in ``folder``."""
    for p in folder.rglob("*") if folder.exists() else []:
        if p.is_file():
            assert not p.name.startswith("."), f"temporary file left behind: {p}"
            assert p.stat().st_size > 0, f"empty file left behind: {p}"


@pytest.fixture
def quiet_root() -> None:
    """The CLI's root callback installs a log handler on 'lle'; leave logging as it was after the test."""
    import logging

    log = logging.getLogger("lle")
    handlers, level = list(log.handlers), log.level
    yield
    log.handlers[:] = handlers
    log.setLevel(level)
