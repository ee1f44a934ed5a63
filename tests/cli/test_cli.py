import subprocess
import sys

import pytest
from click.testing import CliRunner

from opgraph import __version__
from opgraph.cli import cli, main


def run(*args):
    return subprocess.run([sys.executable, "-m", "opgraph.cli", *args], capture_output=True, text=True, timeout=300)


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_graph_command_expression(tmp_path):
    png = tmp_path / "g.png"
    result = CliRunner().invoke(cli, ["graph", "x*y + sin(z) - x*y", "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "mul" in result.output and "dominator path" in result.output
    assert png.is_file()


def test_graph_command_from_file(tmp_path):
    src = tmp_path / "model.py"
    src.write_text("import numpy as np\n\ndef f(a, b):\n    return np.exp(a) * b\n")
    result = CliRunner().invoke(cli, ["graph", f"{src}:f"])
    assert result.exit_code == 0, result.output
    assert "exp" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["graph", "foo(x)"], "unknown function 'foo'"),
        (["graph", "x +"], "syntax error"),
        (["graph", "/no/such/file.py:f"], "not found"),
        (["report", "/no/such/dir"], "does not exist"),
        (["graph", "__import__('os')"], "unknown function"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_untraceable_function_exit_2(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f(x):\n    if x > 0:\n        return x\n    return -x\n")
    proc = run("graph", f"{src}:f")
    assert proc.returncode == 2 and "control flow" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("--debug", "graph", f"{src}:f")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_demo_and_report_commands(tmp_path, monkeypatch):
    monkeypatch.setattr("opgraph.demo.SYSTEMS", ())
    out = tmp_path / "d"
    with pytest.raises(SystemExit) as exc:
        main(["report", str(out)])
    assert exc.value.code == 2
    result = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file() and (out / "report.json").is_file()
    assert "[1/1] graph core:" in result.output  # progress per section (stderr, mixed in by CliRunner)
    assert "Reproduce: <code>opgraph graph" in (out / "index.html").read_text()
    (out / "index.html").unlink()
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0 and (out / "index.html").is_file()


def test_dist_is_a_hidden_alias_of_dcg():
    from click.testing import CliRunner

    from opgraph.cli import cli

    runner = CliRunner()
    listed = runner.invoke(cli, ["--help"])
    assert "dcg" in listed.output and " dist " not in listed.output
    with runner.isolated_filesystem():  # the default --plot file goes into the current folder
        a = runner.invoke(cli, ["dcg", "x + 1", "--var", "x=uniform:0,1", "--atoms", "8"])
        b = runner.invoke(cli, ["dist", "x + 1", "--var", "x=uniform:0,1", "--atoms", "8"])
    assert a.exit_code == 0, a.output
    assert b.exit_code == 0, b.output
    assert a.output.splitlines()[:3] == b.output.splitlines()[:3]
