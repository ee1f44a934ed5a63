"""A saved energy run whose graph.json has non-numeric times is refused in one line (was a TypeError)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("value", [[], [None], {}, "fast", -1.0, True])
def test_bad_times_in_graph_json_are_refused(tmp_path, value):
    from opgraph.energy.errors import EnergyError
    from opgraph.energy.recorder import load, record

    run = record(lambda x: (x * 2).sum(), torch.ones(3))
    folder = run.save(tmp_path / "run")
    doc = json.loads((folder / "graph.json").read_text())
    doc["wall_s"] = value
    (folder / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(EnergyError, match="wall_s"):
        load(folder)


def test_good_times_load(tmp_path):
    from opgraph.energy.recorder import load, record

    run = record(lambda x: (x * 2).sum(), torch.ones(3))
    loaded = load(run.save(tmp_path / "run"))
    assert loaded.wall_s == pytest.approx(run.wall_s) and loaded.wall_s >= 0
