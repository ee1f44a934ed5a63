"""Matcher cases written to kill the mutants the driver found alive (issue 13).

References are hand-written expectations about small recorded programs: which outputs are cut candidates,
which copies are (not) redundant, where the finer cuts fall, and the exact region labels.
"""

from __future__ import annotations

import pytest
import torch

from opgraph.energy.matcher import Region, _fps, candidates, match, name_shape_table, pruned_spine
from opgraph.energy.recorder import record


def _ops(run, ids):
    return [run.graph.nodes[i].op for i in ids]


def test_constant_and_empty_outputs_are_not_candidates_but_scalars_are():
    def f(x):
        return x[:2, 0] * 0 + 1, x[:0] * 2, (x * 3).sum()

    run = record(f, torch.randn(4, 4))
    fps = _fps(run)
    cand = candidates(run, fps)
    by_op = {}
    for n in run.op_nodes():
        by_op.setdefault(n.op, []).append(n.id)
    const_mul, empty_mul, times3 = by_op["aten::mul"]
    (const_add,) = by_op["aten::add"]
    (total,) = by_op["aten::sum"]
    assert fps[const_mul].numel == 2 and fps[const_add].numel == 2 and fps[empty_mul].numel == 0
    assert fps[total].numel == 1 and fps[total].constant  # one element is "constant", yet a fine cut point
    # two-element constant tensors (0, 0) and (1, 1) and the empty tensor are uninformative; x*3 and its sum are not
    assert cand == [times3, total]


def test_a_scalar_output_is_a_cut():
    x = torch.randn(6, 5)
    ra = record(lambda x: (x * 2).sum(), x)
    rb = record(lambda x: (2 * x).sum(), x)
    m = match(ra, rb)
    assert [(ra.graph.nodes[i].op, rb.graph.nodes[j].op, lv) for i, j, lv in m.cuts] == [
        ("aten::mul", "aten::mul", 0),
        ("aten::sum", "aten::sum", 0),
    ]


def test_the_first_op_of_both_runs_can_be_a_finer_cut():
    # tanh is node 1 on both sides (right after the argument) and lies off the dominator path x -> add
    x = torch.randn(4, 8)
    ra = record(lambda x: x + torch.tanh(x) * 1.0, x)
    rb = record(lambda x: x + torch.tanh(x), x.clone())
    m = match(ra, rb)
    first = min(i for i, _, _ in m.cuts)
    assert first == 1 and ra.graph.nodes[1].op == "aten::tanh"
    assert [(ra.graph.nodes[i].op, rb.graph.nodes[j].op, lv) for i, j, lv in m.cuts] == [
        ("aten::tanh", "aten::tanh", 1),
        ("aten::add", "aten::add", 0),
    ]


def test_the_spine_ends_at_the_last_output():
    def f(x):
        y = torch.tanh(x)
        return y, torch.exp(y) * 2

    run = record(f, torch.randn(3, 3))
    spine = pruned_spine(run.graph)
    assert _ops(run, spine) == ["input", "aten::tanh", "aten::exp", "aten::mul"]


def test_a_copy_that_changes_the_layout_is_not_redundant():
    # A copies the transposed view into a fresh layout (strides differ from its input's): same values, same shape
    # and dtype, yet not a redundant copy. B multiplies the view directly.
    x = torch.randn(4, 4)
    ra = record(lambda x: (x.t().contiguous() * 2).sum(0), x)
    rb = record(lambda x: (x.t() * 2).sum(0), x)
    m = match(ra, rb)
    assert "aten::clone" in _ops(ra, [n.id for n in ra.op_nodes()])
    assert [r for reg in m.regions for r in reg.redundant] == []


def test_a_copy_that_changes_the_dtype_is_not_redundant():
    x = torch.randn(4, 4)
    ra = record(lambda x: (x.double() * 2).float().sum(0), x)
    rb = record(lambda x: (x * 2).sum(0), x)
    m = match(ra, rb)
    assert _ops(ra, [n.id for n in ra.op_nodes()]).count("aten::_to_copy") == 2
    assert [r for reg in m.regions for r in reg.redundant] == []


def test_a_same_layout_copy_is_redundant_on_its_own_side_only():
    x = torch.randn(4, 4)
    ra = record(lambda x: (x.clone() * 2).sum(0), x)
    rb = record(lambda x: (x * 2).sum(0), x)
    red = [r for reg in match(ra, rb).regions for r in reg.redundant]
    assert [(r["side"], r["op"], r["source_node"]) for r in red] == [("a", "aten::clone", 0)]
    red_b = [r for reg in match(rb, ra).regions for r in reg.redundant]
    assert [(r["side"], r["op"]) for r in red_b] == [("b", "aten::clone")]


def test_region_label_shows_the_three_commonest_ops_per_side_and_a_dash_for_none():
    def a(x):
        y = torch.exp(x) + torch.exp(x * 2)
        return torch.tanh(y) * torch.sin(y) * torch.cos(y)

    x = torch.randn(3)
    ra, rb = record(a, x), record(lambda x: x, x)
    ids = tuple(n.id for n in ra.op_nodes())
    counts = {op: _ops(ra, ids).count(op) for op in set(_ops(ra, ids))}
    assert counts["aten::mul"] == 3 and counts["aten::exp"] == 2 and len(counts) == 6
    label = Region(0, ids, (), None, None, 0).label(ra, rb)
    assert label == "mul+exp+add | -"


def test_an_in_place_copy_is_not_reported_as_redundant():
    # copy_ writes into an existing buffer (it mutates): the rule leaves mutating ops out, although the value written
    # equals its source in value, shape, dtype and strides.
    def a(x):
        buf = torch.empty_like(x)
        buf.copy_(x)
        return (buf * 2).sum(0)

    x = torch.randn(4, 4)
    ra, rb = record(a, x), record(lambda x: (x * 2).sum(0), x)
    (copy,) = [n for n in ra.op_nodes() if n.op == "aten::copy_"]
    assert copy.meta.get("mutates")
    assert [r for reg in match(ra, rb).regions for r in reg.redundant] == []


def test_only_copies_count_and_only_where_the_other_side_has_fewer():
    x = torch.randn(4, 4)
    # relu of non-negative values returns its input unchanged, but it is not a copy: never reported
    ra = record(lambda x: (torch.relu(x.abs()) * 2).sum(0), x)
    rb = record(lambda x: (x.abs() * 2).sum(0), x)
    assert [r for reg in match(ra, rb).regions for r in reg.redundant] == []
    # both sides clone once: "no op at that position" does not hold, nothing is reported
    rc = record(lambda x: (x.clone() * 2).sum(0), x)
    rd = record(lambda x: (x.clone() * 2).sum(0), x.clone())
    assert [r for reg in match(rc, rd).regions for r in reg.redundant] == []


def test_an_arithmetic_copy_is_redundant_only_when_it_keeps_the_values():
    x = torch.randn(4, 4)
    rb = record(lambda x: (x * 6).sum(0), x)
    # x * 2 then * 3: the extra multiply changes the values (same shape, dtype and layout): not a copy
    ra = record(lambda x: (x * 2 * 3).sum(0), x)
    assert [r for reg in match(ra, rb).regions for r in reg.redundant] == []
    # x * 1 then * 6: the extra multiply keeps every value: a redundant copy of its input
    rc = record(lambda x: (x * 1 * 6).sum(0), x)
    red = [r for reg in match(rc, rb).regions for r in reg.redundant]
    assert [(r["side"], r["op"], r["source_node"]) for r in red] == [("a", "aten::mul", 0)]


# ---- fourth pass (2026-12-06): survivors of --max-mutants 60 --seed 14 on the lines the second pass left -------


def test_ops_after_the_last_cut_on_one_side_only_form_a_trailing_region():
    def a(x):
        y = x * 2.0
        torch.sin(x)  # executed after the output, feeds no cut: dead trailing work on side A only
        return y

    x = torch.randn(4, 4)
    ra, rb = record(a, x), record(lambda x: x * 2.0, x)
    assert _ops(ra, [n.id for n in ra.op_nodes()])[-1] == "aten::sin"
    m = match(ra, rb)
    assert [(ra.graph.nodes[i].op, rb.graph.nodes[j].op, lv) for i, j, lv in m.cuts] == [("aten::mul", "aten::mul", 0)]
    last = m.regions[-1]
    assert _ops(ra, last.a_nodes) == ["aten::sin"] and last.b_nodes == ()
    assert (last.a_cut, last.b_cut, last.level) == (None, None, -1)  # no cut at its end (level -1 in the result)
    # every op of either side lies in exactly one region
    for run, side in ((ra, "a_nodes"), (rb, "b_nodes")):
        owned = sorted(i for r in m.regions for i in getattr(r, side))
        assert owned == sorted(n.id for n in run.op_nodes())


def test_name_shape_table_sums_counts_and_recorded_seconds_per_op_and_shape():
    x = torch.randn(4, 4)
    ra = record(lambda x: torch.exp(x) * 2.0, x)
    rb = record(lambda x: torch.exp(x) * 2.0 + 1.0, x)
    ids_a, ids_b = [n.id for n in ra.op_nodes()], [n.id for n in rb.op_nodes()]
    assert _ops(ra, ids_a) == ["aten::exp", "aten::mul"]
    assert _ops(rb, ids_b) == ["aten::exp", "aten::mul", "aten::add"]
    for run, ids, durs in ((ra, ids_a, (1_000_000, 2_000_000)), (rb, ids_b, (3_000_000, 5_000_000, 7_000_000))):
        for i, d in zip(ids, durs, strict=True):
            run.graph.nodes[i].meta["dur_ns"] = d
    table = name_shape_table(ra, ids_a, rb, ids_b)
    got = [(r["op"], r["shape"], r["count_a"], r["count_b"], r["time_a_s"], r["time_b_s"]) for r in table]
    shape = str(ra.graph.nodes[ids_a[0]].meta.get("shape", ""))
    # sorted by |time_a - time_b|: add 7 ms, mul 3 ms, exp 2 ms
    expected = [
        ("aten::add", shape, 0, 1, 0.0, 0.007),
        ("aten::mul", shape, 1, 1, 0.002, 0.005),
        ("aten::exp", shape, 1, 1, 0.001, 0.003),
    ]
    assert [g[:4] for g in got] == [e[:4] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g[4] == pytest.approx(e[4], abs=1e-15) and g[5] == pytest.approx(e[5], abs=1e-15)
