import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from opgraph._base.cli_options import load_callable, user_error_line
from opgraph.cli import cli, main
from opgraph.errors import OpgraphError


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "opgraph.cli", *args], capture_output=True, text=True, timeout=300, input=stdin
    )


def _one_line_exit_2(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


@pytest.mark.parametrize(
    "exc,expect",
    [
        (OpgraphError("bad\n  value"), "bad value"),
        (EOFError(), "unexpected end of input"),
        (FileNotFoundError(2, "No such file or directory", "/x/y.npz"), "/x/y.npz: No such file or directory"),
        (PermissionError(13, "Permission denied", "f"), "f: Permission denied"),
        (IsADirectoryError(21, "Is a directory", "d"), "d: Is a directory"),
        (b"\xff".decode("utf-8", "strict") if False else UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), "UTF-8"),
    ],
)
def test_user_errors_are_one_line(exc, expect):
    line = user_error_line(exc)
    assert line is not None and expect in line and "\n" not in line


def test_missing_extra_names_the_pip_extra():
    exc = ModuleNotFoundError("No module named 'torch_geometric'", name="torch_geometric")
    assert user_error_line(exc) == ("this needs torch_geometric, which is not installed: pip install 'opgraph[perf]'")
    assert user_error_line(ModuleNotFoundError("x", name="some_internal_typo")) is None
    torch_missing = ModuleNotFoundError("No module named 'torch'", name="torch")
    assert user_error_line(torch_missing).endswith("pip install 'opgraph[torch]'")
    assert user_error_line(torch_missing, "perf").endswith("pip install 'opgraph[perf]'")
    dask_missing = ModuleNotFoundError("No module named 'dask'", name="dask")
    assert user_error_line(dask_missing, "ffa").endswith("pip install 'opgraph[dask]'")


def test_ffa_without_torch_names_the_ffa_extra(tmp_path):
    """Hide torch from a subprocess; `opgraph ffa train` must say which extra to install."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
    )
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-m", "opgraph.cli", "ffa", "train", "--data", "digits", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    _one_line_exit_2(proc)
    assert "pip install 'opgraph[ffa]'" in proc.stderr


def test_bugs_keep_their_traceback():
    assert user_error_line(KeyError(3)) is None
    assert user_error_line(ZeroDivisionError()) is None


def _add_failing_command(name, exc):
    @cli.command(name=name, hidden=True)
    def _cmd() -> None:
        raise exc

    return name


@pytest.mark.parametrize(
    "exc,expect",
    [
        (EOFError(), "unexpected end of input"),
        (ModuleNotFoundError("No module named 'torch'", name="torch"), "pip install 'opgraph[torch]'"),
        (FileNotFoundError(2, "No such file or directory", "in.npz"), "in.npz: No such file"),
        (OpgraphError("--rounds 0: give at least 1"), "--rounds 0"),
    ],
)
def test_handler_through_main_and_clirunner(exc, expect, capsys):
    name = _add_failing_command(f"fail-{type(exc).__name__.lower()}", exc)
    try:
        with pytest.raises(SystemExit) as info:
            main([name])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0] and err[0].startswith("error: ")
        result = CliRunner().invoke(cli, [name])
        assert result.exit_code == 2 and expect in result.output
        with pytest.raises(type(exc)):
            main(["--debug", name])
    finally:
        cli.commands.pop(name)


def test_bug_is_not_swallowed():
    name = _add_failing_command("fail-bug", KeyError(3))
    try:
        with pytest.raises(KeyError):
            main([name])
    finally:
        cli.commands.pop(name)


def test_empty_file_is_exit_2_not_aborted(tmp_path):
    pytest.importorskip("torch")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    proc = run("ffa", "train", "--data", str(empty), "--epochs", "1", "--out", str(tmp_path / "run"))
    _one_line_exit_2(proc)
    # Either the reader names the file or the shared EOFError mapping says the input ended early; never "aborted".
    assert "empty.npz" in proc.stderr or "unexpected end of input" in proc.stderr
    assert "aborted" not in proc.stderr.lower()


def test_usage_errors_still_exit_2():
    proc = run("graph")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_load_callable(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    return 7\n")
    assert load_callable(tmp_path / "m.py", "f")() == 7
    with pytest.raises(OpgraphError, match="no attribute 'g'"):
        load_callable(tmp_path / "m.py", "g")
    (tmp_path / "bad.py").write_text("def (:\n")
    with pytest.raises(OpgraphError, match="syntax error"):
        load_callable(tmp_path / "bad.py", "f")
    assert isinstance(cli, click.Group)


def _walk(cmd, path=()):
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                yield from _walk(sub, (*path, name))


def test_every_command_uses_the_shared_options():
    """--out/--json/--seed/--executor mean the same everywhere (made by opgraph._base.cli_options)."""
    seen = set()
    for path, cmd in _walk(cli):
        for p in getattr(cmd, "params", []):
            if not isinstance(p, click.Option):
                continue
            name = p.opts[0]
            if name == "--json":
                assert isinstance(p.type, click.Path) and not p.type.dir_okay and p.type.type is not None, path
            elif name == "--out":
                assert isinstance(p.type, click.Path) and p.type.type is not None, path  # a pathlib.Path
                assert p.type.file_okay != p.type.dir_okay, path
            elif name == "--seed":
                assert p.type is click.INT, path
            elif name == "--executor":
                assert p.default == "serial" and "dask://" in p.help, path
            else:
                continue
            seen.add(name)
    assert {"--json", "--out", "--seed"} <= seen
