"""A report.json of the wrong shape gives one error line from `opgraph report`, never a traceback."""

from __future__ import annotations

import json

import pytest

from opgraph.report import Section, Table, write_report


@pytest.fixture
def report_dir(tmp_path):
    section = Section(id="s", title="S", summary="x", tables=[Table(["a"], [[1]])], data={"k": 1}, notes=["n"])
    write_report([section], tmp_path / "r", title="t")
    return tmp_path / "r"


def _edit(folder, change):
    path = folder / "report.json"
    doc = json.loads(path.read_text())
    doc = change(doc)
    path.write_text(json.dumps(doc))


def _set(path, value):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc

    return change


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: [d], "the document must be a JSON object"),
        (lambda d: None, "the document must be a JSON object"),
        (_set(["sections"], {"a": 1}), "'sections' must be a list"),
        (_set(["sections", 0], 7), "sections[0] must be an object"),
        (_set(["sections", 0, "id"], None), "sections[0].id must be a string"),
        (_set(["sections", 0, "notes"], [1]), "notes must be a list of strings"),
        (_set(["sections", 0, "figures"], [{"name": "f"}]), "figures[0].path must be a non-empty string"),
        (_set(["sections", 0, "tables", 0, "rows"], [[1, 2]]), "rows[0] must be a list of 1 cells"),
        (_set(["sections", 0, "data"], []), "data must be an object"),
        (_set(["title"], 5), "'title' must be a string"),
        (_set(["sections", 0, "links"], 2.2e-16), "links must be an object of strings"),
        (_set(["sections", 0, "links"], {"docs": [1]}), "links must be an object of strings"),
        (_set(["sections", 0, "command"], []), "command must be a string"),
    ],
)
def test_wrong_shape_is_one_line(report_dir, cli_error, change, needle):
    _edit(report_dir, change)
    cli_error("report", str(report_dir), needles=(needle,))


def test_valid_report_still_rebuilds(report_dir, cli_run):
    code, out, err = cli_run("report", str(report_dir))
    assert code == 0 and "index.html" in out, err
