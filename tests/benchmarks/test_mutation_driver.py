"""The mutation driver (benchmarks/mutation/run.py): building only the selected lines' mutants changes nothing."""

from __future__ import annotations

import ast
import importlib.util
import json
import random
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).resolve().parents[2] / "benchmarks" / "mutation" / "run.py"

SOURCE = '''
def f(x, y):
    """Docstring: not mutated."""
    if x < 0 and y > 1:
        return max(x, y) + 0.0 * (y - 1.0)
    z = -(-x)
    return min(z, 0.0) if not y else z / 2.0 - 0.0
'''


@pytest.fixture(scope="module")
def drv():
    spec = importlib.util.spec_from_file_location("mutation_driver", DRIVER)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mutation_driver"] = mod  # dataclasses look their module up while the class body runs
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("mutation_driver", None)


def _reference(drv, source: str) -> list[tuple[int, str, str, str, str]]:
    """Every mutant the way the driver built them before: a fresh parse and a tree rewrite per site."""

    class Replace(ast.NodeTransformer):
        def __init__(self, target, replacement):
            self.target, self.replacement = target, replacement

        def visit(self, node):
            return self.replacement if node is self.target else super().visit(node)

    seen = {ast.unparse(ast.parse(source))}
    out = []
    for k in range(len(drv._sites(ast.parse(source)))):
        tree = ast.parse(source)
        node, kind, payload = drv._sites(tree)[k]
        new = drv._apply(node, kind, payload)
        if new is None:
            continue
        original, mutated = ast.unparse(node), ast.unparse(new)
        text = ast.unparse(Replace(node, new).visit(tree))
        if text not in seen:
            seen.add(text)
            out.append((node.lineno, kind, original, mutated, text))
    return out


def _key(m, text):
    return (m.line, m.kind, m.original, m.mutated, text)


def test_all_mutants_match_the_one_parse_per_mutant_reference(drv):
    ref = _reference(drv, SOURCE)
    got = [_key(m, t) for m, t in drv._all_mutants(SOURCE)]
    assert got == ref
    assert [m.index for m, _ in drv._all_mutants(SOURCE)] == list(range(len(ref)))


@pytest.mark.parametrize("lines", [{5}, {4, 7}, {6}, {2, 3}, set(range(1, 9))])
def test_selected_lines_give_the_filtered_full_list_with_the_same_per_line_numbers(drv, lines):
    full = drv._all_mutants(SOURCE)
    part = drv._all_mutants(SOURCE, lines)
    assert [(_key(m, t), m.nth) for m, t in part] == [(_key(m, t), m.nth) for m, t in full if m.line in lines]


def test_nth_numbers_each_lines_mutants_in_order(drv):
    by_line: dict[int, list[int]] = {}
    for m, _ in drv._all_mutants(SOURCE):
        by_line.setdefault(m.line, []).append(m.nth)
    assert all(v == list(range(1, len(v) + 1)) for v in by_line.values())
    # line 7 has `0.0` -> `1.0` twice (same text, different places): told apart by nth
    same = [m.nth for m, _ in drv._all_mutants(SOURCE, {7}) if m.original == "0.0"]
    assert len(same) == 2 and same[0] != same[1]
    assert len({drv.label("m.py", m) for m, _ in drv._all_mutants(SOURCE)}) == len(drv._all_mutants(SOURCE))


def test_seeded_sample_is_the_sample_of_the_filtered_full_list(drv):
    lines = {4, 5, 7}
    full = [mt for mt in drv._all_mutants(SOURCE) if mt[0].line in lines]
    keep = sorted(random.Random(14).sample(range(len(full)), 5))
    got = drv.select_mutants(SOURCE, lines, 5, 14)
    assert [_key(*mt) for mt in got] == [_key(*full[k]) for k in keep]
    even = drv.select_mutants(SOURCE, lines, 4)
    assert [_key(*mt) for mt in even] == [_key(*full[int(k * len(full) / 4)]) for k in range(4)]


def test_only_picks_named_mutants_and_refuses_unknown_ones(drv):
    some = drv._all_mutants(SOURCE)[3:6]
    names = ",".join(f"{m.line}#{m.nth}" for m, _ in some)
    got = drv.select_mutants(SOURCE, only=drv._parse_only(names))
    assert [_key(*mt) for mt in got] == [_key(*mt) for mt in some]
    with pytest.raises(SystemExit, match="99#1"):
        drv.select_mutants(SOURCE, only={(99, 1)})


def _ran(drv, muts) -> list[dict]:
    """The ``ran`` list a run's --json saves for these mutants."""
    from dataclasses import asdict

    return [asdict(m) for m, _ in muts]


def test_without_exclusion_the_selection_is_unchanged(drv):
    lines = {4, 5, 7}
    empty = drv.Exclusion(set(), set())
    for args in ((lines, 5, 14), (lines, 4, None), (None, None, None)):
        assert [_key(*mt) for mt in drv.select_mutants(SOURCE, *args, None, empty)] == [
            _key(*mt) for mt in drv.select_mutants(SOURCE, *args)
        ]


def test_excluded_names_are_dropped_before_the_seeded_sample(drv):
    full = drv._all_mutants(SOURCE)
    gone = {(m.line, m.nth) for m, _ in full[::3]}
    rest = [mt for mt in full if (mt[0].line, mt[0].nth) not in gone]
    keep = sorted(random.Random(15).sample(range(len(rest)), 4))
    got = drv.select_mutants(SOURCE, None, 4, 15, None, drv.Exclusion(gone, set()))
    assert [_key(*mt) for mt in got] == [_key(*rest[k]) for k in keep]
    assert not {(m.line, m.nth) for m, _ in got} & gone


def test_a_saved_run_is_matched_after_lines_move(drv, tmp_path):
    first = drv.select_mutants(SOURCE, None, 6, 14)
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps({"m.py": {"ran": _ran(drv, first)}, "other.py": {"ran": []}}))
    # three lines inserted above and a duplicate of line 7 below: every line number moves, the texts stay
    moved = "\nimport math\n\n" + SOURCE + "\ndef g(x, y, z):\n    return min(z, 0.0) if not y else z / 2.0 - 0.0\n"
    excl = drv.load_exclusion("m.py", [saved])
    left = drv.select_mutants(moved, exclude=excl)
    before = {(m.code, m.kind, m.original, m.mutated, m.nth) for m, _ in first}
    # the first copy of each saved mutant is gone, the second copy of line 7 (a new mutant) is not
    assert len(drv._all_mutants(moved)) - len(left) == len(first)
    assert all((m.code, m.kind, m.original, m.mutated, m.nth) not in before for m, _ in left if m.line < 11)
    # a file for another module excludes nothing; a saved run without a 'ran' list is refused
    assert len(drv.select_mutants(moved, exclude=drv.load_exclusion("x.py", [saved]))) == len(drv._all_mutants(moved))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"m.py": {"survivors": []}}))
    with pytest.raises(SystemExit, match="no 'ran' list"):
        drv.load_exclusion("m.py", [old])


def test_exclude_names_take_module_prefixes(drv):
    excl = drv.load_exclusion("m.py", [], "4#1, m.py:5#2,other.py:7#1")
    assert excl.names == {(4, 1), (5, 2)}


def test_list_json_then_exclude_json_on_a_real_module(drv, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert drv.main(["dcg/w1.py", "--list", "--max-mutants", "5", "--seed", "3", "--json", str(out)]) == 0
    first = capsys.readouterr().out.split()
    saved = json.loads(out.read_text())["dcg/w1.py"]
    assert saved["mutants"] == len(saved["ran"]) == 5
    assert drv.main(["dcg/w1.py", "--list", "--exclude-json", str(out)]) == 0
    rest = capsys.readouterr().out.splitlines()
    assert drv.main(["dcg/w1.py", "--list"]) == 0
    every = capsys.readouterr().out.splitlines()
    names = {ln.split()[0] for ln in every} - {ln.split()[0] for ln in rest}
    assert len(rest) == len(every) - 5 and names == {n for n in first if n.startswith("dcg/w1.py:")}
    with pytest.raises(SystemExit):
        drv.main(["dcg/w1.py", "--rev", "HEAD"])
