"""Fixtures of the robustness suite: run the CLI in-process and check that a bad input gives one error line."""

from __future__ import annotations

import contextlib
import io

import pytest

from opgraph.cli import main


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``opgraph ARGS`` in this process; return ``(exit status, stdout, stderr)``.

    Any exception that escapes :func:`opgraph.cli.main` (a traceback for the user) propagates to the test.
    """
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """Check the CLI exited with status 2 and printed one ``error:`` line containing every needle."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def cli_error():
    """``cli_error(*args, needles=())``: run the CLI, assert one ``error:`` line with exit 2; return the line."""

    def check(*args: str, needles: tuple[str, ...] = ()) -> str:
        code, _, err = run_cli(*args)
        return assert_one_line_error(code, err, *needles)

    return check


@pytest.fixture
def cli_run():
    """``cli_run(*args)``: run the CLI in-process and return ``(exit status, stdout, stderr)``."""
    return run_cli
