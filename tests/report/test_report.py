import json

import matplotlib.pyplot as plt
import pytest

from opgraph.report import Figure, ReportError, Section, Table, load_report, rebuild_report, write_report


def sample_sections():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 2])
    return [
        Section(
            id="one",
            title="First <system>",
            summary="Para one.\n\nPara two with <b>markup</b> that must be escaped.",
            figures=[Figure.from_matplotlib(fig, "line", "A line.")],
            tables=[Table(["name", "value_s"], [["a", 1.23456789], ["b", 1e-7]], "Numbers")],
            data={"x": [1, 2, 3]},
            notes=["energy is modelled, not measured"],
        ),
        Section(id="two", title="Second", summary="No figures here."),
    ]


def test_write_report_is_self_contained_and_json_beside(tmp_path):
    page = write_report(sample_sections(), tmp_path / "r", title="T")
    html = page.read_text()
    assert html.count('class="report-section"') == 2
    assert "data:image/png;base64," in html
    assert "&lt;b&gt;markup&lt;/b&gt;" in html and "<b>markup</b>" not in html
    assert "energy is modelled" in html and "1.235" in html and "1.000e-07" in html
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["sections"][0]["data"] == {"x": [1, 2, 3]}
    assert (tmp_path / "r" / "figures" / "one" / "line.png").is_file()
    assert not list(tmp_path.rglob(".*opgraph-tmp*"))


def test_rebuild_from_json(tmp_path):
    write_report(sample_sections(), tmp_path, title="Again")
    (tmp_path / "index.html").unlink()
    rebuild_report(tmp_path)
    title, sections = load_report(tmp_path)
    assert title == "Again" and [s.id for s in sections] == ["one", "two"]
    assert "data:image/png" in (tmp_path / "index.html").read_text()


def test_errors(tmp_path):
    with pytest.raises(ReportError, match="not found"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(ReportError, match="not an opgraph report"):
        load_report(tmp_path)
    with pytest.raises(ReportError, match="distinct ids"):
        write_report([Section("a", "A"), Section("a", "B")], tmp_path / "x")
    with pytest.raises(ValueError, match="2 columns"):
        Table(["a", "b"], [[1]])


def test_failed_write_keeps_old_file(tmp_path):
    from opgraph._base.fileio import atomic_open, atomic_write

    target = tmp_path / "keep.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as fh:
        fh.write("new and half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
