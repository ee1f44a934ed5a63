import json

import pytest
from click.testing import CliRunner

from opgraph.energy.cli import group

MAKERS = """
import torch
def make():
    torch.manual_seed(0)
    return (lambda x: x.sort(dim=-1, descending=True).values[:, :4]), (torch.randn(32, 1024),)
def make_b():
    torch.manual_seed(0)
    return (lambda x: torch.topk(x, 4).values), (torch.randn(32, 1024),)
def wrong():
    torch.manual_seed(0)
    return (lambda x: torch.topk(x, 4).values + 1), (torch.randn(32, 1024),)
def broken():
    return 3
"""


@pytest.fixture()
def makers(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(MAKERS)
    return p


def test_cli_diff_and_exports(makers, tmp_path):
    r = CliRunner().invoke(
        group,
        [
            "diff",
            f"{makers}:make",
            f"{makers}:make_b",
            "--backend",
            "model",
            "--rounds",
            "3",
            "--json",
            str(tmp_path / "r.json"),
            "--folded",
            str(tmp_path / "f.txt"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "MODELLED" in r.output
    assert json.loads((tmp_path / "r.json").read_text())["findings"][0]["category"] == "api_misuse"


def test_cli_bad_inputs(makers):
    r = CliRunner().invoke(group, ["diff", f"{makers}:make", f"{makers}:wrong", "--backend", "time"])
    assert r.exit_code != 0 and "allow-mismatch" in str(r.exception)
    r = CliRunner().invoke(group, ["diff", f"{makers}:broken", f"{makers}:make"])
    assert r.exit_code != 0 and "(callable, inputs)" in str(r.exception)
    r = CliRunner().invoke(group, ["diff", "nocolon", f"{makers}:make"])
    assert r.exit_code != 0


def test_cli_profile_and_cases(makers, tmp_path):
    r = CliRunner().invoke(group, ["profile", f"{makers}:make", "--backend", "time"])
    assert r.exit_code == 0, r.output
    assert "aten::sort" in r.output, r.output
    r = CliRunner().invoke(group, ["cases", "--list"])
    assert r.exit_code == 0 and "gelu-unfused" in r.output
    r = CliRunner().invoke(
        group,
        [
            "cases",
            "--case",
            "control-addmm",
            "--case",
            "count-nonzero-copy",
            "--backend",
            "model",
            "--rounds",
            "3",
            "--json",
            str(tmp_path / "c.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["model"]["summary"]["control_false_flags"] == 0


def test_demo_section(tmp_path):
    from opgraph.energy.demo import report_section

    sec = report_section(tmp_path, quick=True)
    assert sec.id == "energy" and sec.tables and sec.figures
    assert any("MODELLED" in n for n in sec.notes)
    assert (tmp_path / "gelu-unfused.trace.json").exists()
