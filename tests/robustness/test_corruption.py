"""Property-based corruption of every file opgraph reads: a correct load of a valid file, or one OpgraphError.

Never another exception, never a silent wrong load (a checksummed file that loads with other content). The
engine is ``corruption.py`` beside this file; ``benchmarks/robustness/corrupt.py`` runs it longer and writes the
counts to docs/reliability.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).parent))
from corruption import FORMATS, classify, json_mutations, mutations  # noqa: E402

EXAMPLES = 12
_prepared: dict[str, object] = {}


def _prepare(name, tmp_path_factory, needs):
    fmt = FORMATS[name]
    if fmt.missing(needs):
        pytest.skip(f"{needs} is not present here")
    if name not in _prepared:
        _prepared[name] = fmt.make(tmp_path_factory.mktemp("corrupt"))
    return fmt, _prepared[name]


@pytest.mark.parametrize("name", list(FORMATS))
def test_corrupted_file_loads_correctly_or_is_refused(name, tmp_path_factory):
    fmt, prepared = _prepare(name, tmp_path_factory, FORMATS[name].needs)
    size = prepared.target.stat().st_size

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(mutation=mutations(size))
    def check(mutation):
        label, mutate = mutation
        outcome, detail = classify(fmt, prepared, mutate)
        assert outcome in ("same", "valid-other", "refused"), f"{name} {label}: {outcome} {detail}"

    check()


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if n.endswith(".json")])
def test_json_of_the_wrong_shape_is_refused(name, tmp_path_factory):
    fmt, prepared = _prepare(name, tmp_path_factory, FORMATS[name].shape_needs)
    doc = json.loads(prepared.target.read_text())

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(mutation=json_mutations(doc))
    def check(mutation):
        label, mutate = mutation
        outcome, detail = classify(fmt, prepared, mutate)
        assert outcome in ("same", "valid-other", "refused"), f"{name} {label}: {outcome} {detail}"

    check()


def test_classify_detects_a_silent_wrong_load(tmp_path):
    """The oracle itself: a loader that ignores corruption of a checksummed format is caught."""
    from corruption import FileFormat, Prepared

    target = tmp_path / "f.bin"
    target.write_bytes(b"abc")
    fmt = FileFormat("fake", lambda t: None, checksummed=True)
    prepared = Prepared(target, lambda: target.read_bytes(), b"abc")
    assert classify(fmt, prepared, lambda b: b"abd")[0] == "silent-wrong"
    assert classify(fmt, prepared, lambda b: b)[0] == "same"
    crashing = Prepared(target, lambda: json.loads(target.read_text()), None)
    assert classify(fmt, crashing, lambda b: b"{")[0] == "crash"
    assert target.read_bytes() == b"abc"  # restored
