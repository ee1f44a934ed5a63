"""The mutation driver (benchmarks/mutation/run.py): building only the selected lines' mutants changes nothing."""

from __future__ import annotations

import ast
import importlib.util
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
