import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from opgraph.energy.errors import EnergyError  # noqa: E402
from opgraph.energy.recorder import Run, load  # noqa: E402
from opgraph.graph import Graph, Node  # noqa: E402


def _run(v, n=1000):
    g = Graph((Node(0, "input", (), meta={"v": v, "x": float("nan")}),), (0,), (0,), meta={"replayable": True})
    return Run(graph=g, settings={}, values={0: torch.full((n,), float(v))}, outputs=(torch.tensor([v]),))


def test_save_load_round_trip_and_checksum(tmp_path):
    out = _run(3).save(tmp_path / "r")
    text = (out / "graph.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    back = load(out)
    assert back.values[0][0].item() == 3 and back.graph.nodes[0].meta["v"] == 3
    assert sorted(os.listdir(out)) == ["graph.json", "values.pt"]
    # a values.pt from another save (what a save cut off between its two files used to leave)
    other = _run(4).save(tmp_path / "o")
    (out / "values.pt").write_bytes((other / "values.pt").read_bytes())
    with pytest.raises(EnergyError, match="does not belong to graph.json"):
        load(out)
    (out / "values.pt").unlink()
    with pytest.raises(EnergyError, match="missing"):
        load(out)


def test_random_bytes_values_are_one_line(tmp_path):
    out = _run(1).save(tmp_path / "r")
    blob = os.urandom(500)
    (out / "values.pt").write_bytes(blob)
    doc = json.loads((out / "graph.json").read_text())
    doc["values_sha256"] = hashlib.sha256(blob).hexdigest()
    (out / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(EnergyError, match="not a readable checkpoint") as info:
        load(out)
    assert "\n" not in str(info.value)


WRITER = r"""
import sys, torch
sys.path.insert(0, sys.argv[3])
from test_run_save import _run
out, v = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
while True:
    _run(v, n=300_000).save(out)
    v += 1
"""


def test_run_folder_is_whole_after_random_kills(tmp_path):
    out = tmp_path / "r"
    _run(0, n=300_000).save(out)
    rng = random.Random(1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    here = os.path.dirname(__file__)
    seen, start = set(), 1
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(out), str(start), here], stdout=subprocess.PIPE, env=env, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        run = load(out)  # never a mix: graph and values from one save
        v = run.graph.nodes[0].meta["v"]
        assert run.values[0][0].item() == v and run.values[0][-1].item() == v
        seen.add(v)
        start += 10_000
    assert len(seen) > 2, sorted(seen)
