import json
import os

import pytest

from opgraph.errors import OpgraphError
from opgraph.report import Figure, Section, load_report, rebuild_report, write_report

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _report_with_figure_path(folder, path):
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": "opgraph.report/1",
        "title": "t",
        "sections": [{"id": "a", "title": "A", "figures": [{"name": "f", "path": path}]}],
    }
    (folder / "report.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/hostname", "figures/../../secret.txt", "figures\\..\\x", ""])
def test_report_json_cannot_name_files_outside_its_folder(tmp_path, path):
    (tmp_path / "secret.txt").write_bytes(PNG + b"TOP-SECRET")
    _report_with_figure_path(tmp_path / "r", path)
    with pytest.raises(OpgraphError) as info:
        rebuild_report(tmp_path / "r")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "r" / "index.html").exists()


def test_symlink_out_of_the_folder_is_refused(tmp_path):
    (tmp_path / "secret.png").write_bytes(PNG + b"TOP-SECRET")
    (tmp_path / "r" / "figures").mkdir(parents=True)
    os.symlink(tmp_path / "secret.png", tmp_path / "r" / "figures" / "f.png")
    _report_with_figure_path(tmp_path / "r", "figures/f.png")
    with pytest.raises(OpgraphError, match="link out of"):
        load_report(tmp_path / "r")


def test_non_png_figure_inside_the_folder_is_refused(tmp_path):
    (tmp_path / "r" / "figures").mkdir(parents=True)
    (tmp_path / "r" / "figures" / "f.png").write_text("not an image")
    _report_with_figure_path(tmp_path / "r", "figures/f.png")
    with pytest.raises(OpgraphError, match="not a PNG"):
        load_report(tmp_path / "r")


def test_valid_figure_path_still_loads(tmp_path):
    (tmp_path / "r" / "figures" / "a").mkdir(parents=True)
    (tmp_path / "r" / "figures" / "a" / "f.png").write_bytes(PNG)
    _report_with_figure_path(tmp_path / "r", "figures/a/f.png")
    _, sections = load_report(tmp_path / "r")
    assert sections[0].figures[0].png == PNG


@pytest.mark.parametrize("sid,fname", [("../../escape", "f"), ("a", "../../escape"), ("/abs", "f"), ("a", ".hidden")])
def test_write_report_refuses_ids_and_names_that_leave_the_folder(tmp_path, sid, fname):
    out = tmp_path / "deep" / "r"
    with pytest.raises(OpgraphError, match="cannot be used as a file name"):
        write_report(
            [Section("ok", "T", figures=[Figure("f", PNG)]), Section(sid, "T", figures=[Figure(fname, PNG)])], out
        )
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == []


def test_command_and_links_are_shown_saved_and_reloaded(tmp_path):
    sec = Section(
        "a",
        "A",
        command="opgraph demo --only dcg",
        links={"docs": "https://example.org/dcg", "bench": "docs/benchmarks/dcg.md", "bad": "javascript:alert(1)"},
    )
    page = write_report([sec], tmp_path / "r").read_text()
    assert "Reproduce: <code>opgraph demo --only dcg</code>" in page
    assert '<a href="https://example.org/dcg">' in page and "<code>docs/benchmarks/dcg.md</code>" in page
    assert 'href="javascript' not in page
    _, (back,) = load_report(tmp_path / "r")
    assert back.command == sec.command and back.links == sec.links
    rebuild_report(tmp_path / "r")
    assert "Reproduce:" in (tmp_path / "r" / "index.html").read_text()
