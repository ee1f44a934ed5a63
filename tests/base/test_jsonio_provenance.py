import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from opgraph._base.jsonio import as_float, dumps, read_json, to_jsonable, write_json
from opgraph._base.provenance import cpu_model, machine, machine_line
from opgraph.errors import OpgraphError


@dataclass
class _Rec:
    a: float
    b: tuple


def test_strict_json_policy():
    value = {
        "nan": float("nan"),
        "inf": math.inf,
        "ninf": -math.inf,
        "arr": np.array([1.0, np.nan, np.inf]),
        "np": np.float32(0.5),
        "i": np.int64(3),
        "t": (1, {2}),
        "p": Path("/x/y"),
        "rec": _Rec(float("nan"), (1,)),
        3: "int key",
    }
    text = dumps(value)
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert back["nan"] == "NaN" and back["inf"] == "Infinity" and back["ninf"] == "-Infinity"
    assert math.isnan(as_float(back["nan"])) and as_float(back["ninf"]) == -math.inf and as_float(None) is None
    assert back["arr"] == [1.0, "NaN", "Infinity"] and back["np"] == 0.5 and back["i"] == 3
    assert back["t"] == [1, [2]] and back["p"] == "/x/y" and back["rec"] == {"a": "NaN", "b": [1]}
    assert back["3"] == "int key"
    assert to_jsonable(object()).startswith("<object")


def test_write_and_read_json(tmp_path):
    p = write_json(tmp_path / "a.json", {"x": [1, float("nan")]})
    assert read_json(p) == {"x": [1, "NaN"]}
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(OpgraphError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(OpgraphError, match="not UTF-8"):
        read_json(tmp_path / "bin.json")
    with pytest.raises(OpgraphError, match="no such file"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(OpgraphError, match="not valid JSON"):
        read_json(tmp_path / "deep.json")


def test_provenance():
    m = machine()
    assert m["cpu"] == cpu_model() and m["cores"] >= 1 and m["python"].count(".") == 2
    json.dumps(m, allow_nan=False)
    assert m["cpu"] in machine_line()
