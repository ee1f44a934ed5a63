from __future__ import annotations

import pytest

pytest.importorskip("torch_geometric")


def test_report_section(tmp_path, monkeypatch):
    monkeypatch.setenv("OPGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    from opgraph.perf.demo import report_section
    from opgraph.report import Section

    sec = report_section(tmp_path / "work", quick=True)
    assert isinstance(sec, Section) and sec.id == "perf"
    assert {f.name for f in sec.figures} == {"tau_vs_ceiling", "predicted_vs_measured", "layout_choice"}
    assert all(f.png.startswith(b"\x89PNG") for f in sec.figures)
    names = [row[0] for row in sec.tables[0].rows]
    assert "GNN (SAGE, ListMLE)" in names and names[-1].startswith("noise ceiling")
    assert (tmp_path / "work" / "perf-demo-model.pt").is_file()
    assert any((tmp_path / "cache" / "perf").iterdir())  # cached for the next run
    assert sec.notes
